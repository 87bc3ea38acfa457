"""Shared command-line parsing for the training commands: one ``--field value`` flag per config field."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import torch

from ._validate import check_int


def _bool(text: str) -> bool:
    """A command-line boolean: true/false, yes/no, 1/0 (any case); anything else is a usage error."""
    value = text.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false (yes/no, 1/0), got {text!r}")


def parse_config(config_cls, argv, prog: str, description: str, default_out: Path, extra: dict | None = None,
                 check=None):
    """``(config, out, device, options)`` from ``argv``: a flag per field of the frozen dataclass
    ``config_cls`` (tuples take several values), plus ``--out DIR``, ``--threads N`` (applied here),
    ``--device`` and the command's own flags ``extra`` ({flag: argparse keyword arguments}), returned in
    the dict ``options`` keyed by their dest names (so ``--help`` lists every flag).

    Bad values fail as usage errors (one line naming the parameter, exit status 2), before any work: a
    config field the config rejects, ``--threads`` below 1, an ``--out`` that exists and is not a folder,
    and whatever ``check(config, options, device)`` (optional) raises as a ValueError.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    extra = dict(extra or {})
    for flag, kwargs in extra.items():
        parser.add_argument(flag, **kwargs)
    for f in fields(config_cls):
        flag = f"--{f.name.replace('_', '-')}"
        if f.type == "tuple":
            kind = type(f.default[0]) if f.default else float
            parser.add_argument(flag, type=kind, nargs="+", default=None)
        elif f.type == "bool":
            parser.add_argument(flag, type=_bool, default=None, metavar="{true,false}")
        else:
            parser.add_argument(flag, type={"int": int, "float": float, "str": str}[f.type], default=None)
    parser.add_argument("--out", default=str(default_out), metavar="DIR")
    parser.add_argument("--threads", type=int, default=None, metavar="N")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = vars(parser.parse_args(argv))
    out, threads, device = Path(args.pop("out")), args.pop("threads"), args.pop("device")
    options = {name: args.pop(name) for name in [f.lstrip("-").replace("-", "_") for f in extra]}
    try:
        if threads is not None:
            check_int("threads", threads, 1, 1024)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out must be a folder, got the file {out}")
        config = config_cls(**{k: v for k, v in args.items() if v is not None})
        if check is not None:
            check(config, options, device)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if threads is not None:
        torch.set_num_threads(threads)
    return config, out, device, options
