"""Recursive (self-consuming) training with and without pre-emptive filtering (the paper's recursive-training experiment and its official code).

Generation 0 trains on real data. Generation g >= 1 trains a *freshly initialised* model, with the same
recipe, only on data drawn from generation g-1's model (same size n, no real data mixed in). Each
generation draws a pool of ceil(oversample * n) samples, recording Hal (the x0_hat variance over the last
``window`` reverse steps, :class:`mode_interp.detect.WindowVariance`), and the next data set is

    "none":     the first n samples of the pool (the official no-filter run draws exactly n);
    "variance": the n samples of lowest Hal (the official rank filter, :func:`mode_interp.detect.keep_lowest`);
    "random":   n samples of the pool chosen uniformly at random (same pool, same size, no selection).

The official code uses oversample = 1.025 (keep 100,000 of 102,500). Generation 0's model and pool are
shared by the three arms. Every generation's record (model weights, pool, Hal, timings) is cached
atomically under a key made of the whole loop config, the arm and the generation, so an interrupted run
resumes at the first missing generation, and a longer run reuses a shorter one.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import cache
from ._validate import check_choice, check_float, check_generator, check_instance, check_int, check_tensor
from .detect import WindowVariance, keep_lowest
from .precision import PRECISIONS, require_native
from .train import SHIPPED_DIR, TrainedModel, ToyConfig, load_or_train, train

ARMS = ("none", "variance", "random")


@dataclass(frozen=True)
class LoopConfig:
    """A self-consuming loop of toy models: generation 0 is ``base`` (trained on its real data)."""

    base: ToyConfig
    generations: int = 5                 # generations 0 .. generations-1
    oversample: float = 1.025            # pool size / data size (official code: 102,500 / 100,000)
    window: int = 10                     # Hal window: the last `window` reverse steps
    seed: int = 0                        # sampling and random-filter seed
    sample_precision: str = "float32"    # of the pool's sampling (mode_interp.precision): part of the key

    def __post_init__(self):
        check_instance("base", self.base, ToyConfig)
        check_int("generations", self.generations, 1, 100)
        check_float("oversample", self.oversample, 1.0, 100.0)
        check_int("window", self.window, 2, self.base.T)
        check_int("seed", self.seed, 0, None)
        if check_choice("sample_precision", self.sample_precision, PRECISIONS) == "auto":
            raise ValueError("sample_precision must be 'float32' or 'bfloat16' (it is part of the records' "
                             "key), got 'auto'")

    @property
    def n(self) -> int:
        return self.base.n_train

    @property
    def n_pool(self) -> int:
        return math.ceil(self.n * self.oversample - 1e-9)

    def model_config(self, generation: int) -> ToyConfig:
        """Generation g's recipe: the base config with its own initialisation / data-order seed (g > 0)."""
        return self.base if generation == 0 else replace(self.base, seed=self.base.seed + 7919 * generation)

    def key(self, arm: str, generation: int) -> dict:
        """What generation ``generation`` of ``arm`` depends on (not ``generations``: longer runs reuse it)."""
        return {"base": self.base.to_dict(), "oversample": self.oversample, "window": self.window,
                "seed": self.seed, "arm": arm if generation else "real", "generation": generation,
                **self._precision()}

    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), "generations": self.generations, "oversample": self.oversample,
                "window": self.window, "seed": self.seed, **self._precision()}

    def _precision(self) -> dict:
        """float32 loops keep the keys they had before the option."""
        return {} if self.sample_precision == "float32" else {"sample_precision": self.sample_precision}


@dataclass
class Generation:
    """One generation of one arm: its model, its pool of samples with Hal, and the rows kept for the next."""

    arm: str
    generation: int
    model: TrainedModel
    pool: torch.Tensor                   # (n_pool, d) samples of this generation's model
    hal: torch.Tensor                    # (n_pool,) Hal of each pooled sample
    kept: np.ndarray                     # indices into pool: the next generation's training data
    sample_seconds: float
    from_cache: bool
    sample_precision: str = "float32"    # what the pool's sampling ran in (records before the option: float32)

    @property
    def data_next(self) -> torch.Tensor:
        return self.pool[self.kept]


def select(arm: str, hal: torch.Tensor, n: int, generator: torch.Generator) -> np.ndarray:
    """Indices of the n pooled samples that arm ``arm`` keeps (module docstring)."""
    check_choice("arm", arm, ARMS)
    hal = check_tensor("hal", hal, ndim=1)
    n_pool = len(hal)
    n = check_int("n", n, 1, n_pool)
    check_generator("generator", generator)
    if arm == "none":
        return np.arange(n)
    if arm == "variance":
        return keep_lowest(hal, n)
    if arm == "random":
        return np.sort(torch.randperm(n_pool, generator=generator)[:n].numpy())
    raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")


def draw_pool(model: TrainedModel, n: int, seed: int, window: int, precision: str = "float32") -> tuple:
    """``(x0, hal, seconds, precision)``: n ancestral samples of ``model`` with their streaming Hal over
    ``window`` steps, and the sampling precision that ran (:mod:`mode_interp.precision`)."""
    check_instance("model", model, TrainedModel)
    window = check_int("window", window, 2, model.config.T)
    observer = WindowVariance(n, model.config.dim, window)
    start = time.perf_counter()
    result = model.sample(n, seed, observer=observer, precision=precision)
    x0 = result.x0
    if not bool(torch.isfinite(x0).all()):
        raise ValueError(f"the model (config {model.config.to_dict()}) drew non-finite samples: it diverges "
                         "(under-trained?), so its samples cannot become the next generation's data")
    return x0, observer.hal().float(), time.perf_counter() - start, result.precision


class MissingGeneration(LookupError):
    """Raised inside :func:`run_loop` with ``compute=False`` for a generation that no cache holds."""


def _generation(config: LoopConfig, arm: str, g: int, data, directory, progress: bool,
                compute: bool = True) -> tuple:
    """The cached record of generation g of ``arm`` (train on ``data`` and draw the pool if missing and
    ``compute``; else raise :class:`MissingGeneration`)."""
    arm_index = 0 if g == 0 else 1 + ARMS.index(arm)
    sample_seed = config.seed + 1_000 * g + 100 * arm_index

    def create():
        if not compute:
            raise MissingGeneration(f"{arm} generation {g}")
        require_native(config.sample_precision)        # the record's key names its sampling precision
        if g == 0:
            trained = load_or_train(config.base, progress=progress, directory=directory)
        else:
            trained = train(config.model_config(g), progress=progress, data=data)
        pool, hal, seconds, ran = draw_pool(trained, config.n_pool, sample_seed, config.window,
                                            config.sample_precision)
        return {"state_dict": trained.model.state_dict(), "losses": trained.losses, "seconds": trained.seconds,
                "model_path": trained.path, "model_from_cache": trained.from_cache, "pool": pool, "hal": hal,
                "sample_seconds": seconds, "sample_precision": ran, "precision": trained.precision}

    def check(stored: dict) -> None:
        TrainedModel.from_stored(config.model_config(g), stored, True, "")
        if len(stored["pool"]) != config.n_pool or len(stored["hal"]) != config.n_pool:
            raise ValueError(f"the record holds {len(stored['pool'])} pooled samples, the loop asks for {config.n_pool}")

    stored, path, hit = cache.load_or_create(config.key(arm, g), create, name="recursive", directory=directory,
                                             read_only=(SHIPPED_DIR,), check=check)
    # the record holds the weights; a new generation-0 record may still have loaded its model from a cache
    # (records written before "model_from_cache" existed, e.g. the shipped 1-D ones, lack the key)
    trained = TrainedModel.from_stored(config.model_config(g), stored, hit or stored.get("model_from_cache", True), path)
    return (trained, stored["pool"], stored["hal"], float(stored["sample_seconds"]), hit,
            stored.get("sample_precision", "float32"))


def run_loop(config: LoopConfig, arms=ARMS, progress: bool = True, directory=None,
             compute: bool = True) -> dict:
    """Run (or resume) the loop: ``{arm: [Generation 0, ..., Generation generations-1]}``.

    ``compute=False`` trains and samples nothing: it loads the records that exist (cache or shipped) and
    stops each arm at its first missing generation, so an arm's list may be shorter (or empty): a partly
    finished long run (e.g. the paper-scale grid loop, run across sittings) can be shown as it stands."""
    arms = tuple(arms)
    if not arms or any(a not in ARMS for a in arms) or len(set(arms)) != len(arms):
        raise ValueError(f"arms must be distinct names from {ARMS}, got {arms}")
    out = {arm: [] for arm in arms}
    total = len(arms) * config.generations
    with tqdm(total=total, disable=not progress, desc="generations", unit="gen") as bar:
        for arm in arms:
            data = None
            for g in range(config.generations):
                bar.set_postfix(arm=arm, generation=g)
                try:
                    trained, pool, hal, seconds, hit, ran = _generation(config, arm, g, data, directory,
                                                                        progress, compute)
                except MissingGeneration:
                    bar.update(config.generations - g)
                    break
                kept = select(arm, hal, config.n, torch.Generator().manual_seed(config.seed + 1_000 * g + 7))
                out[arm].append(Generation(arm, g, trained, pool, hal, kept, seconds, hit, ran))
                data = pool[kept]
                bar.update(1)
    return out


def _cli(argv=None) -> None:
    """``python -m mode_interp.recursive [--ToyConfig field value ...] [--generations G] [--oversample F]
    [--window W] [--loop-seed S] [--sample-precision float32|bfloat16] [--arms none variance random] [--out DIR] [--threads N]``: run (or resume)
    the loop, writing each generation's record into ``DIR`` (default: the shipped checkpoints folder; records
    already there or shipped are loaded, not recomputed), and write ``DIR/recursive-<key>.json``: the
    command, the config, the record files, every generation's per-arm numbers with its training and
    sampling seconds, and the wall time of this call. Calls on the same loop config share that file: each
    adds its command, arms and wall time to ``calls`` and replaces the rows of its arms, keeping the
    other arms' rows (so arms run in parallel, or a later load-only call, lose nothing)."""
    from .cli import parse_config
    from .experiments.loops import loop_rows

    argv = sys.argv[1:] if argv is None else list(argv)
    extra = {f"--{name}": {"type": kind, "default": None} for name, kind in
             [("generations", int), ("oversample", float), ("window", int), ("loop-seed", int),
              ("sample-precision", str)]}
    extra["--arms"] = {"nargs": "+", "default": list(ARMS), "choices": ARMS}

    def loop_fields(options) -> dict:
        return {k: v for k, v in {"generations": options["generations"], "oversample": options["oversample"],
                                  "window": options["window"], "seed": options["loop_seed"],
                                  "sample_precision": options["sample_precision"]}.items() if v is not None}

    base, out, _, options = parse_config(ToyConfig, argv, "python -m mode_interp.recursive", _cli.__doc__,
                                         SHIPPED_DIR, extra, lambda b, o, _: LoopConfig(b, **loop_fields(o)))
    config = LoopConfig(base, **loop_fields(options))
    start = time.perf_counter()
    loop = run_loop(config, options["arms"], directory=out)
    rows = loop_rows(config, loop)         # the same per-generation numbers as chapter 5's (experiments.loops)
    call = {"command": "python -m mode_interp.recursive " + " ".join(argv), "arms": options["arms"],
            "wall_seconds": round(time.perf_counter() - start, 1),     # this call (found records only load)
            "threads": torch.get_num_threads(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    path = Path(out) / f"recursive-{cache.config_key(config.to_dict())[:20]}.json"
    write_summary(path, config, call, rows)
    print(f"wrote {path}")


def write_summary(path: Path, config: LoopConfig, call: dict, rows: list) -> dict:
    """Merge one CLI call into the loop's summary file at ``path`` (written atomically): ``calls`` gains
    ``call`` (a file from before ``calls`` existed contributes its own command as the first call), ``rows``
    keeps the rows of arms this call did not run, and ``records`` / ``computed_seconds`` (training plus
    sampling seconds stored in the records, generation 0 counted once) cover every arm in the file."""
    old = read_summary(path) if path.exists() else {"calls": []}
    if path.exists() and old["config"] != config.to_dict():
        raise ValueError(f"{path} summarises another loop config; refusing to merge into it")
    rows = [r for r in old.get("rows", []) if r["arm"] not in call["arms"]] + rows
    rows.sort(key=lambda r: (ARMS.index(r["arm"]), r["generation"]))
    arms = [a for a in ARMS if any(r["arm"] == a for r in rows)]
    result = {"config": config.to_dict(), "arms": arms,
              "records": sorted({cache.file_name(config.key(r["arm"], r["generation"]), "recursive") for r in rows}),
              "computed_seconds": round(sum(r["train_seconds"] + r["sample_seconds"] for r in rows
                                            if r["generation"] or r["arm"] == arms[0]), 1),
              "calls": old["calls"] + [call], "rows": rows}
    cache.atomic_write(path, lambda f: f.write((json.dumps(result, indent=1) + "\n").encode()), mode=0o644)
    return result


def describe_calls(config: LoopConfig, folder=SHIPPED_DIR) -> str:
    """The commands behind a loop's records in ``folder`` (from its summary file), one per line with their
    wall time, threads, torch version and date, and the training and sampling seconds the records store."""
    lines = []
    for summary in map(read_summary, sorted(Path(folder).glob("recursive-*.json"))):
        if summary["config"] == config.to_dict():
            for c in summary["calls"]:
                lines.append(f"  {c['command']}\n    ({c['wall_seconds']:,.0f} s wall, {c['threads']} thread(s), "
                             f"torch {c['torch']}, {c['date']})" + (f"\n    note: {c['note']}" if "note" in c else ""))
            lines.append(f"  training and sampling seconds stored in the records: {summary['computed_seconds']:,.0f}")
    return "\n".join(lines) if lines else "  (no summary file for this loop)"


def read_summary(path) -> dict:
    """A loop summary written by the CLI; a file from before ``calls`` existed (one call's ``command``,
    ``arms``, ``wall_seconds``... at the top level) is returned with that call as ``calls[0]``."""
    summary = json.loads(Path(path).read_text())
    if "calls" not in summary:
        summary["calls"] = [{k: summary.pop(k) for k in ("command", "wall_seconds", "threads", "torch", "date")
                             if k in summary} | {"arms": summary["arms"]}]
    return summary


if __name__ == "__main__":
    _cli()
