"""Samplers, step counts and smoothness against hallucination (chapter 6, beyond the paper).

The paper samples with the ancestral DDPM chain through all T = 1000 training steps. A practitioner often
uses DDIM (Song, Meng & Ermon 2021) on fewer steps T' (a respaced chain, Nichol & Dhariwal 2021). One
:class:`Sampler` names such a chain: ``eta = None`` is the paper's ancestral chain (sigma_t^2 = beta_t),
``eta`` in [0, 1] the DDIM chain (:func:`mode_interp.diffusion.ddim_step`; 0 deterministic after x_T, 1 the
ancestral chain with sigma_t^2 = beta_tilde_t), and ``steps`` = T' evenly spaced timesteps
(:func:`mode_interp.schedule.respace`).

:func:`run` samples one chain and measures it: the hallucinated share (farther than ``k`` sigma from every
mode, :func:`mode_interp.hallucination.is_hallucinated`) and the detector's AUROC, Hal over the chain's last
min(``window``, T' / 2) steps (:class:`mode_interp.detect.WindowVariance`; on a respaced chain those steps
span about ``window`` x T / T' training timesteps, and on a very short chain they reach the noisy steps
where x0_hat = (x_t - sqrt(1 - ab) eps) / sqrt(ab) divides by a tiny sqrt(ab): a non-finite prediction is
counted as +-1e30, so Hal stays a finite, very large score). :func:`grid` runs every sampler for every seed, :func:`summarise`
averages over seeds with a between-seed t-interval (the seeds are the replicates, not the samples), and
:func:`compare` is the paired across-seed test of two samplers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import check_bool, check_callable, check_float, check_int, check_ints
from .data import GaussianMixture, check_mixture
from .detect import WindowVariance, auroc
from .diffusion import check_eta, respaced_eps, sample
from .hallucination import is_hallucinated
from .report import markdown_table
from .schedule import Schedule, check_schedule, respace
from .stats import mean_interval, paired_test, wilson_interval


@dataclass(frozen=True)
class Sampler:
    """A reverse chain on ``steps`` (T') evenly spaced training timesteps: the ancestral DDPM chain with
    sigma_t^2 = beta_t (``eta = None``, the paper's) or DDIM with noise scale ``eta`` in [0, 1]."""

    steps: int
    eta: float | None = None

    def __post_init__(self):
        check_int("steps", self.steps, 2, None)
        if self.eta is not None:
            object.__setattr__(self, "eta", check_eta(self.eta))

    @property
    def name(self) -> str:
        """"DDPM" or "DDIM eta=0.5" (the sampler without its step count)."""
        return "DDPM" if self.eta is None else f"DDIM eta={self.eta:g}"


def samplers(steps, etas=(None, 1.0, 0.5, 0.0)) -> list:
    """Every (eta, T') pair as a :class:`Sampler`, etas outermost (``None``: the ancestral chain)."""
    steps = check_ints("steps", steps, 2, None, min_len=1)
    if isinstance(etas, (str, bytes)) or not hasattr(etas, "__iter__") or not list(etas):
        raise ValueError(f"etas must be a non-empty list of DDIM noise scales in [0, 1] or None, got {etas!r}")
    return [Sampler(s, e) for e in etas for s in steps]


def chain(eps_fn, schedule: Schedule, steps: int) -> tuple:
    """``(schedule', eps_fn')``: the respaced chain on ``steps`` timesteps and the eps function evaluated at
    the original timesteps (:func:`mode_interp.diffusion.respaced_eps`); the chain itself when steps = T."""
    check_callable("eps_fn", eps_fn)
    steps = check_int("steps", steps, 2, check_schedule(schedule).T)
    if steps == schedule.T:
        return schedule, eps_fn
    short, tau = respace(schedule, steps)
    return short, respaced_eps(eps_fn, tau)


def run(eps_fn, mixture: GaussianMixture, schedule: Schedule, sampler: Sampler, n: int, seed: int,
        k: float = 5.0, window: int = 10, min_class: int = 5, clip_x0: float | None = None,
        return_samples: bool = False):
    """One chain of ``sampler`` from x_T drawn with ``seed``; its hallucinated share (> ``k`` sigma from every
    mode; a non-finite sample counts as hallucinated) and Hal's AUROC over its last ``window`` steps (NaN when
    either class has fewer than ``min_class`` samples; module docstring for the window). ``clip_x0``: clamp
    every x0_hat to [-c, c] (:func:`mode_interp.diffusion.posterior_step_mean`), as image samplers do; a
    short chain of a learned model needs it, because the first steps' x0_hat divides the network's eps error
    by sqrt(alpha_bar_t), about 1e-22 at t = T - 1 under the paper's schedule. Returns a plain dict (one row
    of :func:`grid`), or ``(row, samples)`` with ``return_samples``."""
    if not isinstance(sampler, Sampler):
        raise TypeError(f"sampler must be a Sampler, got {type(sampler).__name__}")
    dim = check_mixture(mixture).dim
    n = check_int("n", n, 1, None)
    seed = check_int("seed", seed, 0, None)
    k = check_float("k", k, 0.0, None, lo_open=True)
    window = check_int("window", window, 2, None)
    min_class = check_int("min_class", min_class, 1, None)
    short, eps = chain(eps_fn, schedule, sampler.steps)
    hal = WindowVariance(n, dim, max(2, min(window, sampler.steps // 2)))
    observer = lambda t, x_t, x0_hat: hal(t, x_t, torch.nan_to_num(x0_hat, nan=1e30, posinf=1e30, neginf=-1e30))
    x = sample(eps, n, dim, short, torch.Generator().manual_seed(seed), eta=sampler.eta, observer=observer,
               clip_x0=clip_x0).x0
    finite = torch.isfinite(x).all(dim=1)
    labels = ~finite
    labels[finite] = is_hallucinated(x[finite], mixture, k)
    count = int(labels.sum())
    scores = hal.hal()
    enough = min(count, n - count) >= min_class
    row = {"sampler": sampler.name, "eta": sampler.eta, "steps": sampler.steps, "seed": seed, "n": n,
           "count": count, "rate": count / n, "n_nonfinite": int((~finite).sum()),
           "auroc": auroc(scores.numpy(), labels.numpy()) if enough else math.nan, "clip_x0": clip_x0}
    return (row, x) if check_bool("return_samples", return_samples) else row


def grid(eps_fns, mixture: GaussianMixture, schedule: Schedule, chains, n: int, seeds=(0, 1, 2), **kw) -> list:
    """:func:`run` for every sampler of ``chains`` and every seed. ``eps_fns``: one eps function for all
    seeds (e.g. the exact score: the seed is then the sampling seed) or a dict ``{seed: eps_fn}`` (one
    trained model per seed, each sampled with its own seed)."""
    seeds = check_ints("seeds", seeds, 0, None, min_len=1)
    if isinstance(eps_fns, dict):
        missing = [s for s in seeds if s not in eps_fns]
        if missing:
            raise ValueError(f"eps_fns has no eps function for seeds {missing} (it has {sorted(eps_fns)})")
    else:
        eps_fns = {s: check_callable("eps_fns", eps_fns) for s in seeds}
    return [run(eps_fns[s], mixture, schedule, c, n, s, **kw) for c in chains for s in seeds]


def _cells(rows, name, steps, key):
    v = [r[key] for r in rows if r["sampler"] == name and r["steps"] == steps]
    return np.array(v, dtype=float)


def summarise(rows, key: str = "rate", confidence: float = 0.95) -> list:
    """Per (sampler, T'): the mean of ``key`` over seeds with its between-seed t-interval (``lo``, ``hi``;
    NaN bounds for a single seed) and, for the rate, the pooled count with its Wilson interval. NaN
    values (an AUROC with too few of one class) are left out and counted in ``n_missing``."""
    if key not in ("rate", "auroc"):
        raise ValueError(f"key must be 'rate' or 'auroc', got {key!r}")
    out = []
    for name, steps in dict.fromkeys((r["sampler"], r["steps"]) for r in rows):
        v = _cells(rows, name, steps, key)
        ok = v[np.isfinite(v)]
        row = {"sampler": name, "steps": steps, "n_seeds": len(ok), "n_missing": int(len(v) - len(ok)),
               "values": ok.tolist()}
        if len(ok) >= 2:
            row.update({q: mean_interval(ok, confidence)[q] for q in ("mean", "lo", "hi", "sd")})
        else:
            row.update({"mean": float(ok[0]) if len(ok) else math.nan, "lo": math.nan, "hi": math.nan, "sd": math.nan})
        if key == "rate":
            count = int(sum(_cells(rows, name, steps, "count")))
            total = int(sum(_cells(rows, name, steps, "n")))
            row.update({"count": count, "n": total, "pooled": count / total,
                        "pooled_lo": wilson_interval(count, total)[0], "pooled_hi": wilson_interval(count, total)[1]})
        out.append(row)
    return out


def compare(rows, a: str, b: str, steps: int, key: str = "rate", alternative: str = "greater",
            confidence: float = 0.95) -> dict:
    """Paired across-seed test of sampler ``a`` against ``b`` at T' = ``steps``
    (:func:`mode_interp.stats.paired_test` on the per-seed differences a - b; the seeds must match)."""
    pick = {name: {r["seed"]: r[key] for r in rows if r["sampler"] == name and r["steps"] == steps} for name in (a, b)}
    for name in (a, b):
        if not pick[name]:
            raise ValueError(f"no rows for sampler {name!r} at steps={steps}")
    seeds = sorted(set(pick[a]) & set(pick[b]))
    return {**paired_test([pick[a][s] for s in seeds], [pick[b][s] for s in seeds], confidence, alternative),
            "a": a, "b": b, "steps": steps, "seeds": seeds}


def _cell(row: dict, scale: float, digits: int) -> str:
    if not math.isfinite(row["mean"]):
        return "–"
    if not math.isfinite(row["lo"]):
        return f"{scale * row['mean']:.{digits}f}"
    return f"{scale * row['mean']:.{digits}f} [{scale * row['lo']:.{digits}f}, {scale * row['hi']:.{digits}f}]"


def table(summary, key: str = "rate") -> str:
    """A Markdown table: one row per sampler, one column per T', cells "mean [between-seed interval]"
    (the rate in %, the AUROC as a fraction)."""
    scale, digits = (100.0, 2) if key == "rate" else (1.0, 3)
    steps = sorted({r["steps"] for r in summary})
    names = list(dict.fromkeys(r["sampler"] for r in summary))
    at = {(r["sampler"], r["steps"]): r for r in summary}
    return markdown_table(["sampler"] + [f"T' = {s:,}" for s in steps],
                          [[name] + [_cell(at[name, s], scale, digits) if (name, s) in at else "" for s in steps]
                           for name in names])
