"""Experiment records: a plain function of a frozen spec, cached as a small JSON record.

An *experiment* is registered with :func:`register`: a name, a spec class (frozen dataclass with
``from_dict`` / ``to_dict``) and ``run(spec) -> (result, info)``, where ``result`` is what the book reads
(deterministic given the spec: no timings) and ``info`` holds the costs (``computed_seconds``: the training
and sampling seconds behind the result; optional ``shared_key`` / ``shared_seconds`` for work several
records share, e.g. a loop's generation 0, counted once in an index's totals).

:func:`run` returns the stored record of ``(experiment, spec)`` if one is found (in ``directory``, then in
the shipped folder), else computes it and writes it atomically. A record is

    {"experiment", "schema", "spec", "seed", "result", "precision", "computed_seconds", "wall_seconds",
     "command", "threads", "torch", "package", "date", ...info}

and its file is ``<experiment>-<first 20 hex digits of the key>.json`` with key = SHA-256 of the
experiment name, the spec and :data:`mode_interp.cache.CACHE_SCHEMA` (not the package version: a release
does not orphan shipped records).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import torch

from .. import __version__, cache

SHIPPED_RESULTS = Path(__file__).resolve().parents[1] / "results"   # records the book reads, by experiment folder


@dataclass(frozen=True)
class Experiment:
    name: str
    spec_type: type
    run: Callable                       # spec -> (result: dict, info: dict)
    prepare: Callable | None = None     # spec -> None: shared work to do once before the tasks that need it
    prepare_key: Callable | None = None  # spec -> str: tasks with the same key share one prepare()
    doc: str = ""


EXPERIMENTS: dict = {}


def register(experiment: Experiment) -> Experiment:
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {sorted(EXPERIMENTS)}, got {name!r}")
    return EXPERIMENTS[name]


def as_spec(name: str, spec):
    """``spec`` as the experiment's spec class (a dict is converted with ``from_dict``)."""
    kind = get(name).spec_type
    if isinstance(spec, kind):
        return spec
    if isinstance(spec, dict):
        return kind.from_dict(spec)
    raise TypeError(f"spec must be a {kind.__name__} or a dict, got {type(spec).__name__}")


def record_key(name: str, spec) -> dict:
    """What a record's file name hashes (with the cache schema)."""
    return {"experiment": name, "spec": as_spec(name, spec).to_dict()}


def record_file(name: str, spec) -> str:
    return f"{name}-{cache.config_key(record_key(name, spec))[:20]}.json"


def read_record(path) -> dict | None:
    """The record at ``path``, or None if missing or unreadable (a truncated file is never used)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("schema") == cache.CACHE_SCHEMA else None


def find(name: str, spec, directory=None, shipped=True) -> tuple:
    """``(record, path)`` of a stored record for ``(name, spec)``, or ``(None, path it would have)``."""
    spec = as_spec(name, spec)
    file = record_file(name, spec)
    folders = ([Path(directory)] if directory is not None else []) + (
        [p for p in SHIPPED_RESULTS.iterdir() if p.is_dir()] if shipped and SHIPPED_RESULTS.exists() else [])
    for folder in folders:
        record = read_record(folder / file)
        if record is not None and record["spec"] == json.loads(json.dumps(spec.to_dict())):
            return record, folder / file
    return None, (Path(directory) if directory is not None else SHIPPED_RESULTS / name) / file


def compute(name: str, spec, command: str | None = None) -> dict:
    """Compute the record of experiment ``name`` on ``spec`` (no file is read or written)."""
    experiment = get(name)
    spec = as_spec(name, spec)
    start = time.perf_counter()
    result, info = experiment.run(spec)
    record = {"experiment": name, "schema": cache.CACHE_SCHEMA, "spec": spec.to_dict(),
              "seed": getattr(spec, "seed", None), "result": result, **info,
              "wall_seconds": round(time.perf_counter() - start, 2),
              "command": command or "python " + " ".join(sys.argv),
              "threads": torch.get_num_threads(), "torch": torch.__version__, "package": __version__,
              "date": time.strftime("%Y-%m-%d")}
    return json.loads(json.dumps(record, allow_nan=True))      # plain JSON types, as a reader will see it


def write(record: dict, path) -> None:
    """Write ``record`` atomically to ``path`` (a crash leaves the old file or none, never half a file)."""
    text = json.dumps({k: v for k, v in record.items() if k not in ("file", "from_cache")}, indent=1,
                      allow_nan=True) + "\n"
    cache.atomic_write(Path(path), lambda f: f.write(text.encode()), mode=0o644)


def run(name: str, spec, directory=None, shipped: bool = True, command: str | None = None,
        compute_missing: bool = True) -> dict:
    """The record of experiment ``name`` on ``spec``: found (``directory``, then the shipped results) or
    computed and written atomically into ``directory`` (default: the shipped folder of ``name``), with
    ``file`` and ``from_cache`` added. ``compute_missing=False`` raises LookupError instead of computing."""
    spec = as_spec(name, spec)
    record, path = find(name, spec, directory, shipped)
    if record is not None:
        return record | {"file": str(path), "from_cache": True}
    if not compute_missing:
        raise LookupError(f"no stored {name} record for spec {spec.to_dict()} (looked for {path.name})")
    record = compute(name, spec, command)
    write(record, path)
    return record | {"file": str(path), "from_cache": False}


def check_fields(cls, d: dict, where: str) -> dict:
    """``d`` if its keys are fields of the dataclass ``cls``, else a ValueError naming the unknown ones."""
    names = set(cls.__dataclass_fields__)
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(names)}")
    return d


def spec_dict(spec, omit_if_off=()) -> dict:
    """A spec's JSON dict (its ``to_dict``): every field, a nested config as its own ``to_dict()``, tuples as
    lists; the fields of ``omit_if_off`` are left out while off (False, 0), so that records made before such
    an option existed keep their keys."""
    d = {}
    for f in fields(spec):
        value = getattr(spec, f.name)
        if f.name in omit_if_off and not value:
            continue
        d[f.name] = value.to_dict() if hasattr(value, "to_dict") else list(value) if isinstance(value, tuple) else value
    return d


def spec_from_dict(cls, d: dict, name: str, config: type):
    """A spec dataclass ``cls`` with a field ``model`` of type ``config`` from its JSON dict (unknown fields
    named, at both levels); the config is built by its ``from_dict`` if it has one."""
    d = check_fields(cls, dict(d), f"{name} spec")
    if not isinstance(d.get("model"), dict):
        raise ValueError(f"{name} spec needs 'model', a {config.__name__} dict, got {d.get('model')!r}")
    model = check_fields(config, dict(d.pop("model")), f"{name} spec.model")
    return cls(config.from_dict(model) if hasattr(config, "from_dict") else config(**model), **d)


def _experiment_folder(experiment_dir) -> Path:
    """A folder as given, or a shipped experiment folder by name (a relative path that does not exist)."""
    folder = Path(experiment_dir)
    return SHIPPED_RESULTS / folder if not folder.is_absolute() and not folder.exists() else folder


def load_index(experiment_dir) -> dict:
    """A sweep's ``index.json`` (see :mod:`mode_interp.sweep`), by folder or by shipped experiment name."""
    return json.loads((_experiment_folder(experiment_dir) / "index.json").read_text())


def load_records(experiment_dir, status: str = "done") -> list:
    """The records an index lists (with ``status``), in index order, each with its ``file``."""
    folder = _experiment_folder(experiment_dir)
    index = load_index(folder)
    out = []
    for entry in index["tasks"]:
        if entry["status"] == status:
            record = read_record(folder / entry["record"])
            if record is None:
                raise FileNotFoundError(f"{folder / entry['record']} is listed in {folder / 'index.json'} but "
                                        "missing or unreadable")
            out.append(record | {"file": str(folder / entry["record"])})
    return out
