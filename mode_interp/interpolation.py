"""Where a model's samples land: on the modes, or between them (paper §3.2-3.3, chapter 2).

* :func:`mode_summary` — the training-quality gate: share of samples within k sigma of a mode, and each
  mode's weight and spread. A model that fails it is under-trained, and its off-mode mass is blur, not
  mode interpolation.
* :func:`hallucination_summary` — count, rate and Wilson interval of samples farther than k sigma from
  every mode, beside the true mixture's own rate under the same label and dimension.
* :func:`gap_counts` (1-D), :func:`midpoint_mass` and :func:`segment_profile` (2-D) — *which* modes the
  off-mode mass connects.
* :func:`off_mode_breakdown` (2-D) — where the off-mode mass lies: near-mode shoulders, bands around the
  nearest- and second-neighbour segments, elsewhere, each against a uniform-in-area baseline.
* :func:`strict_gate` — the stricter gate: the within-k-sigma share, the spread of every mode against the
  exact chain's predicted width (chapter 1), and every mode's weight, reported as numbers beside pass/fail.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._validate import check_array, check_float, check_int, check_points
from .data import GaussianMixture, check_mixture
from .hallucination import chi_tail, true_hallucination_rate
from .optimal import exact_chain_mode_std
from .schedule import Schedule, check_schedule
from .stats import wilson_interval


def mode_summary(x: torch.Tensor, mixture: GaussianMixture, k: float = 3.0) -> dict:
    """Assign each sample to its nearest mode and summarise the samples within k sigma of it.

    Returns ``within`` (share of samples within k sigma of their nearest mode), ``weights`` (share of
    those samples per mode), ``std`` (per-mode root-mean-square deviation per coordinate of those samples,
    in the units of sigma: a kept Gaussian's is sqrt(1 - 2k phi(k)/(2 Phi(k)-1)) = 0.986 sigma for
    k = 3 in 1-D; :func:`truncated_spread`), ``n`` and ``k``.
    """
    x = check_points("x", x, check_mixture(mixture).dim).to(torch.float64)
    k = check_float("k", k, 0.0, None, lo_open=True)
    means = torch.as_tensor(mixture.means)
    dist, nearest = torch.cdist(x, means).min(dim=1)
    near = dist <= k * mixture.sigma
    counts = torch.bincount(nearest[near], minlength=mixture.n_modes).double()
    sq = torch.zeros(mixture.n_modes, dtype=torch.float64).index_add_(0, nearest[near], dist[near] ** 2)
    std = (sq / counts.clamp_min(1) / mixture.dim).sqrt() / mixture.sigma
    return {"n": x.shape[0], "k": k, "within": float(near.double().mean()),
            "weights": (counts / counts.sum().clamp_min(1)).numpy(), "std": std.numpy()}


def quality_gate(summary: dict, min_within: float = 0.9, std_tol: float = 0.3, weight_tol: float = 0.5) -> dict:
    """Named pass/fail checks on a :func:`mode_summary`: the model has learned the modes.

    ``within`` >= ``min_within``; every mode's spread within ``std_tol`` of sigma (|std/sigma - 1|);
    every mode's weight within ``weight_tol`` of 1/K (relative). All True means: off-mode mass is not blur.
    """
    min_within = check_float("min_within", min_within, 0.0, 1.0)
    std_tol = check_float("std_tol", std_tol, 0.0, None, lo_open=True)
    weight_tol = check_float("weight_tol", weight_tol, 0.0, 1.0, lo_open=True)
    _check_summary(summary)
    k = len(summary["weights"])
    return {
        f"share within the modes >= {min_within:.0%}": summary["within"] >= min_within,
        f"every mode's spread within {std_tol:.0%} of sigma": bool(np.all(np.abs(summary["std"] - 1) <= std_tol)),
        f"every mode's weight within {weight_tol:.0%} of 1/K": bool(np.all(np.abs(summary["weights"] * k - 1) <= weight_tol)),
    }


def _check_summary(summary) -> dict:
    if not isinstance(summary, dict) or not {"within", "std", "weights", "k", "n"} <= set(summary):
        raise ValueError("summary must be a mode_summary() dict (keys n, k, within, std, weights), got "
                         + (f"keys {sorted(summary)}" if isinstance(summary, dict) else type(summary).__name__))
    if len(summary["std"]) != len(summary["weights"]) or len(summary["weights"]) < 1:
        raise ValueError("summary's std and weights must give one entry per mode")
    return summary


def hallucination_summary(x: torch.Tensor, mixture: GaussianMixture, k: float = 5.0, z: float = 3.29) -> dict:
    """Samples farther than k sigma from every mode: ``count``, ``n``, ``rate``, its Wilson interval
    ``(lo, hi)`` at ``z`` (3.29: 99.9%), the true mixture's ``true_rate`` under the same label, and
    ``ratio_lo`` = lo / true_rate, the factor by which the model's rate exceeds the truth at least."""
    x = check_points("x", x, check_mixture(mixture).dim).to(torch.float64)
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
    check_mixture(mixture, dim=1)
    x = check_points("x", x, 1)[:, 0].double()
    k = check_float("k", k, 0.0, None, lo_open=True)
    mus, half = np.sort(mixture.means[:, 0]), k * mixture.sigma
    out = {(float(a), float(b)): int(((x > a + half) & (x < b - half)).sum()) for a, b in zip(mus[:-1], mus[1:])}
    out["outside"] = int(((x < mus[0] - half) | (x > mus[-1] + half)).sum())
    return out


def gap_profile(x: torch.Tensor, mixture: GaussianMixture, k: float = 5.0, bins: int = 10) -> dict:
    """1-D: where in each gap the samples lie. For the open gap (a + k sigma, b - k sigma) between
    neighbouring modes a < b (:func:`gap_counts`), keyed by (a, b): ``counts`` in ``bins`` equal bins
    across it, and ``position``, the mean of (x - a) / (b - a) over its samples (0.5: the midpoint; None
    for an empty gap)."""
    check_mixture(mixture, dim=1)
    x = check_points("x", x, 1)[:, 0].double()
    k = check_float("k", k, 0.0, None, lo_open=True)
    bins = check_int("bins", bins, 1, 10_000)
    mus, half = np.sort(mixture.means[:, 0]), k * mixture.sigma
    out = {}
    for a, b in zip(mus[:-1], mus[1:]):
        inside = x[(x > a + half) & (x < b - half)].numpy()
        counts = np.histogram(inside, bins=bins, range=(a + half, b - half))[0] if b - a > 2 * half \
            else np.zeros(bins, dtype=np.int64)
        out[(float(a), float(b))] = {"counts": counts.astype(int).tolist(),
                                     "position": float(np.mean((inside - a) / (b - a))) if inside.size else None}
    return out


def segment_profile(x: torch.Tensor, mixture: GaussianMixture, k: float = 5.0, band: float = 3.0) -> list:
    """2-D analogue of :func:`gap_counts` and :func:`gap_profile`: for each segment [mu_a, mu_b] between
    nearest-neighbour modes (:func:`neighbour_pairs`, a < b), the samples farther than ``k`` sigma from
    every mode that lie within ``band`` sigma of it (a sample near two segments goes to the nearer one):
    ``{"between": [a, b], "count", "position"}``, ``position`` the mean of s = (x - mu_a).(mu_b - mu_a) /
    ||mu_b - mu_a||^2 over them (0: mode a, 1: mode b; None for an empty segment)."""
    from .hallucination import is_hallucinated

    mu = check_mixture(mixture, dim=2).means
    x = check_points("x", x, 2).to(torch.float64)
    band = check_float("band", band, 0.0, None, lo_open=True)
    pairs = neighbour_pairs(mixture)[0]
    off = x[is_hallucinated(x, mixture, k)]
    s, dist = _segment_projection(off, torch.as_tensor(mu[pairs[:, 0]]), torch.as_tensor(mu[pairs[:, 1]]))
    dist, nearest = dist.min(dim=1)
    near = dist <= band * mixture.sigma
    out = []
    for m, (i, j) in enumerate(pairs.tolist()):
        hit = near & (nearest == m)
        count = int(hit.sum())
        out.append({"between": [i, j], "count": count,
                    "position": float(s[hit, m].mean()) if count else None})
    return out


def neighbour_pairs(mixture: GaussianMixture, rtol: float = 1e-6) -> tuple:
    """Index pairs (m, 2) of nearest-neighbour modes and of second-nearest ones: the pairs at the smallest
    and the second-smallest distance that occurs between two modes."""
    mu = check_mixture(mixture).means
    rtol = check_float("rtol", rtol, 0.0, 1.0, lo_open=True, hi_open=True)
    d = np.linalg.norm(mu[:, None] - mu[None], axis=-1)
    i, j = np.triu_indices(len(mu), 1)
    levels = np.unique(np.round(d[i, j] / d[i, j].min(), 6))
    if levels.size < 2:
        raise ValueError("the mixture needs at least two distinct pair distances")
    picks = [np.abs(d[i, j] / d[i, j].min() - level) <= rtol * level for level in levels[:2]]
    return tuple(np.stack([i[pick], j[pick]], axis=1) for pick in picks)


def neighbour_midpoints(mixture: GaussianMixture, rtol: float = 1e-6) -> tuple:
    """Midpoints of the segments between nearest-neighbour modes and between second-nearest ones.

    Returns ``(first, second)``, arrays of distinct midpoints (m, d). On the square 25-grid the first are
    the 40 edge midpoints (axis-aligned segments) and the second the 16 cell centres (diagonals); on the
    diamond it is the other way round in direction: nearest neighbours lie along the diagonals and the
    second-nearest, sqrt 2 farther apart, along the axes.
    """
    mu = check_mixture(mixture).means
    return tuple(np.unique(np.round((mu[p[:, 0]] + mu[p[:, 1]]) / 2, 9), axis=0)
                 for p in neighbour_pairs(mixture, rtol))


def midpoint_mass(x: torch.Tensor, mixture: GaussianMixture, radius_sigma: float = 5.0) -> dict:
    """Share of samples within ``radius_sigma`` sigma of a nearest-neighbour midpoint and of a
    second-neighbour midpoint (:func:`neighbour_midpoints`), per midpoint, with their counts.

    Mode interpolation along nearest-neighbour segments puts mass on the first set only.
    """
    x = check_points("x", x, check_mixture(mixture).dim).to(torch.float64)
    r = check_float("radius_sigma", radius_sigma, 0.0, None, lo_open=True) * mixture.sigma
    first, second = neighbour_midpoints(mixture)
    out = {"n": x.shape[0], "radius": r}
    for name, mids in (("first", first), ("second", second)):
        hit = torch.cdist(x, torch.as_tensor(mids)).min(dim=1).values <= r
        count = int(hit.sum())
        out[name] = {"midpoints": len(mids), "count": count, "per_midpoint": count / x.shape[0] / len(mids)}
    return out


def _segment_projection(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple:
    """Each row of ``x`` against each segment [a_m, b_m]: the clamped position s (n, m) of its projection
    (0 at a_m, 1 at b_m) and its distance ||p - a - s (b - a)|| (n, m)."""
    ab = b - a
    ap = x[:, None] - a[None]                                             # (n, m, d)
    s = ((ap * ab).sum(-1) / (ab * ab).sum(-1)).clamp(0, 1)
    return s, (ap - s[..., None] * ab).norm(dim=-1)


def segment_distance(x: torch.Tensor, a: np.ndarray, b: np.ndarray, chunk: int = 50_000) -> torch.Tensor:
    """min over segments [a_m, b_m] of the Euclidean distance from each row of ``x``: (n,) float64.

    dist(p, [a, b]) = ||p - a - s (b - a)||, s = clamp((p - a).(b - a) / ||b - a||^2, 0, 1).
    """
    x = check_points("x", x, min_rows=0).to(torch.float64)        # no rows in, no distances out
    a, b = (torch.as_tensor(check_array(name, v, ndim=2)) for name, v in (("a", a), ("b", b)))
    chunk = check_int("chunk", chunk, 1, None)
    if a.shape != b.shape or a.shape[1] != x.shape[1]:
        raise ValueError(f"a and b must be matching (m, d) arrays with d = x's {x.shape[1]} columns, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if bool((((b - a) ** 2).sum(-1) == 0).any()):
        raise ValueError("a and b must not hold a zero-length segment (a_m = b_m)")
    return torch.cat([_segment_projection(rows, a, b)[1].min(dim=1).values for rows in x.split(chunk)])


REGIONS = ("first", "second", "elsewhere", "outside")


def _regions(x: torch.Tensor, mixture: GaussianMixture, shoulder: float, band: float) -> tuple:
    """Per row of x: nearest-mode distance (sigma units) and the region label index (REGIONS, or -1 for
    points within ``shoulder`` sigma of a mode), plus the domain radius (sigma units)."""
    mu, sigma = mixture.means, mixture.sigma
    first, second = neighbour_pairs(mixture)
    r = torch.cdist(x, torch.as_tensor(mu)).min(dim=1).values / sigma
    # the domain: within the covering radius of the lattice, the farthest a second-neighbour midpoint lies
    mids = torch.as_tensor((mu[second[:, 0]] + mu[second[:, 1]]) / 2)
    radius = float(torch.cdist(mids, torch.as_tensor(mu)).min(dim=1).values.max()) / sigma * (1 + 1e-9)
    label = torch.full((len(x),), -1, dtype=torch.long)
    off = r > shoulder
    label[off & (r > radius)] = 3
    inside = off & (r <= radius)
    d1 = segment_distance(x[inside], mu[first[:, 0]], mu[first[:, 1]]) / sigma
    d2 = segment_distance(x[inside], mu[second[:, 0]], mu[second[:, 1]]) / sigma
    label[inside] = torch.where(d1 <= band, 0, torch.where(d2 <= band, 1, 2))
    return r, label, radius


def off_mode_breakdown(x: torch.Tensor, mixture: GaussianMixture, core: float = 3.0, shoulder: float = 5.0,
                       band: float = 3.0, z: float = 3.29, lattice: int = 600) -> dict:
    """Where a 2-D model's samples lie, beyond "hallucinated or not" (distances in units of sigma).

    Every sample falls in one place: the ``core`` (within ``core`` sigma of its nearest mode), the
    ``shoulder`` (``core``-``shoulder`` sigma: a blurred mode puts mass here), or *off the modes* (beyond
    ``shoulder`` sigma: the hallucination label at k = shoulder), split into regions (first match wins):
    ``first`` (within ``band`` sigma of a segment between nearest-neighbour modes: mode interpolation),
    ``second`` (of a segment between second-nearest modes: the diagonals of the square grid), ``elsewhere``
    (inside the lattice's domain: nearest-mode distance at most its covering radius, the distance of the
    farthest second-neighbour midpoint) and ``outside`` (beyond it).

    For each region inside the domain: its count, its share of the off-mode samples inside the domain
    (``inside``; ``outside``'s share is of all ``off``) with a Wilson interval at ``z``, its share of the domain's off-mode *area* (a ``lattice`` x ``lattice`` grid of
    points over the domain's bounding box) and the ``enrichment`` share / area share with its interval:
    1 means the samples land there no more than uniformly scattered points would. The shoulder's share is
    reported beside the true mixture's (chi tail) own.
    """
    check_mixture(mixture, dim=2)
    x = check_points("x", x, 2).to(torch.float64)
    core = check_float("core", core, 0.0, None, lo_open=True)
    shoulder = check_float("shoulder", shoulder, core, None, lo_open=True)
    band = check_float("band", band, 0.0, None, lo_open=True)
    z = check_float("z", z, 0.0, None, lo_open=True)
    lattice = check_int("lattice", lattice, 10, 5000)
    if len(x) == 0:
        raise ValueError("x must hold at least one sample")
    r, label, radius = _regions(x, mixture, shoulder, band)
    n, n_off = len(x), int((label >= 0).sum())
    lo_box = mixture.means.min(0) - radius * mixture.sigma
    hi_box = mixture.means.max(0) + radius * mixture.sigma
    axes = [torch.linspace(float(lo), float(hi), lattice, dtype=torch.float64) for lo, hi in zip(lo_box, hi_box)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    _, grid_label, _ = _regions(grid, mixture, shoulder, band)
    area = torch.bincount(grid_label[(grid_label >= 0) & (grid_label <= 2)], minlength=3).double()
    area_share = (area / area.sum()).numpy()
    true_shoulder = chi_tail(core, 2) - chi_tail(shoulder, 2)
    out = {"n": n, "core": int((r <= core).sum()), "shoulder": int(((r > core) & (r <= shoulder)).sum()),
           "off": n_off, "radius": radius, "sigmas": (core, shoulder, band), "true_shoulder_share": true_shoulder}
    out["shoulder_share"] = out["shoulder"] / n
    n_in = int(((label >= 0) & (label <= 2)).sum())
    out["inside"] = n_in
    regions = {}
    for i, name in enumerate(REGIONS):
        count, of = int((label == i).sum()), (n_in if i < 3 else n_off)
        share = count / of if of else float("nan")
        lo, hi = wilson_interval(count, of, z) if of else (float("nan"), float("nan"))
        entry = {"count": count, "share": share, "lo": lo, "hi": hi}
        if i < 3:
            a = float(area_share[i])
            entry.update(area_share=a, enrichment=share / a, enrichment_lo=lo / a, enrichment_hi=hi / a)
        regions[name] = entry
    out["regions"] = regions
    return out


def truncated_spread(spread: float, k: float, dim: int) -> float:
    """What :func:`mode_summary` reports for a Gaussian mode of per-coordinate std ``spread`` (sigma units)
    kept within radius ``k`` sigma: spread * sqrt(P(chi2_{d+2} <= c^2) / P(chi2_d <= c^2)), c = k/spread
    (E[r^2 1{r <= c}] = d P(chi2_{d+2} <= c^2) for r^2 ~ chi2_d)."""
    spread = check_float("spread", spread, 0.0, None, lo_open=True)
    c = check_float("k", k, 0.0, None, lo_open=True) / spread
    dim = check_int("dim", dim, 1, None)
    return spread * math.sqrt((1 - chi_tail(c, dim + 2)) / (1 - chi_tail(c, dim)))


def strict_gate(summary: dict, mixture: GaussianMixture, schedule: Schedule, variance: str = "fixed_large",
                min_within: float = 0.95, median_tol: float = 0.15, mode_tol: float = 0.35,
                weight_tol: float = 0.2) -> dict:
    """The stricter training-quality gate, as numbers and as named pass/fail checks.

    On a :func:`mode_summary` (its ``k``): ``within`` >= ``min_within`` (the true mixture: 99.7% in 1-D,
    98.9% in 2-D at k = 3); each mode's spread is compared with the width the *exact* score's chain
    gives under ``schedule`` (:func:`mode_interp.optimal.exact_chain_mode_std`, truncated like the summary
    by :func:`truncated_spread`): the median ratio within ``median_tol`` of 1 and every mode within
    ``mode_tol``; every mode's weight within ``weight_tol`` of 1/K (relative). Returns ``checks`` (name ->
    bool), ``passed``, the numbers (``within``, ``true_within``, ``predicted`` spread, ``spread_ratio``
    and ``weight_ratio`` per mode, their median / worst and the worst modes' indices) and ``blurred``:
    the indices of modes wider than 1 + ``mode_tol`` times the prediction.
    """
    min_within = check_float("min_within", min_within, 0.0, 1.0)
    median_tol = check_float("median_tol", median_tol, 0.0, None, lo_open=True)
    mode_tol = check_float("mode_tol", mode_tol, 0.0, None, lo_open=True)
    weight_tol = check_float("weight_tol", weight_tol, 0.0, 1.0, lo_open=True)
    _check_summary(summary)
    check_mixture(mixture)
    check_schedule(schedule)
    if len(summary["std"]) != mixture.n_modes:
        raise ValueError(f"summary has {len(summary['std'])} modes, the mixture {mixture.n_modes}")
    k = summary["k"]
    predicted = truncated_spread(exact_chain_mode_std(schedule, mixture.sigma, variance) / mixture.sigma, k,
                                 mixture.dim)
    ratio = np.asarray(summary["std"], dtype=np.float64) / predicted
    weight = np.asarray(summary["weights"], dtype=np.float64) / mixture.weights   # 1/K when balanced
    worst = int(np.argmax(np.abs(ratio - 1)))
    worst_w = int(np.argmax(np.abs(weight - 1)))
    true_within = 1 - chi_tail(k, mixture.dim) if mixture.dim > 1 else 1 - true_hallucination_rate(mixture, k)
    checks = {
        f"share within {k:g} sigma >= {min_within:.0%}": summary["within"] >= min_within,
        f"median spread within {median_tol:.0%} of the exact chain's": bool(abs(np.median(ratio) - 1) <= median_tol),
        f"every mode's spread within {mode_tol:.0%} of the exact chain's": bool(np.all(np.abs(ratio - 1) <= mode_tol)),
        f"every mode's weight within {weight_tol:.0%} of {'1/K' if mixture.balanced else 'its w_k'}":
            bool(np.all(np.abs(weight - 1) <= weight_tol)),
    }
    return {"checks": checks, "passed": all(checks.values()), "within": summary["within"],
            "true_within": true_within, "predicted": predicted, "spread_ratio": ratio,
            "median_spread_ratio": float(np.median(ratio)), "worst_spread_ratio": float(ratio[worst]),
            "worst_spread_mode": worst, "weight_ratio": weight, "worst_weight_ratio": float(weight[worst_w]),
            "worst_weight_mode": worst_w, "blurred": [int(i) for i in np.flatnonzero(ratio > 1 + mode_tol)]}
