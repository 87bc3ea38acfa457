"""Seeded, CPU-first training of the toy eps-network (paper-notes §3.1), with load-or-train caching.

Defaults follow the official code: Adam (lr 1e-3, betas 0.9/0.999), batch 10,000, eps-MSE with t uniform
on {0..T-1}, no EMA, no gradient clipping. Two deliberate differences, both stated: the training set is
drawn from a *seeded* generator (the official code draws it unseeded), and it is reshuffled every epoch
(the official loader walks it in a fixed order).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from . import cache
from ._validate import check_choice, check_float, check_int
from .data import GaussianMixture, grid_25, mixture_1d, rotated_grid_25
from .diffusion import eps_mse_loss
from .models import ToyMLP
from .schedule import Schedule, linear_schedule

DATASETS = ("mixture_1d", "grid_25", "rotated_grid_25")


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

    def __post_init__(self):
        check_choice("data", self.data, DATASETS)
        object.__setattr__(self, "means", tuple(float(m) for m in self.means))
        check_float("sigma", self.sigma, 0.0, None, lo_open=True)
        for name, lo in [("n_train", 1), ("data_seed", 0), ("width", 4), ("n_blocks", 1), ("steps", 1),
                         ("batch_size", 1), ("seed", 0), ("T", 2)]:
            check_int(name, getattr(self, name), lo, None)
        check_float("lr", self.lr, 0.0, 1.0, lo_open=True)

    def mixture(self) -> GaussianMixture:
        if self.data == "mixture_1d":
            return mixture_1d(self.means, self.sigma)
        return (grid_25 if self.data == "grid_25" else rotated_grid_25)(sigma=self.sigma)

    def schedule(self) -> Schedule:
        return linear_schedule(self.T, self.beta_start, self.beta_end)

    def training_data(self) -> torch.Tensor:
        return self.mixture().sample(self.n_train, torch.Generator().manual_seed(self.data_seed))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["means"] = list(self.means) if self.data == "mixture_1d" else []
        return d


@dataclass
class TrainedModel:
    model: ToyMLP
    config: ToyConfig
    losses: list = field(default_factory=list)     # mean loss over each block of `log_every` steps
    seconds: float = 0.0                           # wall time of training (when it was trained)
    from_cache: bool = False
    path: str = ""


def train(config: ToyConfig, device: str = "cpu", progress: bool = True, log_every: int = 100) -> TrainedModel:
    """Train a fresh ToyMLP on ``config.training_data()`` for ``config.steps`` Adam steps."""
    check_choice("device", device, ("cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch.cuda.is_available() is False")
    with torch.random.fork_rng(devices=[]):      # nn.Linear's init draws from the global generator:
        torch.manual_seed(config.seed)           # seed it inside a fork, leaving the caller's state as it was
        model = ToyMLP(config.mixture().dim, config.width, config.n_blocks, config.share_blocks)
    model = model.to(device)
    g = torch.Generator(device=device).manual_seed(config.seed)
    g_cpu = torch.Generator().manual_seed(config.seed)
    data = config.training_data().to(device)
    schedule = config.schedule()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
    batch = min(config.batch_size, config.n_train)
    losses, running, step = [], 0.0, 0
    start = time.perf_counter()
    with tqdm(total=config.steps, disable=not progress, desc="training", unit="step") as bar:
        while step < config.steps:
            order = torch.randperm(config.n_train, generator=g_cpu).to(device)
            for s in range(0, config.n_train - batch + 1, batch):
                loss = eps_mse_loss(model, data[order[s:s + batch]], schedule, g)
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
    return TrainedModel(model.cpu(), config, losses, time.perf_counter() - start)


def load_or_train(config: ToyConfig, device: str = "cpu", progress: bool = True,
                  directory=None) -> TrainedModel:
    """The cached model for ``config`` if a valid cache file exists, else train it and cache it."""
    def create():
        trained = train(config, device, progress)
        return {"state_dict": trained.model.state_dict(), "losses": trained.losses, "seconds": trained.seconds}

    stored, path, hit = cache.load_or_create(config.to_dict(), create, name=f"toy-{config.data}",
                                             directory=directory)
    model = ToyMLP(config.mixture().dim, config.width, config.n_blocks, config.share_blocks)
    model.load_state_dict(stored["state_dict"])
    model.eval()
    return TrainedModel(model, config, list(stored["losses"]), float(stored["seconds"]), hit, str(path))
