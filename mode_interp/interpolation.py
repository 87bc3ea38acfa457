"""Where a model's samples land: on the modes, or between them (paper §3.2-3.3, chapter 2).

* :func:`mode_summary` — the training-quality gate: share of samples within k sigma of a mode, and each
  mode's weight and spread. A model that fails it is under-trained, and its off-mode mass is blur, not
  mode interpolation.
* :func:`hallucination_summary` — count, rate and Wilson interval of samples farther than k sigma from
  every mode, beside the true mixture's own rate under the same label and dimension.
* :func:`gap_counts` (1-D) and :func:`midpoint_mass` (2-D) — *which* modes the off-mode mass connects.
"""

from __future__ import annotations

import numpy as np
import torch

from ._validate import check_float, check_points
from .data import GaussianMixture
from .hallucination import true_hallucination_rate
from .stats import wilson_interval


def mode_summary(x: torch.Tensor, mixture: GaussianMixture, k: float = 3.0) -> dict:
    """Assign each sample to its nearest mode and summarise the samples within k sigma of it.

    Returns ``within`` (share of samples within k sigma of their nearest mode), ``weights`` (share of
    those samples per mode), ``std`` (per-mode root-mean-square deviation per coordinate of those samples,
    in the units of sigma: a kept Gaussian's is sqrt(1 - 2k phi(k)/(2 Phi(k)-1)) = 0.986 sigma for
    k = 3 in 1-D) and ``n``.
    """
    x = check_points("x", x, mixture.dim).to(torch.float64)
    k = check_float("k", k, 0.0, None, lo_open=True)
    means = torch.as_tensor(mixture.means)
    dist, nearest = torch.cdist(x, means).min(dim=1)
    near = dist <= k * mixture.sigma
    counts = torch.bincount(nearest[near], minlength=mixture.n_modes).double()
    sq = torch.zeros(mixture.n_modes, dtype=torch.float64).index_add_(0, nearest[near], dist[near] ** 2)
    std = (sq / counts.clamp_min(1) / mixture.dim).sqrt() / mixture.sigma
    return {"n": x.shape[0], "within": float(near.double().mean()),
            "weights": (counts / counts.sum().clamp_min(1)).numpy(), "std": std.numpy()}


def quality_gate(summary: dict, min_within: float = 0.9, std_tol: float = 0.3, weight_tol: float = 0.5) -> dict:
    """Named pass/fail checks on a :func:`mode_summary`: the model has learned the modes.

    ``within`` >= ``min_within``; every mode's spread within ``std_tol`` of sigma (|std/sigma - 1|);
    every mode's weight within ``weight_tol`` of 1/K (relative). All True means: off-mode mass is not blur.
    """
    min_within = check_float("min_within", min_within, 0.0, 1.0)
    std_tol = check_float("std_tol", std_tol, 0.0, None, lo_open=True)
    weight_tol = check_float("weight_tol", weight_tol, 0.0, 1.0, lo_open=True)
    k = len(summary["weights"])
    return {
        f"share within the modes >= {min_within:.0%}": summary["within"] >= min_within,
        f"every mode's spread within {std_tol:.0%} of sigma": bool(np.all(np.abs(summary["std"] - 1) <= std_tol)),
        f"every mode's weight within {weight_tol:.0%} of 1/K": bool(np.all(np.abs(summary["weights"] * k - 1) <= weight_tol)),
    }


def hallucination_summary(x: torch.Tensor, mixture: GaussianMixture, k: float = 5.0, z: float = 3.29) -> dict:
    """Samples farther than k sigma from every mode: ``count``, ``n``, ``rate``, its Wilson interval
    ``(lo, hi)`` at ``z`` (3.29: 99.9%), the true mixture's ``true_rate`` under the same label, and
    ``ratio_lo`` = lo / true_rate, the factor by which the model's rate exceeds the truth at least."""
    x = check_points("x", x, mixture.dim).to(torch.float64)
    k = check_float("k", k, 0.0, None, lo_open=True)
    dist = torch.cdist(x, torch.as_tensor(mixture.means)).min(dim=1).values
    count, n = int((dist > k * mixture.sigma).sum()), x.shape[0]
    lo, hi = wilson_interval(count, n, z)
    true = true_hallucination_rate(mixture, k)
    return {"count": count, "n": n, "rate": count / n, "lo": lo, "hi": hi, "true_rate": true,
            "ratio_lo": lo / true}


def gap_counts(x: torch.Tensor, mixture: GaussianMixture, k: float = 5.0) -> dict:
    """1-D: the number of samples in each open gap (mu_j + k sigma, mu_{j+1} - k sigma) between
    neighbouring modes, keyed by the pair of modes, plus ``"outside"`` (beyond the outer modes' k sigma)."""
    if mixture.dim != 1:
        raise ValueError(f"gap_counts needs a 1-D mixture, got dim={mixture.dim}")
    x = check_points("x", x, 1)[:, 0].double()
    k = check_float("k", k, 0.0, None, lo_open=True)
    mus, half = np.sort(mixture.means[:, 0]), k * mixture.sigma
    out = {(float(a), float(b)): int(((x > a + half) & (x < b - half)).sum()) for a, b in zip(mus[:-1], mus[1:])}
    out["outside"] = int(((x < mus[0] - half) | (x > mus[-1] + half)).sum())
    return out


def neighbour_midpoints(mixture: GaussianMixture, rtol: float = 1e-6) -> tuple:
    """Midpoints of the segments between nearest-neighbour modes and between second-nearest ones.

    Returns ``(first, second)``, arrays of distinct midpoints (m, d). On the square 25-grid the first are
    the 40 edge midpoints (axis-aligned segments) and the second the 16 cell centres (diagonals); on the
    diamond it is the other way round in direction: nearest neighbours lie along the diagonals and the
    second-nearest, sqrt 2 farther apart, along the axes.
    """
    mu = mixture.means
    d = np.linalg.norm(mu[:, None] - mu[None], axis=-1)
    i, j = np.triu_indices(len(mu), 1)
    levels = np.unique(np.round(d[i, j] / d[i, j].min(), 6))
    if levels.size < 2:
        raise ValueError("the mixture needs at least two distinct pair distances")
    result = []
    for level in levels[:2]:
        pick = np.abs(d[i, j] / d[i, j].min() - level) <= rtol * level
        mids = (mu[i[pick]] + mu[j[pick]]) / 2
        result.append(np.unique(np.round(mids, 9), axis=0))
    return tuple(result)


def midpoint_mass(x: torch.Tensor, mixture: GaussianMixture, radius_sigma: float = 5.0) -> dict:
    """Share of samples within ``radius_sigma`` sigma of a nearest-neighbour midpoint and of a
    second-neighbour midpoint (:func:`neighbour_midpoints`), per midpoint, with their counts.

    Mode interpolation along nearest-neighbour segments puts mass on the first set only.
    """
    x = check_points("x", x, mixture.dim).to(torch.float64)
    r = check_float("radius_sigma", radius_sigma, 0.0, None, lo_open=True) * mixture.sigma
    first, second = neighbour_midpoints(mixture)
    out = {"n": x.shape[0], "radius": r}
    for name, mids in (("first", first), ("second", second)):
        hit = torch.cdist(x, torch.as_tensor(mids)).min(dim=1).values <= r
        count = int(hit.sum())
        out[name] = {"midpoints": len(mids), "count": count, "per_midpoint": count / x.shape[0] / len(mids)}
    return out
