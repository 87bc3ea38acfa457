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

import torch
from tqdm.auto import tqdm

from . import cache
from .cli import parse_config
from ._validate import check_choice, check_float, check_int, check_points
from .precision import DEFAULT_SAMPLING, check_precision, require_native, resolve
from .data import TOY_DATASETS, GaussianMixture, toy_dataset
from .diffusion import SampleResult, eps_mse_loss, sample
from .models import ToyMLP
from .schedule import Schedule, linear_schedule

DATASETS = tuple(TOY_DATASETS)          # mode_interp.data.TOY_DATASETS: the registry


@dataclass(frozen=True)
class ToyConfig:
    """Everything that determines a trained toy model (and so its cache key)."""

    data: str = "mixture_1d"
    means: tuple = (1.0, 2.0, 3.0)         # used by mixture_1d only
    sigma: float = 0.05                    # raw units (the grids divide by GRID_SCALE)
    n_train: int = 20_000
    data_seed: int = 0
    width: int = 128
    n_blocks: int = 3
    share_blocks: bool = True
    steps: int = 5_000                     # optimiser steps
    batch_size: int = 10_000
    lr: float = 1e-3
    seed: int = 1234
    T: int = 1000
    beta_start: float = 1e-3
    beta_end: float = 0.2
    continue_from: int = 0                 # >0: start from the weights of this config at that many steps
    late_from: int = 0                     # >0: from this step on, train with lr = late_lr (a step decay)
    late_lr: float = 0.0
    latent_dim: int = 32                   # used by digits_pca only: the number of principal axes
    precision: str = "float32"             # of the block products in training (mode_interp.precision)

    def __post_init__(self):
        check_choice("data", self.data, DATASETS)
        if check_precision(self.precision) == "auto":
            raise ValueError("precision must be 'float32' or 'bfloat16' for training (it is part of the "
                             "model's cache key), got 'auto'")
        object.__setattr__(self, "means", tuple(float(m) for m in self.means))
        check_float("sigma", self.sigma, 0.0, None, lo_open=True)
        for name, lo in [("n_train", 1), ("data_seed", 0), ("width", 4), ("n_blocks", 1), ("steps", 1),
                         ("batch_size", 1), ("seed", 0), ("T", 2)]:
            check_int(name, getattr(self, name), lo, None)
        check_float("lr", self.lr, 0.0, 1.0, lo_open=True)
        check_int("latent_dim", self.latent_dim, 1, 784)
        if toy_dataset(self.data).max_n is not None:
            check_int("n_train", self.n_train, 1, toy_dataset(self.data).max_n)    # a finite data set
        check_int("continue_from", self.continue_from, 0, self.steps - 1)
        check_int("late_from", self.late_from, 0, self.steps - 1)
        if self.late_from:
            check_float("late_lr", self.late_lr, 0.0, 1.0, lo_open=True)
        elif self.late_lr:
            raise ValueError(f"late_lr={self.late_lr} needs late_from > 0 (the step the lower rate starts at)")

    def parent(self) -> "ToyConfig | None":
        """The config whose trained weights this one continues from (``continue_from`` steps), or None.

        A continuation starts a fresh Adam and a fresh data order (seed + continue_from), so it is not
        bit-identical to one uninterrupted run of ``steps``; its cache key says so (it includes
        ``continue_from``) and the chain is reproducible from the configs alone.
        """
        if not self.continue_from:
            return None
        late = self.late_from and self.late_from < self.continue_from   # the decay already began in the parent
        return replace(self, steps=self.continue_from, continue_from=0, late_from=self.late_from if late else 0,
                       late_lr=self.late_lr if late else 0.0)

    def continued(self, extra_steps: int, late_lr: float) -> "ToyConfig":
        """This config trained on for ``extra_steps`` more steps at learning rate ``late_lr`` (a step decay
        at ``self.steps``), starting from this config's weights: its :meth:`parent` is ``self``."""
        if self.continue_from or self.late_from:
            raise ValueError("continued() takes a plain config (continue_from = late_from = 0)")
        extra_steps = check_int("extra_steps", extra_steps, 1, None)
        return replace(self, steps=self.steps + extra_steps, continue_from=self.steps, late_from=self.steps,
                       late_lr=check_float("late_lr", late_lr, 0.0, 1.0, lo_open=True))

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
        return ToyMLP(self.dim, self.width, self.n_blocks, self.share_blocks)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["means"] = list(self.means) if self.data == "mixture_1d" else []
        if self.data != "digits_pca":          # unused: keeps the keys of the toy runs as they were
            del d["latent_dim"]
        for name in ("continue_from", "late_from", "late_lr"):   # unused: keeps the keys of plain runs as
            if not d[name]:                                       # they were before these fields existed
                del d[name]
        if d["precision"] == "float32":        # float32 models keep the keys they had before the option
            del d["precision"]
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

    def sample(self, n: int, seed: int, window: int = 0, progress: bool = False, observer=None,
               precision: str = DEFAULT_SAMPLING, compile: bool = False) -> SampleResult:
        """n ancestral samples (all T steps, paper settings) from a generator seeded with ``seed``
        (``window``, ``observer``: see :func:`mode_interp.diffusion.sample`; ``precision``, ``compile``: see
        :mod:`mode_interp.precision`, and the result's ``.precision`` / ``.compiled`` for what ran)."""
        return sample(self.model.eps_for_sampling(precision, compile), n, self.config.dim, self.config.schedule(),
                      torch.Generator().manual_seed(check_int("seed", seed, 0, None)), window=window,
                      progress=progress, observer=observer)


def train(config: ToyConfig, device: str = "cpu", progress: bool = True, log_every: int = 100,
          data: torch.Tensor | None = None) -> TrainedModel:
    """Train a fresh ToyMLP on ``config.training_data()`` for ``config.steps`` Adam steps.

    ``data``: train on these points instead (shape (config.n_train, d); chapter 5's generations train on
    the previous generation's samples). A continuation (``continue_from``) then trains its parent on the
    same ``data`` too, uncached, and the result's ``seconds`` and ``losses`` include the parent's (its cost
    would otherwise be lost); a cached parent (``data=None``) keeps its cost in its own record.
    """
    check_choice("device", device, ("cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch.cuda.is_available() is False")
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
    eps_fn = model if precision == "float32" else (lambda x_t, t: model(x_t, t, precision))
    data = (config.training_data() if data is None else data.float()).to(device)
    schedule = config.schedule()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
    batch = min(config.batch_size, config.n_train)
    losses, running, step = list(parent_losses), 0.0, config.continue_from
    start = time.perf_counter()
    with tqdm(total=config.steps, initial=step, disable=not progress, desc="training", unit="step") as bar:
        while step < config.steps:
            order = torch.randperm(config.n_train, generator=g_cpu).to(device)
            for s in range(0, config.n_train - batch + 1, batch):
                if config.late_from and step == max(config.late_from, config.continue_from):
                    for group in opt.param_groups:
                        group["lr"] = config.late_lr
                loss = eps_mse_loss(eps_fn, data[order[s:s + batch]], schedule, g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                running += loss.item()
                step += 1
                bar.update(1)
                if step % log_every == 0:
                    losses.append(running / log_every)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
                    running = 0.0
                if step == config.steps:
                    break
    model.eval()
    return TrainedModel(model.cpu(), config, losses, parent_seconds + time.perf_counter() - start,
                        precision=precision)


SHIPPED_DIR = cache.SHIPPED_DIR


def source_of(from_cache: bool, path) -> str:
    """"trained in this run", "shipped checkpoint" (a file in :data:`SHIPPED_DIR`) or "local cache"."""
    if not from_cache:
        return "trained in this run"
    return "shipped checkpoint" if Path(path).parent == SHIPPED_DIR else "local cache"


class _NotNative(Exception):
    """Raised inside a cache's create(): the config's training precision cannot run here."""


def load_or_train(config: ToyConfig, device: str = "cpu", progress: bool = True,
                  directory=None, shipped: bool = True, retrain: bool = False) -> TrainedModel:
    """The stored model for ``config`` if a valid file exists, else train it and cache it.

    Looks in the cache folder (``directory``, default :func:`mode_interp.cache.cache_dir`), then, if
    ``shipped``, in the checkpoints shipped with the package (:data:`SHIPPED_DIR`, see its MANIFEST.json).
    ``retrain=True`` ignores both and trains from scratch (the result is cached). A bfloat16 config that
    must be trained on a machine without native bfloat16 trains in float32 (with a warning) and is *not*
    cached, so that no float32 model is ever stored under a bfloat16 key.
    """
    def create():
        if resolve(config.precision, device) != config.precision:
            raise _NotNative
        trained = train(config, device, progress)
        return {"state_dict": trained.model.state_dict(), "losses": trained.losses, "seconds": trained.seconds,
                "precision": trained.precision}

    try:
        stored, path, hit = cache.load_or_create(config.to_dict(), create, name=f"toy-{config.data}",
                                                 directory=directory, refresh=retrain,
                                                 read_only=(SHIPPED_DIR,) if shipped else ())
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
    """``python -m mode_interp.train [--field value ...] [--out DIR]``: train one ToyConfig and record it.

    Writes the model file (same format and name as the cache) into ``--out`` (default: the shipped
    checkpoints folder) and appends the exact command, config, seed, thread count and training time to
    ``MANIFEST.json`` there.
    """
    config, out, device = parse_config(ToyConfig, argv, "python -m mode_interp.train", _cli.__doc__,
                                       SHIPPED_DIR)
    require_native(config.precision, device)
    trained = load_or_train(config, device=device, directory=out, shipped=False, retrain=True)
    cache.record_manifest(out, Path(trained.path).name, argv, config.to_dict(), trained.seconds, device,
                          trained.losses[-1] if trained.losses else None, precision=trained.precision)
    print(f"wrote {trained.path} ({trained.seconds:.0f} s)")


if __name__ == "__main__":
    _cli()
