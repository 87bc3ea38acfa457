"""Shared command-line parsing for the training commands: one ``--field value`` flag per config field."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import torch

from ._validate import check_int


def parse_config(config_cls, argv, prog: str, description: str, default_out: Path, extra: dict | None = None):
    """``(config, out, device, options)`` from ``argv``: a flag per field of the frozen dataclass
    ``config_cls`` (tuples take several values), plus ``--out DIR``, ``--threads N`` (applied here),
    ``--device`` and the command's own flags ``extra`` ({flag: argparse keyword arguments}), returned in
    the dict ``options`` keyed by their dest names (so ``--help`` lists every flag)."""
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
            parser.add_argument(flag, type=lambda v: v.lower() in ("1", "true", "yes"))
        else:
            parser.add_argument(flag, type={"int": int, "float": float, "str": str}[f.type], default=None)
    parser.add_argument("--out", default=str(default_out))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = vars(parser.parse_args(argv))
    out, threads, device = Path(args.pop("out")), args.pop("threads"), args.pop("device")
    options = {name: args.pop(name) for name in [f.lstrip("-").replace("-", "_") for f in extra]}
    if threads is not None:
        torch.set_num_threads(check_int("threads", threads, 1, 1024))
    return config_cls(**{k: v for k, v in args.items() if v is not None}), out, device, options
