"""``toy_model``: a toy model trained (resumably, with snapshots) and measured at several training steps.

Replicate ``seed`` draws its training set with ``data_seed + seed``, its initialisation and data order
with ``model.seed + seed`` and its samples with ``sample_seed + seed`` (replicate 0 is ``model`` itself).
The run trains to ``model.steps`` once, storing a snapshot at every other step of ``at_steps``
(:func:`mode_interp.train.train`: a snapshot *is* the shorter run), and each step's model is measured on
``n_samples`` samples (``compile``: through :func:`torch.compile`, recorded as ``compiled``; each
snapshot's samples are kept in the cache folder by :func:`samples`, so a stopped run resumes at the first
snapshot not yet sampled) by :func:`measure`, the one definition of a toy model's numbers:

* ``hallucinated`` (farther than ``k_label`` sigma from every mode) with its count and Wilson interval
  at ``z``, beside the true mixture's own rate;
* the stricter gate (:func:`mode_interp.interpolation.strict_gate` on a ``k_gate`` sigma mode summary):
  its checks and numbers, per-mode spreads and weights, the modes it calls blurred;
* where the off-mode mass lies: 2-D, :func:`mode_interp.interpolation.off_mode_breakdown` and, per segment
  between nearest neighbours, its count and mean position (:func:`mode_interp.interpolation.segment_profile`);
  1-D, the count in each gap between neighbouring modes (:func:`mode_interp.interpolation.gap_counts`) per
  unit of gap length, and where in the gap it lies (:func:`mode_interp.interpolation.gap_profile`);
* with ``hal_window`` > 0, the trajectory-variance detector (Hal, chapter 4) on the same samples: its
  AUROC and the in-support samples it removes from each mode (:func:`detector_numbers`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from .._validate import check_bool, check_float, check_int
from ..cache import load_or_create, weights_digest
from ..detect import WindowVariance
from ..precision import DEFAULT_SAMPLING, resolve
from ..train import ToyConfig, load_or_train
from .records import Experiment, register, spec_dict, spec_from_dict


@dataclass(frozen=True)
class ToyModel:
    model: ToyConfig
    at_steps: tuple = ()              # training steps to measure at (default: model.steps only)
    seed: int = 0                     # replicate (module docstring)
    n_samples: int = 200_000
    sample_seed: int = 0
    k_label: float = 5.0
    k_gate: float = 3.0
    z: float = 3.29
    checkpoint_every: int = 1_000     # the run's resumable state, in the cache folder
    compile: bool = False             # sample through torch.compile (mode_interp.precision; ~1.8x on 1-D)
    hal_window: int = 0               # > 0: also score every sample by Hal over its last hal_window steps

    def __post_init__(self):
        if not isinstance(self.model, ToyConfig):
            raise TypeError(f"model must be a ToyConfig, got {type(self.model).__name__}")
        if self.model.data == "digits_pca":
            raise ValueError("toy_model measures a Gaussian-mixture run (not digits_pca)")
        if isinstance(self.at_steps, (str, bytes)) or not hasattr(self.at_steps, "__iter__"):
            raise ValueError(f"at_steps must be a list of training steps, got {self.at_steps!r}")
        steps = sorted({check_int("at_steps", s, 1, self.model.steps) for s in self.at_steps} | {self.model.steps})
        if self.model.continue_from and steps != [self.model.steps]:
            raise ValueError("a continuation (continue_from > 0) is measured at its last step only: at_steps must "
                             f"be empty or [{self.model.steps}], got {list(self.at_steps)}")
        object.__setattr__(self, "at_steps", tuple(steps))
        check_int("seed", self.seed, 0, 999)
        check_int("n_samples", self.n_samples, 1, 10_000_000)
        check_int("sample_seed", self.sample_seed, 0, None)
        check_float("k_label", self.k_label, 0.0, None, lo_open=True)
        check_float("k_gate", self.k_gate, 0.0, None, lo_open=True)
        check_float("z", self.z, 0.0, None, lo_open=True)
        check_int("checkpoint_every", self.checkpoint_every, 1, None)
        check_bool("compile", self.compile)
        check_int("hal_window", self.hal_window, 0, self.model.T)
        if self.hal_window == 1:
            raise ValueError("hal_window must be 0 (off) or at least 2 steps (a variance), got 1")

    @property
    def config(self) -> ToyConfig:
        """The replicate's model config."""
        return replicate(self.model, self.seed)

    def to_dict(self) -> dict:        # eager sampling and no detector keep the keys of older records
        return spec_dict(self, omit_if_off=("compile", "hal_window"))

    @classmethod
    def from_dict(cls, d: dict) -> "ToyModel":
        return spec_from_dict(cls, d, "toy_model", ToyConfig)


def replicate(model, seed: int):
    """Replicate ``seed`` of ``model`` (a ToyConfig or a ShapesConfig): its training set drawn with
    ``data_seed + seed``, its initialisation and data order with ``model.seed + seed`` (replicate 0 is
    ``model`` itself)."""
    return replace(model, data_seed=model.data_seed + seed, seed=model.seed + seed)


def _plain(x):
    """numpy arrays and scalars as plain lists and numbers (a record is JSON)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def measure(x: torch.Tensor, config: ToyConfig, k_label: float = 5.0, k_gate: float = 3.0, z: float = 3.29,
            hal: torch.Tensor | None = None) -> dict:
    """The numbers of one model's samples ``x`` (module docstring), as plain JSON types; with ``hal`` (one
    Hal score per sample), also the ``detector``'s (:func:`detector_numbers`).

    Samples that diverged (NaN or infinite: an early snapshot's chain can blow up) are reported as
    ``non_finite``, counted as hallucinated in ``hallucination``, and left out of every other number."""
    from ..interpolation import (gap_counts, gap_profile, hallucination_summary, mode_summary, off_mode_breakdown,
                                 segment_profile, strict_gate)

    from ..stats import wilson_interval

    mixture = config.mixture()
    x = x.to(torch.float64)
    finite = torch.isfinite(x).all(dim=1)
    n, non_finite = len(x), int((~finite).sum())
    if non_finite == n:
        raise ValueError(f"all {n} samples are NaN or infinite: nothing to measure")
    x = x[finite]
    if hal is not None and len(hal) != n:
        raise ValueError(f"hal has {len(hal)} scores but x has {n} samples")
    summary = mode_summary(x, mixture, k_gate)
    gate = strict_gate(summary, mixture, config.schedule())
    h = hallucination_summary(x, mixture, k_label, z)
    if non_finite:            # a diverged sample is off every mode: counted as hallucinated, and reported
        h["count"], h["n"] = h["count"] + non_finite, n
        h["rate"] = h["count"] / n
        h["lo"], h["hi"] = wilson_interval(h["count"], n, z)
        h["ratio_lo"] = h["lo"] / h["true_rate"]
    out = {"non_finite": non_finite, "hallucination": h,
           "gate": gate,
           "mode_std": summary["std"], "mode_weights": summary["weights"]}
    if mixture.dim == 2:
        out["breakdown"] = off_mode_breakdown(x, mixture, k_gate, k_label, z=z)
        out["segments"] = segment_profile(x, mixture, k_label)
    else:
        gaps, profile = gap_counts(x, mixture, k_label), gap_profile(x, mixture, k_label)
        out["gaps"] = [{"between": [a, b], "count": c, "per_unit_length": c / (b - a - 2 * k_label * mixture.sigma),
                        **profile[(a, b)]}
                       for (a, b), c in ((k, v) for k, v in gaps.items() if k != "outside")]
        out["outside"] = gaps["outside"]
    if hal is not None:
        out["detector"] = detector_numbers(x, hal[finite], mixture, k_label)
    return _plain(out)


MAX_BELOW = 20_000          # detector_numbers keeps the per-threshold counts up to this many hallucinations


def detector_numbers(x: torch.Tensor, hal: torch.Tensor, mixture, k_label: float = 5.0, retention: float = 0.96,
                     removal: float = 0.95) -> dict | None:
    """Hal on one model's (finite) samples ``x``: its AUROC and, at two thresholds, the counts per mode
    (:func:`mode_interp.detector_study.mode_false_positives`) with the hallucinations removed: ``at_retention``,
    the threshold that keeps ``retention`` of the in-support samples (the paper's 96%), and ``at_removal``,
    the one that removes ``removal`` of the hallucinations (chapter 4); and ``below``
    (:func:`mode_interp.detect.in_support_below_hallucinated`, when at most ``MAX_BELOW`` samples are
    hallucinated), from which :func:`mode_interp.detect.retention_bound` counts the threshold's own
    uncertainty. None when either class is empty."""
    from ..detect import auroc, in_support_below_hallucinated, threshold_for_removal, threshold_for_retention
    from ..detector_study import mode_false_positives
    from ..hallucination import is_hallucinated

    labels = is_hallucinated(x, mixture, k_label).numpy()
    scores = hal.to(torch.float64).numpy()
    if labels.all() or not labels.any():
        return None
    out = {"n_hallucinated": int(labels.sum()), "auroc": auroc(scores, labels)}
    for name, threshold in (("at_retention", threshold_for_retention(scores, labels, retention)),
                            ("at_removal", threshold_for_removal(scores, labels, removal))):
        out[name] = {**mode_false_positives(x, mixture, scores, labels, threshold),
                     "n_hallucinated_removed": int((scores[labels] > threshold).sum())}
    out["at_retention"]["target"], out["at_removal"]["target"] = retention, removal
    if out["n_hallucinated"] <= MAX_BELOW:
        out["below"] = in_support_below_hallucinated(scores, labels)
    return out


def run(spec: ToyModel) -> tuple:
    config = spec.config
    snapshots = spec.at_steps[:-1]
    final = load_or_train(config, progress=False, checkpoint_every=0 if config.continue_from else spec.checkpoint_every,
                          snapshots=snapshots)
    rows, seconds = [], 0.0
    for step in spec.at_steps:
        trained = final if step == config.steps else load_or_train(config.at_step(step), progress=False,
                                                                    snapshots=())
        drawn = samples(trained, spec)
        rows.append({"step": step, "final_loss": trained.losses[-1] if trained.losses else None,
                     "train_seconds": round(trained.seconds, 1), "sample_seconds": round(drawn["seconds"], 1),
                     "source": trained.source,
                     **measure(drawn["x0"], config, spec.k_label, spec.k_gate, spec.z, drawn["hal"])})
        seconds += drawn["seconds"]
    info = {"precision": final.precision, "sample_precision": drawn["precision"], "compiled": drawn["compiled"],
            "computed_seconds": round(final.seconds + seconds, 1)}
    return {"rows": rows}, info


def samples(trained, spec: ToyModel) -> dict:
    """One snapshot's ``n_samples`` samples ``x0`` (with ``hal_window``, their Hal scores ``hal``, else None),
    the wall ``seconds`` the chain took and the ``precision`` / ``compiled`` it ran with.

    Stored in the cache folder under the model's weights (their SHA-256) and every setting of the chain, so
    a run stopped while it measures its snapshots resumes at the first snapshot not yet sampled (200k samples
    of a 1-D snapshot take ~23 minutes on one float32 CPU thread); the numbers are always measured afresh
    from the stored samples, so a change to :func:`measure` never meets stale numbers."""
    key = {"toy_samples": trained.config.to_dict(), "weights": weights_digest(trained.model),
           "n_samples": spec.n_samples,
           "seed": spec.sample_seed + spec.seed, "compile": spec.compile, "hal_window": spec.hal_window,
           "precision": resolve(DEFAULT_SAMPLING)}

    def draw() -> dict:
        start = time.perf_counter()
        stream = (WindowVariance(spec.n_samples, trained.config.dim, spec.hal_window, diverged=True)
                  if spec.hal_window else None)
        result = trained.sample(spec.n_samples, key["seed"], compile=spec.compile, observer=stream)
        return {"x0": result.x0, "hal": stream.hal() if stream is not None else None,
                "seconds": time.perf_counter() - start, "precision": result.precision, "compiled": result.compiled}

    return load_or_create(key, draw, name="toy-samples")[0]


register(Experiment("toy_model", ToyModel, run,
                    doc="a toy model trained with snapshots and measured at each (chapters 2 and 4)"))
