"""``boundary_lipschitz``: how steep one trained 1-D toy model's denoiser is between neighbouring modes
(:func:`mode_interp.smoothing.boundary_lipschitz`, chapter 6).

The spec names a model exactly as ``toy_model`` does (``model`` and the replicate ``seed``: the model
trained with ``data_seed + seed`` and ``model.seed + seed``), so a record pairs with that model's
``toy_model`` record (its hallucinated samples per gap) by equal ``model`` and ``seed``
(:func:`mode_interp.lipschitz.rows`). No sampling: the network is evaluated on ``n_grid`` points per gap
and timestep, a second or so per model once it is trained (or found in the cache or the shipped files).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .._validate import check_int, check_ints
from ..smoothing import boundary_lipschitz
from ..train import ToyConfig, load_or_train
from .models import _plain, replicate
from .records import Experiment, register, spec_dict, spec_from_dict


@dataclass(frozen=True)
class BoundaryLipschitz:
    model: ToyConfig
    seed: int = 0                       # replicate (as toy_model)
    ts: tuple = (0, 1, 2, 5, 10, 20)    # timesteps where the slopes are measured
    n_grid: int = 4001                  # points per gap

    def __post_init__(self):
        if not isinstance(self.model, ToyConfig):
            raise TypeError(f"model must be a ToyConfig, got {type(self.model).__name__}")
        if self.model.data != "mixture_1d":
            raise ValueError("boundary_lipschitz measures a 1-D mixture model (data 'mixture_1d'), "
                             f"got {self.model.data!r}")
        check_int("seed", self.seed, 0, 999)
        object.__setattr__(self, "ts", tuple(check_ints("ts", list(self.ts), 0, self.model.T - 1, min_len=1)))
        check_int("n_grid", self.n_grid, 3, 10**7)

    @property
    def config(self) -> ToyConfig:
        """The replicate's model config."""
        return replicate(self.model, self.seed)

    def to_dict(self) -> dict:
        return spec_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BoundaryLipschitz":
        return spec_from_dict(cls, d, "boundary_lipschitz", ToyConfig)


def run(spec: BoundaryLipschitz) -> tuple:
    config = spec.config
    trained = load_or_train(config, progress=False)
    start = time.perf_counter()
    result = boundary_lipschitz(trained.model, config.mixture(), config.schedule(), spec.ts, spec.n_grid)
    seconds = time.perf_counter() - start
    info = {"computed_seconds": round(seconds, 1), "source": trained.source,
            "train_seconds": round(trained.seconds, 1), "precision": trained.precision}
    return _plain(result), info


register(Experiment("boundary_lipschitz", BoundaryLipschitz, run,
                    doc="a 1-D toy model's denoiser slope between neighbouring modes (chapter 6)"))
