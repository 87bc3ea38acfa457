"""Does the fast engine change the science? bfloat16 against float32 sampling of one model, same seed.

For a toy model (:func:`compare_toy`) each precision draws n samples from the same generator seed, so the
two runs see the same noise and differ only by the arithmetic. Reported per precision: the hallucinated
fraction (> k sigma from every mode) with its Wilson interval, Hal's AUROC with its DeLong interval, the
per-mode spread, and the seconds taken. The verdict (``equal``) needs all three of

- the hallucinated fractions equal under the pooled two-proportion test at 99.9% (|z| < 3.29; the runs
  are paired, so this unpaired test is conservative in favour of equality: the paired counts are also
  reported: samples hallucinated in one run and not the other);
- each AUROC inside the other's 99.9% DeLong interval (not tested when a run has a single class);
- the modes' spread within ``spread_tol`` (2%) of the float32 one: the mean over modes of the relative
  difference of each mode's spread. The largest single mode's difference and the spread of the per-mode
  differences are reported beside it: with a few hundred samples per mode (the 25-mode grid) one mode's
  spread moves by a percent or two between two runs even when they share their noise, because the chain
  amplifies a small change of eps_hat into a different sample for part of the batch.

:func:`compare_shapes` does the same for a SIMPLE SHAPES U-Net, with the shape counter's labels
(hallucinated among the readable images) and whole-image Hal. :func:`compare_training` compares a model
trained in bfloat16 with its float32 twin (both sampled in float32): quality gate and hallucinated rate.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ._validate import check_float, check_int
from .detect import WindowVariance, auroc_interval
from .hallucination import is_hallucinated
from .stats import two_proportion_z, wilson_interval
from .interpolation import mode_summary, quality_gate
from .precision import check_precision

Z999 = 3.29


def _rates(labels_a: np.ndarray, labels_b: np.ndarray) -> dict:
    n_a, n_b = len(labels_a), len(labels_b)
    c_a, c_b = int(labels_a.sum()), int(labels_b.sum())
    z = two_proportion_z(c_a, n_a, c_b, n_b)
    out = {"z": z, "rates_equal": abs(z) < Z999}
    if n_a == n_b:
        out["paired_discordant"] = int((labels_a != labels_b).sum())
    return out


def _auroc(scores, labels):
    """Hal's AUROC with its 99.9% DeLong interval, or None when the labels hold a single class."""
    return auroc_interval(scores, labels, Z999) if 0 < labels.sum() < len(labels) else None


def _aurocs_overlap(a, b):
    """Each AUROC inside the other's interval; None when either run has no AUROC (a single class)."""
    if a is None or b is None:
        return None
    return a["lo"] <= b["auroc"] <= a["hi"] and b["lo"] <= a["auroc"] <= b["hi"]


def _run_toy(trained, n: int, seed: int, precision: str, window: int, k: float) -> dict:
    mixture = trained.config.mixture()
    stream = WindowVariance(n, mixture.dim, window)
    start = time.perf_counter()
    result = trained.sample(n, seed, observer=stream, precision=precision)
    seconds = time.perf_counter() - start
    labels = is_hallucinated(result.x0, mixture, k).numpy()
    count = int(labels.sum())
    lo, hi = wilson_interval(count, n, Z999)
    summary = mode_summary(result.x0, mixture)
    return {"precision": result.precision, "seconds": seconds, "n": n, "hallucinated": count, "rate": count / n,
            "rate_lo": lo, "rate_hi": hi, "auroc": _auroc(stream.hal().numpy(), labels),
            "spread": summary["std"].tolist(), "within": summary["within"], "labels": labels,
            "x0": result.x0}


def compare_toy(trained, n: int, seed: int, precision: str = "bfloat16", window: int = 10, k: float = 5.0,
                spread_tol: float = 0.02) -> dict:
    """float32 against ``precision`` sampling of the toy model ``trained`` (a ``TrainedModel``): see the
    module docstring. Returns ``{"float32": run, precision: run, "z", "rates_equal", "paired_discordant",
    "aurocs_overlap", "spread_max_rel", "spreads_equal", "max_abs_x0", "equal"}``."""
    n = check_int("n", n, 2, None)
    check_int("seed", seed, 0, None)
    if check_precision(precision) != "bfloat16":
        raise ValueError(f"precision must be 'bfloat16' (it is compared with float32), got {precision!r}")
    spread_tol = check_float("spread_tol", spread_tol, 0.0, 1.0, lo_open=True)
    a = _run_toy(trained, n, seed, "float32", window, k)
    b = _run_toy(trained, n, seed, precision, window, k)
    out = {"float32": a, precision: b, **_rates(a["labels"], b["labels"])}
    out["aurocs_overlap"] = _aurocs_overlap(a["auroc"], b["auroc"])
    rel = np.array(b["spread"]) / np.array(a["spread"]) - 1
    out["spread_mean_rel"] = float(np.nanmean(rel))
    out["spread_max_rel"] = float(np.nanmax(np.abs(rel)))
    out["spread_sd_rel"] = float(np.nanstd(rel, ddof=1)) if len(rel) > 1 else 0.0
    out["spreads_equal"] = abs(out["spread_mean_rel"]) <= spread_tol
    out["max_abs_x0"] = float((a["x0"] - b["x0"]).abs().max())
    out["equal"] = out["rates_equal"] and out["aurocs_overlap"] is not False and out["spreads_equal"]
    for run in (a, b):
        del run["labels"], run["x0"]
    return out


def _run_shapes(trained, n: int, seed: int, steps: int, precision: str, window: int, tol) -> dict:
    from . import detect
    from . import shape_counter as sc

    start = time.perf_counter()
    result = trained.sample(n, seed, steps=steps, window=window, precision=precision)
    seconds = time.perf_counter() - start
    label = np.array([r["label"] for r in sc.count_shapes(result.x0, tol)])
    keep = np.isin(label, ("valid", "hallucinated"))
    if not keep.any():
        raise ValueError(f"none of the {n} generated images is readable (valid or hallucinated): nothing to compare")
    y = label[keep] == "hallucinated"
    count = int(y.sum())
    lo, hi = wilson_interval(count, int(keep.sum()), Z999)
    return {"precision": result.precision, "seconds": seconds, "n": n, "readable": int(keep.sum()),
            "hallucinated": count, "rate": count / int(keep.sum()), "rate_lo": lo, "rate_hi": hi,
            "auroc": _auroc(detect.hal(result.x0_hat).numpy()[keep], y), "labels": label,
            "x0": result.x0}


def compare_shapes(trained, n: int, seed: int, steps: int = 100, precision: str = "bfloat16",
                   window: int = 10) -> dict:
    """float32 against ``precision`` sampling of a SIMPLE SHAPES U-Net (``TrainedUNet``) on a ``steps``-step
    respaced chain: hallucinated share of the readable images, whole-image Hal AUROC, the share of images
    whose label changed, the largest pixel difference. ``equal``: rates equal (|z| < 3.29) and AUROCs
    inside each other's intervals."""
    from . import shape_counter as sc
    from .shapes import to_model_space

    n = check_int("n", n, 2, None)
    if check_precision(precision) != "bfloat16":
        raise ValueError(f"precision must be 'bfloat16' (it is compared with float32), got {precision!r}")
    data = trained.config.data()
    tol = sc.fit_tolerances(data, to_model_space(data.images, trained.config.resolution))
    a = _run_shapes(trained, n, seed, steps, "float32", window, tol)
    b = _run_shapes(trained, n, seed, steps, precision, window, tol)
    z = two_proportion_z(a["hallucinated"], a["readable"], b["hallucinated"], b["readable"])
    out = {"float32": a, precision: b, "z": z, "rates_equal": abs(z) < Z999,
           "aurocs_overlap": _aurocs_overlap(a["auroc"], b["auroc"]),
           "labels_changed": float((a["labels"] != b["labels"]).mean()),
           "max_abs_x0": float((a["x0"] - b["x0"]).abs().max())}
    out["equal"] = out["rates_equal"] and out["aurocs_overlap"] is not False
    for run in (a, b):
        del run["labels"], run["x0"]
    return out


def compare_training(config, n: int, sample_seed: int, k: float = 5.0, train=None) -> dict:
    """A toy ``config`` trained in float32 and in bfloat16 (its twin: same data, initialisation and batches),
    both sampled in float32 from one seed: each model's quality gate (:func:`quality_gate`), hallucinated
    rate, final loss and training seconds; ``rates_equal`` under the two-proportion test at 99.9%.
    ``train``: the training function (default :func:`mode_interp.train.load_or_train`)."""
    from .train import load_or_train

    train = load_or_train if train is None else train
    out = {}
    for precision in ("float32", "bfloat16"):
        trained = train(replace(config, precision=precision))
        x = trained.sample(check_int("n", n, 2, None), sample_seed, precision="float32").x0
        labels = is_hallucinated(x, trained.config.mixture(), k).numpy()
        summary = mode_summary(x, trained.config.mixture())
        lo, hi = wilson_interval(int(labels.sum()), n, Z999)
        out[precision] = {"trained_in": trained.precision, "train_seconds": trained.seconds,
                          "final_loss": trained.losses[-1] if trained.losses else None,
                          "gate": quality_gate(summary), "within": summary["within"],
                          "spread": summary["std"].tolist(), "hallucinated": int(labels.sum()), "n": n,
                          "rate": float(labels.mean()), "rate_lo": lo, "rate_hi": hi, "labels": labels}
    out.update(_rates(out["float32"].pop("labels"), out["bfloat16"].pop("labels")))
    out.pop("paired_discordant", None)      # two different models: no pairing
    out["gates_pass"] = all(all(out[p]["gate"].values()) for p in ("float32", "bfloat16"))
    out["ran_as_asked"] = all(out[p]["trained_in"] == p for p in ("float32", "bfloat16"))
    out["equal"] = out["rates_equal"] and out["gates_pass"] and out["ran_as_asked"]
    return out
