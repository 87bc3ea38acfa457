"""``shapes_model``: the SIMPLE SHAPES U-Net trained (resumably) and counted at several training steps.

One run trains to ``model.steps``; every step of ``at_steps`` is a stored model of its own (the shorter
run: :func:`mode_interp.image_train.load_or_train_shapes` on the same config with fewer ``steps`` resumes
the one run file, so the snapshots are points along a single training run). At each, ``n_samples`` images
are drawn with the ancestral sampler on a chain respaced to ``sample_steps`` steps (chapter 3) from seed
``sample_seed + seed`` and read by the shape counter (:mod:`mode_interp.shape_counter`, tolerances fitted
on the training set): per label (valid, hallucinated, malformed, noisy) the count, rate and Wilson interval
at ``z`` (:meth:`mode_interp.shapes_report.Generated.numbers`). Replicate ``seed`` draws its training set
with ``data_seed + seed`` and its initialisation and batches with ``model.seed + seed`` (replicate 0 is
``model`` itself). The record also keeps the final run's loss curve (mean per 50 steps).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from .. import cache
from .._validate import check_float, check_int
from ..image_train import ShapesConfig, load_or_train_shapes
from .models import replicate
from .records import Experiment, register, spec_dict, spec_from_dict


@dataclass(frozen=True)
class ShapesModel:
    model: ShapesConfig
    at_steps: tuple = ()                 # training steps to count at (default: model.steps only)
    seed: int = 0                        # replicate (module docstring)
    n_samples: int = 1_000
    sample_seed: int = 0
    sample_steps: int = 250              # the respaced chain (the model trains with T = 1000)
    z: float = 3.29

    def __post_init__(self):
        if not isinstance(self.model, ShapesConfig):
            raise TypeError(f"model must be a ShapesConfig, got {type(self.model).__name__}")
        if isinstance(self.at_steps, (str, bytes)) or not hasattr(self.at_steps, "__iter__"):
            raise ValueError(f"at_steps must be a list of training steps, got {self.at_steps!r}")
        steps = sorted({check_int("at_steps", s, 1, self.model.steps) for s in self.at_steps} | {self.model.steps})
        object.__setattr__(self, "at_steps", tuple(steps))
        check_int("seed", self.seed, 0, 999)
        check_int("n_samples", self.n_samples, 1, 1_000_000)
        check_int("sample_seed", self.sample_seed, 0, None)
        check_int("sample_steps", self.sample_steps, 2, self.model.T)
        check_float("z", self.z, 0.0, None, lo_open=True)

    @property
    def config(self) -> ShapesConfig:
        """The replicate's model config."""
        return replicate(self.model, self.seed)

    def to_dict(self) -> dict:
        return spec_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ShapesModel":
        return spec_from_dict(cls, d, "shapes_model", ShapesConfig)


def run(spec: ShapesModel) -> tuple:
    from ..shape_counter import fit_tolerances
    from ..shapes import to_model_space
    from ..shapes_report import generate

    config = spec.config
    data = config.data()
    tol = fit_tolerances(data, to_model_space(data.images, config.resolution))
    rows, seconds = [], 0.0
    for step in spec.at_steps:            # ascending: each resumes the run the one before it left
        trained = load_or_train_shapes(replace(config, steps=step), progress=False)
        start = time.perf_counter()
        generated = generate(trained, tol, spec.n_samples, spec.sample_seed + spec.seed, steps=spec.sample_steps)
        sample_seconds = time.perf_counter() - start
        seconds += sample_seconds
        rows.append({"step": step, "final_loss": trained.losses[-1] if trained.losses else None,
                     "train_seconds": round(trained.seconds, 1), "sample_seconds": round(sample_seconds, 1),
                     "source": trained.source, **generated.numbers(spec.z)})
    # the run's training is shared by every snapshot of it (a record per snapshot): counted once in an index
    info = {"precision": trained.precision, "computed_seconds": round(seconds, 1),
            "shared_key": "shapes-run-" + cache.config_key(config.run_dict())[:20],
            "shared_seconds": round(trained.seconds, 1)}
    return {"rows": rows, "losses": list(trained.losses)}, info


register(Experiment("shapes_model", ShapesModel, run,
                    doc="the SIMPLE SHAPES U-Net trained with snapshots and counted at each (chapter 3)"))
