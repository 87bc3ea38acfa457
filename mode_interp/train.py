"""Seeded, CPU-first training of the toy eps-network (the paper's toy setup and its official code), with load-or-train caching.

Defaults follow the official code: Adam (lr 1e-3, betas 0.9/0.999), batch 10,000, eps-MSE with t uniform
on {0..T-1}, no EMA, no gradient clipping. Two deliberate differences, both stated: the training set is
drawn from a *seeded* generator (the official code draws it unseeded), and it is reshuffled every epoch
(the official loader walks it in a fixed order). An optional step decay (``late_from``, ``late_lr``: a
lower rate for the last steps) is off by default; chapter 2 uses it, and says so, to make the 2-D grids
converge in a tenth of the paper's 100k steps.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from . import cache
from .cli import parse_config
from ._validate import (check_array, check_bool, check_choice, check_device, check_float, check_instance, check_int,
                        check_points)
from .precision import DEFAULT_SAMPLING, check_precision, require_native, resolve
from .data import TOY_DATASETS, GaussianMixture, toy_dataset
from .cache import cached_draw
from .diffusion import SampleResult, check_no_observer, eps_mse_loss, sample
from .models import ToyMLP
from .schedule import Schedule, linear_schedule

DATASETS = tuple(TOY_DATASETS)          # mode_interp.data.TOY_DATASETS: the registry


@dataclass(frozen=True)
class ToyConfig:
    """Everything that determines a trained toy model (and so its cache key)."""

    data: str = "mixture_1d"
    means: tuple = (1.0, 2.0, 3.0)         # used by mixture_1d only
    weights: tuple = ()                    # mixtures: w_k, one per mode (empty: equal weights)
    sigma: float = 0.05                    # raw units (the grids divide by GRID_SCALE)
    n_train: int = 20_000
    data_seed: int = 0
    width: int = 128
    n_blocks: int = 3
    share_blocks: bool = True
    input_bias: bool = False               # the paper's input layer has none (chapter 2, section 2.6)
    steps: int = 5_000                     # optimiser steps
    batch_size: int = 10_000
    lr: float = 1e-3
    seed: int = 1234
    T: int = 1000
    beta_start: float = 1e-3
    beta_end: float = 0.2
    continue_from: int = 0                 # >0: start from the weights of this config at that many steps
    parent_from: int = 0                   # >0: ... which were themselves continued from this step
    late_from: int = 0                     # >0: from this step on, train with lr = late_lr (a step decay)
    late_lr: float = 0.0
    continue_lr: float = 0.0               # >0: a continuation's own rate (its parent keeps lr / late_lr)
    latent_dim: int = 32                   # used by digits_pca only: the number of principal axes
    precision: str = "float32"             # of the block products in training (mode_interp.precision)

    def __post_init__(self):
        check_choice("data", self.data, DATASETS)
        if check_precision(self.precision) == "auto":
            raise ValueError("precision must be 'float32' or 'bfloat16' for training (it is part of the "
                             "model's cache key), got 'auto'")
        object.__setattr__(self, "means", tuple(float(m) for m in check_array("means", self.means)))
        if isinstance(self.weights, (str, bytes)) or not hasattr(self.weights, "__len__"):
            raise TypeError(f"weights must be a list of numbers (one per mode) or empty, got {self.weights!r}")
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        check_float("sigma", self.sigma, 0.0, None, lo_open=True)
        if self.weights:
            if toy_dataset(self.data).mixture is None:
                raise ValueError(f"weights applies to the Gaussian mixtures only, got data={self.data!r}")
            self.mixture()                                          # checks their count and signs
        check_bool("share_blocks", self.share_blocks)
        check_bool("input_bias", self.input_bias)
        for name, lo in [("n_train", 1), ("data_seed", 0), ("width", 4), ("n_blocks", 1), ("steps", 1),
                         ("batch_size", 1), ("seed", 0), ("T", 2)]:
            check_int(name, getattr(self, name), lo, None)
        check_float("lr", self.lr, 0.0, 1.0, lo_open=True)
        linear_schedule(self.T, self.beta_start, self.beta_end)     # checks T, beta_start, beta_end
        check_int("latent_dim", self.latent_dim, 1, 784)
        if toy_dataset(self.data).max_n is not None:
            check_int("n_train", self.n_train, 1, toy_dataset(self.data).max_n)    # a finite data set
        check_int("continue_from", self.continue_from, 0, self.steps - 1)
        check_int("late_from", self.late_from, 0, self.steps - 1)
        check_int("parent_from", self.parent_from, 0, None)
        if self.parent_from and not 0 < self.parent_from < self.continue_from:
            raise ValueError(f"parent_from={self.parent_from} needs continue_from > parent_from (the parent "
                             f"continues from parent_from steps), got continue_from={self.continue_from}")
        if self.late_from:
            check_float("late_lr", self.late_lr, 0.0, 1.0, lo_open=True)
        elif self.late_lr:
            raise ValueError(f"late_lr={self.late_lr} needs late_from > 0 (the step the lower rate starts at)")
        if self.continue_lr:
            check_float("continue_lr", self.continue_lr, 0.0, 1.0, lo_open=True)
            if not self.continue_from:
                raise ValueError(f"continue_lr={self.continue_lr} needs continue_from > 0 (a continuation)")

    def parent(self) -> "ToyConfig | None":
        """The config whose trained weights this one continues from (``continue_from`` steps), or None.

        A continuation starts a fresh Adam and a fresh data order (seed + continue_from), so it is not
        bit-identical to one uninterrupted run of ``steps``; its cache key says so (it includes
        ``continue_from``) and the chain is reproducible from the configs alone. With ``parent_from`` the
        parent is itself a continuation (from ``parent_from`` steps): two restarts, e.g. a decay trained on
        past a model that was already stored (at its own rate with ``continue_lr``).
        """
        if not self.continue_from:
            return None
        late = self.late_from and self.late_from < self.continue_from   # the decay already began in the parent
        return replace(self, steps=self.continue_from, continue_from=self.parent_from, parent_from=0,
                       continue_lr=0.0, late_from=self.late_from if late else 0,
                       late_lr=self.late_lr if late else 0.0)

    def phases(self) -> tuple:
        """The learning rate over the whole training history, parents included: ``(start, end, lr)`` per
        phase, in order, adjacent phases at one rate merged. In this config's own steps the rate at step s is
        ``continue_lr`` when set (s >= ``continue_from``), else ``late_lr`` from ``late_from`` on, else ``lr``."""
        parent = self.parent()
        cuts = sorted({self.continue_from, self.steps, max(self.late_from, self.continue_from)})
        out = list(parent.phases()) if parent else []
        for start, end in zip(cuts, cuts[1:]):
            lr = (self.continue_lr if self.continue_lr and start >= self.continue_from else
                  self.late_lr if self.late_from and start >= self.late_from else self.lr)
            if out and out[-1][2] == lr:
                out[-1] = (out[-1][0], end, lr)
            else:
                out.append((start, end, lr))
        return tuple(out)

    @property
    def restarts(self) -> tuple:
        """The steps at which training restarted from stored weights with a fresh Adam (:meth:`parent`)."""
        return tuple(s for s in (self.parent_from, self.continue_from) if s)

    def continued(self, extra_steps: int, late_lr: float) -> "ToyConfig":
        """This config trained on for ``extra_steps`` more steps at learning rate ``late_lr`` (a step decay
        at ``self.steps``), starting from this config's weights: its :meth:`parent` is ``self``."""
        if self.continue_from or self.late_from:
            raise ValueError("continued() takes a plain config (continue_from = late_from = 0)")
        extra_steps = check_int("extra_steps", extra_steps, 1, None)
        return replace(self, steps=self.steps + extra_steps, continue_from=self.steps, late_from=self.steps,
                       late_lr=check_float("late_lr", late_lr, 0.0, 1.0, lo_open=True))

    def at_step(self, step: int) -> "ToyConfig":
        """This plain run stopped after ``step`` steps: the config whose training is this run's first
        ``step`` steps (a step decay that has not begun by then is dropped from it)."""
        if self.continue_from:
            raise ValueError("at_step() takes a plain config (continue_from = 0)")
        step = check_int("step", step, 1, self.steps)
        if not self.late_from or step <= self.late_from:
            return replace(self, steps=step, late_from=0, late_lr=0.0)
        return replace(self, steps=step)

    @property
    def dim(self) -> int:
        """The dimension of the data the network models."""
        return toy_dataset(self.data).get_dim(self)

    def mixture(self) -> GaussianMixture:
        """The Gaussian mixture of ``data`` (a ValueError for a data set that is not one, e.g. digits_pca)."""
        return toy_dataset(self.data).get_mixture(self)

    def schedule(self) -> Schedule:
        return linear_schedule(self.T, self.beta_start, self.beta_end)

    def training_data(self) -> torch.Tensor:
        """n_train points of ``data`` drawn with data_seed (:data:`mode_interp.data.TOY_DATASETS`): the
        mixture's samples, or for digits_pca the codes of n_train digits chosen by a seeded permutation."""
        return toy_dataset(self.data).get_points(self, self.n_train, self.data_seed)

    def build_model(self) -> ToyMLP:
        """A freshly initialised network of this config's architecture (weights from the global generator)."""
        return ToyMLP(self.dim, self.width, self.n_blocks, self.share_blocks, self.input_bias)

    @classmethod
    def from_dict(cls, d: dict) -> "ToyConfig":
        """The config of a :meth:`to_dict` (which writes ``means`` as [] for data other than mixture_1d)."""
        d = dict(d)
        if "means" in d:
            d["means"] = tuple(d["means"]) or cls.means
        if "weights" in d:
            d["weights"] = tuple(d["weights"])
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["means"] = list(self.means) if self.data == "mixture_1d" else []
        if self.weights:
            d["weights"] = list(self.weights)
        else:                                  # equal weights keep the keys they had before the option
            del d["weights"]
        if self.data != "digits_pca":          # unused: keeps the keys of the toy runs as they were
            del d["latent_dim"]
        for name in ("continue_from", "parent_from", "late_from", "late_lr", "continue_lr"):   # unused: keeps the
            if not d[name]:                          # keys of plain runs as they were before these fields existed
                del d[name]
        if d["precision"] == "float32":        # float32 models keep the keys they had before the option
            del d["precision"]
        if not d["input_bias"]:                # the paper's network keeps the keys it had before the option
            del d["input_bias"]
        return d


@dataclass
class TrainedModel:
    model: ToyMLP
    config: ToyConfig
    losses: list = field(default_factory=list)     # mean loss over each block of `log_every` steps
    seconds: float = 0.0                           # wall time of training (when it was trained)
    from_cache: bool = False
    path: str = ""
    precision: str = "float32"                     # the precision training actually ran in

    @property
    def source(self) -> str:
        """Where the weights came from: "trained in this run", "shipped checkpoint" or "local cache"."""
        return source_of(self.from_cache, self.path)

    @classmethod
    def from_stored(cls, config: ToyConfig, stored: dict, from_cache: bool, path) -> "TrainedModel":
        """The model a cache file holds (``state_dict``, ``losses``, ``seconds``, ``precision``)."""
        return cls(cache.restore(config.build_model(), stored), config, list(stored["losses"]),
                   float(stored["seconds"]), from_cache, str(path), stored.get("precision", "float32"))

    def stored(self) -> dict:
        """What a cache file holds for this model (the inverse of :meth:`from_stored`)."""
        return {"state_dict": self.model.state_dict(), "losses": self.losses, "seconds": self.seconds,
                "precision": self.precision}

    def sample(self, n: int, seed: int, window: int = 0, progress: bool = False, observer=None,
               precision: str = DEFAULT_SAMPLING, compile: bool = False, keep_x_t: bool = False,
               cache: bool = False) -> SampleResult:
        """n ancestral samples (all T steps, paper settings) from a generator seeded with ``seed``
        (``window``, ``observer``, ``keep_x_t``: see :func:`mode_interp.diffusion.sample`; ``precision``,
        ``compile``: see :mod:`mode_interp.precision`, and the result's ``.precision`` / ``.compiled`` for what
        ran). ``cache=True``: the draw is kept in the cache folder and read back by any later call with the
        same weights and arguments (:func:`mode_interp.cache.cached_draw`: one draw serves two chapters)."""
        seed = check_int("seed", seed, 0, None)

        def draw() -> SampleResult:
            return sample(self.model.eps_for_sampling(precision, compile), n, self.config.dim, self.config.schedule(),
                          torch.Generator().manual_seed(seed), window=window, progress=progress, observer=observer,
                          keep_x_t=keep_x_t)

        if not check_bool("cache", cache):
            return draw()
        check_no_observer(observer)
        return cached_draw(self.model, {"toy": self.config.to_dict(), "n": check_int("n", n, 1, None), "seed": seed,
                                        "window": window, "keep_x_t": keep_x_t, "precision": resolve(precision),
                                        "compile": compile}, draw)


def train(config: ToyConfig, device: str = "cpu", progress: bool = True, log_every: int = 100,
          data: torch.Tensor | None = None, *, checkpoint_every: int = 0, snapshots=(),
          directory=None) -> TrainedModel:
    """Train a fresh ToyMLP on ``config.training_data()`` for ``config.steps`` Adam steps.

    ``data``: train on these points instead (shape (config.n_train, d); chapter 5's generations train on
    the previous generation's samples). A continuation (``continue_from``) then trains its parent on the
    same ``data`` too, uncached, and the result's ``seconds`` and ``losses`` include the parent's (its cost
    would otherwise be lost); a cached parent (``data=None``) keeps its cost in its own record.

    Long runs (the paper's 100k steps) survive being stopped:

    * ``checkpoint_every`` > 0 saves the whole training state (weights, Adam moments, both generators, the
      epoch's data order and position, the loss history and its running sum) every that many steps into a
      run file in ``directory`` (default :func:`mode_interp.cache.cache_dir`), and a later call resumes from
      it: the resumed run is bit-identical to an uninterrupted one, loss history included.
    * ``snapshots``: steps s < ``config.steps`` at which the model is also stored in the cache under
      :meth:`ToyConfig.at_step` (s): the same weights training that config from scratch would give (the
      first s steps of this run *are* that run), so ``load_or_train(config.at_step(s))`` finds them.

    Both need the config's own data (``data=None``) and a plain config (no ``continue_from``).
    """
    check_instance("config", config, ToyConfig)
    device = check_device(device)
    check_bool("progress", progress)
    log_every = check_int("log_every", log_every, 1, None)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, 0, None)
    snapshots = _check_snapshots(snapshots, config)
    if (checkpoint_every or snapshots) and (data is not None or config.continue_from):
        raise ValueError("checkpoint_every and snapshots need data=None and continue_from=0 (a run that "
                         "its config alone reproduces)")
    setting = "MODE_INTERP_CACHE" if directory is None else "directory"
    directory = cache.cache_dir() if directory is None else Path(directory)
    dim = config.dim
    if data is not None:
        data = check_points("data", data, dim)
        if len(data) != config.n_train:
            raise ValueError(f"data must have config.n_train = {config.n_train} rows, got {len(data)}")
    with torch.random.fork_rng(devices=[]):      # nn.Linear's init draws from the global generator:
        torch.manual_seed(config.seed)           # seed it inside a fork, leaving the caller's state as it was
        model = config.build_model()
    parent_seconds, parent_losses = 0.0, []
    if config.parent() is not None:
        if data is None:
            parent = load_or_train(config.parent(), device, progress)
        else:
            parent = train(config.parent(), device, progress, log_every, data)
            parent_seconds, parent_losses = parent.seconds, parent.losses
        model.load_state_dict(parent.model.state_dict())
    model = model.to(device)
    g = torch.Generator(device=device).manual_seed(config.seed + config.continue_from)
    g_cpu = torch.Generator().manual_seed(config.seed + config.continue_from)
    precision = resolve(config.precision, device)       # float32 (with a warning) where bf16 is not native
    keep = precision == config.precision                 # a fallback run neither reads nor writes run files
    eps_fn = model if precision == "float32" else (lambda x_t, t: model(x_t, t, precision))
    data = (config.training_data() if data is None else data.float()).to(device)
    schedule = config.schedule()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
    batch = min(config.batch_size, config.n_train)
    losses, running, step, order, pos, before = list(parent_losses), 0.0, config.continue_from, None, 0, 0.0
    run_key = {"run": config.to_dict(), "log_every": log_every}
    run_path = directory / cache.file_name(run_key, f"toy-run-{config.data}")
    state = cache.load_verified(run_path, run_key) if checkpoint_every and keep else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["generator"])
        g_cpu.set_state(state["generator_cpu"])
        step, losses, running, pos, before = state["step"], list(state["losses"]), state["running"], state["pos"], state["seconds"]
        order = None if state["order"] is None else state["order"].to(device)
    if step < config.steps and (checkpoint_every or snapshots):
        cache.check_writable(directory, setting)     # fail now, not after hours of training
    start = time.perf_counter()

    def seconds() -> float:
        return parent_seconds + before + time.perf_counter() - start

    def save_run():
        cache.save_atomic({"step": step, "model": model.state_dict(), "opt": opt.state_dict(),
                           "generator": g.get_state(), "generator_cpu": g_cpu.get_state(),
                           "order": None if order is None else order.cpu(), "pos": pos, "losses": losses,
                           "running": running, "seconds": seconds() - parent_seconds}, run_path, run_key)

    with tqdm(total=config.steps, initial=step, disable=not progress, desc="training", unit="step") as bar:
        while step < config.steps:
            if order is None:                     # a new epoch: a fresh permutation of the training set
                order, pos = torch.randperm(config.n_train, generator=g_cpu).to(device), 0
            if config.late_from and step == max(config.late_from, config.continue_from):
                for group in opt.param_groups:
                    group["lr"] = config.late_lr
            if config.continue_lr and step == config.continue_from:
                for group in opt.param_groups:
                    group["lr"] = config.continue_lr
            loss = eps_mse_loss(eps_fn, data[order[pos:pos + batch]], schedule, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            pos += batch
            if pos + batch > config.n_train:      # the epoch's last full batch: the remainder is dropped
                order = None
            running += loss.item()
            step += 1
            bar.update(1)
            if step % log_every == 0:
                losses.append(running / log_every)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                running = 0.0
            if keep and step in snapshots:
                _store_snapshot(config.at_step(step), model, losses, seconds(), precision, directory)
            if keep and checkpoint_every and (step % checkpoint_every == 0 or step == config.steps):
                save_run()
    model.eval()
    return TrainedModel(model.cpu(), config, losses, seconds(), precision=precision)


def _check_snapshots(snapshots, config: ToyConfig) -> frozenset:
    if isinstance(snapshots, (str, bytes)) or not hasattr(snapshots, "__iter__"):
        raise ValueError(f"snapshots must be a collection of steps, got {snapshots!r}")
    return frozenset(check_int("snapshots", s, 1, config.steps - 1) for s in snapshots)


def _store_snapshot(config: ToyConfig, model, losses: list, seconds: float, precision: str, directory: Path):
    """Store ``model`` (deep-copied to the CPU) as the cache file of ``config``, as load_or_train would."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    cache.save_atomic({"state_dict": state, "losses": list(losses), "seconds": seconds, "precision": precision},
                      directory / cache.file_name(config.to_dict(), f"toy-{config.data}"), config.to_dict())


SHIPPED_DIR = cache.SHIPPED_DIR


def source_of(from_cache: bool, path) -> str:
    """"trained in this run", "shipped checkpoint" (a file in :data:`SHIPPED_DIR`) or "local cache"."""
    if not from_cache:
        return "trained in this run"
    return "shipped checkpoint" if Path(path).parent == SHIPPED_DIR else "local cache"


class _NotNative(Exception):
    """Raised inside a cache's create(): the config's training precision cannot run here."""


def load_or_train(config: ToyConfig, device: str = "cpu", progress: bool = True,
                  directory=None, shipped: bool = True, retrain: bool = False, *, checkpoint_every: int = 0,
                  snapshots=()) -> TrainedModel:
    """The stored model for ``config`` if a valid file exists, else train it and cache it.

    Looks in the cache folder (``directory``, default :func:`mode_interp.cache.cache_dir`), then, if
    ``shipped``, in the checkpoints shipped with the package (:data:`SHIPPED_DIR`, see its MANIFEST.json).
    ``retrain=True`` ignores both and trains from scratch (the result is cached). A bfloat16 config that
    must be trained on a machine without native bfloat16 trains in float32 (with a warning) and is *not*
    cached, so that no float32 model is ever stored under a bfloat16 key. ``checkpoint_every`` and
    ``snapshots``: a resumable run that also stores earlier snapshots (:func:`train`), in ``directory``.
    """
    check_instance("config", config, ToyConfig)
    device = check_device(device)
    check_bool("progress", progress)
    check_bool("shipped", shipped)
    check_bool("retrain", retrain)
    check_int("checkpoint_every", checkpoint_every, 0, None)
    _check_snapshots(snapshots, config)

    def create():
        if resolve(config.precision, device) != config.precision:
            raise _NotNative
        return train(config, device, progress, checkpoint_every=checkpoint_every, snapshots=snapshots,
                     directory=directory).stored()

    try:
        stored, path, hit = cache.load_or_create(config.to_dict(), create, name=f"toy-{config.data}",
                                                 directory=directory, refresh=retrain,
                                                 read_only=(SHIPPED_DIR,) if shipped else (),
                                                 check=lambda s: TrainedModel.from_stored(config, s, True, ""))
    except _NotNative:
        warnings.warn(f"precision={config.precision!r} is not native here: trained in float32 instead, and not "
                      "cached under the config's key", RuntimeWarning, stacklevel=2)
        return train(config, device, progress)
    if stored.get("precision", "float32") != config.precision:    # files from before the option: float32
        warnings.warn(f"{path} holds a model trained in {stored.get('precision', 'float32')}, not "
                      f"{config.precision}: retraining", RuntimeWarning, stacklevel=2)
        return load_or_train(config, device, progress, directory, shipped, retrain=True)
    return TrainedModel.from_stored(config, stored, hit, path)


def _cli(argv=None) -> None:
    """``python -m mode_interp.train [--field value ...] [--checkpoint-every K] [--snapshots S ...] [--out DIR]``:
    train one ToyConfig and record it.

    Writes the model file (same format and name as the cache) into ``--out`` (default: the shipped
    checkpoints folder) and appends the exact command, config, seed, thread count and training time to
    ``MANIFEST.json`` there. ``--checkpoint-every K`` makes the run resumable (its run file, and the
    ``--snapshots`` models, go to the cache folder, ``MODE_INTERP_CACHE``); each snapshot step is also
    written into ``--out`` with its own MANIFEST entry.
    """
    extra = {"--checkpoint-every": {"type": int, "default": 0, "metavar": "K",
                                    "help": "save the whole training state every K steps (resumable)"},
             "--snapshots": {"type": int, "nargs": "+", "default": [], "metavar": "S",
                             "help": "also store the model after each of these steps"}}
    def check(config, options, device):
        check_int("checkpoint_every", options["checkpoint_every"], 0, None)
        _check_snapshots(options["snapshots"], config)
        require_native(config.precision, device)

    config, out, device, options = parse_config(ToyConfig, argv, "python -m mode_interp.train", _cli.__doc__,
                                                SHIPPED_DIR, extra, check)
    cache.check_writable(out, "--out")
    snapshots = sorted(_check_snapshots(options["snapshots"], config))
    trained = train(config, device, checkpoint_every=options["checkpoint_every"], snapshots=snapshots)
    for step in snapshots:
        snap = load_or_train(config.at_step(step), device, progress=False, shipped=False)
        if not snap.from_cache:
            raise RuntimeError(f"snapshot {step} was not stored in {cache.cache_dir()}")
        _record(out, snap, argv, device)
    path = _record(out, trained, argv, device)
    print(f"wrote {path} ({trained.seconds:.0f} s)")


def _record(out: Path, trained: TrainedModel, argv, device: str) -> Path:
    """Write ``trained`` into ``out`` and its MANIFEST entry; return the file."""
    path = out / cache.file_name(trained.config.to_dict(), f"toy-{trained.config.data}")
    cache.save_atomic(trained.stored(), path, trained.config.to_dict())
    cache.record_manifest(out, path.name, argv, trained.config.to_dict(), trained.seconds, device,
                          trained.losses[-1] if trained.losses else None, precision=trained.precision)
    return path


if __name__ == "__main__":
    _cli()
