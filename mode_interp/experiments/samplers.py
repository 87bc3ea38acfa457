"""``sampler_grid``: one toy model (or the exact score of its mixture) sampled by every chain of a grid of
samplers and step counts (:mod:`mode_interp.sampler_study`, chapter 6).

Replicate ``seed`` uses the model trained with ``data_seed + seed`` and ``model.seed + seed`` (as
``toy_model``) and draws every chain's x_T with ``sample_seed + seed``; for the exact score (``score =
"exact"``) only the sampling seed changes. Each row is :func:`mode_interp.sampler_study.run`'s; the
ancestral chain on all T steps (the paper's sampler) is also measured by
:func:`mode_interp.experiments.models.measure` (the strict gate, under ``reference``), so a record says
whether its model is trained well enough for a claim.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .._validate import check_choice, check_float, check_int, check_ints, check_optional_float
from ..diffusion import check_eta
from ..optimal import exact_eps_fn
from ..sampler_study import Sampler, run as run_chain
from ..train import ToyConfig, load_or_train
from .models import measure, replicate
from .records import Experiment, register, spec_dict, spec_from_dict


@dataclass(frozen=True)
class SamplerGrid:
    model: ToyConfig
    score: str = "learned"              # "learned" (the trained model) or "exact" (its mixture's true score)
    steps: tuple = (10, 20, 50, 100, 250, 1000)
    etas: tuple = (None, 1.0, 0.5, 0.0)  # None: the ancestral DDPM chain (sigma_t^2 = beta_t)
    seed: int = 0
    sample_seed: int = 0
    n_samples: int = 50_000
    k_label: float = 5.0
    window: int = 10
    clip_x0: float | None = 4.0

    def __post_init__(self):
        if not isinstance(self.model, ToyConfig):
            raise TypeError(f"model must be a ToyConfig, got {type(self.model).__name__}")
        if self.model.data == "digits_pca":
            raise ValueError("sampler_grid needs a Gaussian-mixture data set (not digits_pca)")
        check_choice("score", self.score, ("learned", "exact"))
        object.__setattr__(self, "steps", tuple(check_ints("steps", list(self.steps), 2, self.model.T, min_len=1)))
        if isinstance(self.etas, (str, bytes)) or not hasattr(self.etas, "__iter__") or not list(self.etas):
            raise ValueError(f"etas must be a non-empty list of DDIM noise scales in [0, 1] or null, got {self.etas!r}")
        object.__setattr__(self, "etas", tuple(None if e is None else check_eta(e) for e in self.etas))
        check_int("seed", self.seed, 0, 999)
        check_int("sample_seed", self.sample_seed, 0, None)
        check_int("n_samples", self.n_samples, 10, 10_000_000)
        check_float("k_label", self.k_label, 0.0, None, lo_open=True)
        check_int("window", self.window, 2, None)
        check_optional_float("clip_x0", self.clip_x0, 0.0, None, lo_open=True)

    @property
    def config(self) -> ToyConfig:
        """The replicate's model config."""
        return replicate(self.model, self.seed)

    def to_dict(self) -> dict:
        return spec_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SamplerGrid":
        return spec_from_dict(cls, d, "sampler_grid", ToyConfig)


def eps_function(spec: SamplerGrid):
    """``(eps_fn, trained)``: the replicate's network (``trained``: its TrainedModel) or the exact score
    (``trained`` None)."""
    config = spec.config
    if spec.score == "exact":
        return exact_eps_fn(config.mixture(), config.schedule()), None
    trained = load_or_train(config, progress=False)
    return trained.model.eps_for_sampling(), trained


def run(spec: SamplerGrid) -> tuple:
    config = spec.config
    mixture, schedule = config.mixture(), config.schedule()
    eps_fn, trained = eps_function(spec)
    start, rows, reference = time.perf_counter(), [], None
    for eta in spec.etas:
        for steps in spec.steps:
            sampler = Sampler(steps, eta)
            row, x = run_chain(eps_fn, mixture, schedule, sampler, spec.n_samples, spec.sample_seed + spec.seed,
                               spec.k_label, spec.window, clip_x0=spec.clip_x0, return_samples=True)
            rows.append({**row, "seed": spec.seed})
            if eta is None and steps == schedule.T:
                reference = measure(x, config, spec.k_label)
    seconds = time.perf_counter() - start
    info = {"computed_seconds": round(seconds + (trained.seconds if trained else 0.0), 1),
            "sample_seconds": round(seconds, 1), "source": trained.source if trained else "exact score"}
    return {"rows": rows, "reference": reference}, info


register(Experiment("sampler_grid", SamplerGrid, run,
                    doc="a toy model or the exact score under DDPM / DDIM at several step counts (chapter 6)"))
