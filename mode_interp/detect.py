"""The trajectory-variance detector ("Hal", the paper's detection section and its official code) and the analysis of a threshold on it.

For a generated sample, the predicted clean sample of reverse step t is
x0_hat^(t) = (x_t - sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) / sqrt(alpha_bar_t). Over a window W of steps,

    Hal(x) = 1/|W| sum_{t in W} mean_d (x0_hat^(t)_d - xbar_d)^2,   xbar = 1/|W| sum_{t in W} x0_hat^(t),

the *population* variance (ddof = 0) of each coordinate, averaged over the d coordinates: exactly the
official ``train_toy_filter.py`` with W = the last 10 of 1000 steps (t = 9 .. 0). A sample whose x0_hat
still swings in the last steps sits on the smooth ramp the network put between two modes (chapter 2);
one that has settled sits on a mode.

Two ways to get it: :func:`hal` from the sampler's rolling window (``sample(..., window=k)``: memory
O(n k d), any sub-window afterwards), or :class:`WindowVariance`, a Welford running variance fed by the
sampler's ``observer`` hook (memory O(n d), one window fixed in advance).

Threshold analysis. ``labels`` are True for hallucinated samples; a filter at ``threshold`` *removes* every
sample with score > threshold. "Removed" is the fraction of hallucinations removed (the true-positive rate),
"retained" the fraction of in-support samples kept (1 - false-positive rate), as in the paper's abstract.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._validate import check_array, check_bool, check_float, check_instance, check_int, check_tensor
from .optimal import transition_width
from .schedule import Schedule, check_schedule
from .stats import auroc_components, check_scores_labels, delong_interval


def _window_slice(k: int, length: int | None, offset: int) -> slice:
    """Rows of a (k, n, d) window in reverse-time order (row i = timestep k-1-i) that hold timesteps
    offset .. offset+length-1."""
    length = k if length is None else length
    if k < 2:
        raise ValueError(f"x0_hat must hold at least 2 steps (a window of length >= 2), got {k}")
    length = check_int("length", length, 2, k)
    offset = check_int("offset", offset, 0, k - length)
    return slice(k - offset - length, k - offset)


def _check_window(x0_hat) -> torch.Tensor:
    if not isinstance(x0_hat, torch.Tensor) or x0_hat.ndim != 3 or not x0_hat.is_floating_point():
        raise ValueError("x0_hat must be a floating tensor (k, n, d): k recorded steps in reverse-time order, "
                         "as SampleResult.x0_hat; got "
                         + (f"shape {tuple(x0_hat.shape)}" if isinstance(x0_hat, torch.Tensor) else type(x0_hat).__name__))
    if x0_hat.shape[1] == 0 or x0_hat.shape[2] == 0:
        raise ValueError(f"x0_hat holds no samples or no dimensions: shape {tuple(x0_hat.shape)}")
    return check_tensor("x0_hat", x0_hat)           # float32 / float64, finite


def pointwise_variance(x0_hat: torch.Tensor, length: int | None = None, offset: int = 0) -> torch.Tensor:
    """Population variance over the window of every coordinate, shape (n, d), float64.

    ``x0_hat`` is (k, n, d) in reverse-time order (``SampleResult.x0_hat``: row i is timestep k-1-i); the
    window is the timesteps ``offset .. offset + length - 1`` (default: all k recorded steps).
    """
    x0_hat = _check_window(x0_hat)
    w = x0_hat[_window_slice(x0_hat.shape[0], length, offset)].to(torch.float64)
    return w.var(dim=0, correction=0)


def hal(x0_hat: torch.Tensor, length: int | None = None, offset: int = 0) -> torch.Tensor:
    """Hal(x) = mean over coordinates of the population variance of x0_hat over the window, shape (n,).

    Default window: every recorded step (the sampler's ``window=10`` gives the paper's t = 9 .. 0).
    """
    return pointwise_variance(x0_hat, length, offset).mean(dim=1)


def normalised_hal(x0_hat: torch.Tensor, schedule: Schedule, timesteps, length: int | None = None,
                   offset: int = 0) -> torch.Tensor:
    """An alternative score (not the paper's): each squared deviation divided by the forward-noise scale
    of x0_hat at its step, s_t^2 = (1 - alpha_bar_t) / alpha_bar_t (the variance of x0_hat = x_t/sqrt(ab)
    around x0 under the forward process), i.e. 1/|W| sum_t mean_d (x0_hat^(t)_d - xbar_d)^2 / s_t^2.

    Late steps, where the forward noise is small, weigh more. ``timesteps``: the timestep of each row of
    ``x0_hat`` (``SampleResult.timesteps``), in the schedule that produced it.
    """
    x0_hat = _check_window(x0_hat)
    check_schedule(schedule)
    if isinstance(timesteps, (str, bytes)) or not hasattr(timesteps, "__iter__"):
        raise ValueError(f"timesteps must be a sequence of ints (SampleResult.timesteps), got {timesteps!r}")
    ts = [schedule.check_t(t.item() if isinstance(t, (np.generic, torch.Tensor)) else t, "timesteps")
          for t in timesteps]
    if len(ts) != x0_hat.shape[0]:
        raise ValueError(f"timesteps must give one timestep per row of x0_hat ({x0_hat.shape[0]}), got {len(ts)}")
    rows = _window_slice(x0_hat.shape[0], length, offset)
    w = x0_hat[rows].to(torch.float64)
    ab = schedule.alpha_bar[ts[rows]]
    scale = torch.as_tensor((1.0 - ab) / ab, dtype=torch.float64)[:, None, None]
    return ((w - w.mean(dim=0)) ** 2 / scale).mean(dim=(0, 2))


def region_hal(x0_hat: torch.Tensor, regions) -> torch.Tensor:
    """Hal restricted to groups of coordinates: (n, R), entry r the mean over the coordinates whose
    ``regions`` value is r of their population variance over all recorded steps. For SIMPLE SHAPES images
    (d = res*res, row-major) pass the panel of every pixel, ``np.tile(pixel_columns(res), res)``, to get one
    Hal per column (triangle, square, pentagon)."""
    var = pointwise_variance(x0_hat)
    regions = check_array("regions", regions, dtype=None)
    if regions.dtype.kind not in "iu":
        raise ValueError(f"regions must hold integer region indices, got dtype {regions.dtype}")
    regions = torch.as_tensor(regions.astype(np.int64))
    if regions.shape != (var.shape[1],) or regions.min() < 0:
        raise ValueError(f"regions must give a non-negative region index per coordinate ({var.shape[1]}), "
                         f"got shape {tuple(regions.shape)}")
    counts = torch.bincount(regions).to(torch.float64)
    if (counts == 0).any():
        raise ValueError("every region index from 0 to max(regions) must own at least one coordinate")
    sums = torch.zeros(var.shape[0], len(counts), dtype=torch.float64).index_add_(1, regions, var)
    return sums / counts


def width_matched_window(schedule: Schedule, gap: float, sigma: float, max_ratio: float = 0.1) -> int:
    """A window length from chapter 1's geometry (our rule; the paper gives none): the number L of final
    reverse steps t = 0 .. L-1 over which the optimal denoiser's switch between two modes ``gap`` apart is at
    most ``max_ratio`` of the gap, w_t <= max_ratio * gap with w_t from
    :func:`mode_interp.optimal.transition_width`. There the target is still a step, and x0_hat of a sample on
    the network's smooth ramp keeps swinging. With the paper's 1-D constants and max_ratio = 0.1 this gives
    the paper's 10 steps."""
    max_ratio = check_float("max_ratio", max_ratio, 0.0, None, lo_open=True)
    check_schedule(schedule)
    above = np.flatnonzero(transition_width(schedule, gap, sigma) > max_ratio * gap)
    length = int(above[0]) if len(above) else schedule.T
    if length < 2:
        raise ValueError(f"max_ratio={max_ratio} leaves fewer than 2 steps (w_0 / gap = "
                         f"{transition_width(schedule, gap, sigma)[0] / gap:.3g}): choose a larger max_ratio")
    return length


class WindowVariance:
    """Streaming (Welford) population variance of x0_hat (or x_t) over the last ``window`` reverse steps.

    Pass it as ``observer`` to :func:`mode_interp.diffusion.sample` (alone or in a list): it is called at
    every step with ``(t, x_t, x0_hat)`` and updates the running mean and sum of squares for t < window,
    so memory is O(n d) whatever the window. ``of="x_t"`` tracks the chain's state instead (an alternative
    score). :meth:`hal` gives the same number as :func:`hal` on the recorded window. ``diverged=True``
    accepts a chain that blows up: NaN and infinite values are recorded as +-1e30, so a diverged row
    scores huge instead of stopping the sampler.
    """

    def __init__(self, n: int, dim: int, window: int = 10, of: str = "x0_hat", diverged: bool = False):
        self.n = check_int("n", n, 1, None)
        self.dim = check_int("dim", dim, 1, None)
        self.window = check_int("window", window, 2, None)
        if not isinstance(of, str) or of not in ("x0_hat", "x_t"):
            raise ValueError(f"of must be 'x0_hat' or 'x_t', got {of!r}")
        self.of = of
        self.diverged = check_bool("diverged", diverged)
        self.count = torch.zeros(n, dtype=torch.long)
        self.mean = torch.zeros(n, dim, dtype=torch.float64)
        self.m2 = torch.zeros(n, dim, dtype=torch.float64)

    def update(self, values: torch.Tensor) -> None:
        """Welford's update with one new value per row: delta = v - mean; mean += delta / c;
        m2 += delta (v - mean_new)."""
        values = check_tensor("values", values, shape=tuple(self.mean.shape)).to(torch.float64)
        self.count += 1
        c = self.count.to(torch.float64)[:, None]
        delta = values - self.mean
        self.mean += delta / c
        self.m2 += delta * (values - self.mean)

    def __call__(self, t: int, x_t: torch.Tensor, x0_hat: torch.Tensor) -> None:
        if t < self.window:
            values = x0_hat if self.of == "x0_hat" else x_t
            self.update(torch.nan_to_num(values, nan=1e30, posinf=1e30, neginf=-1e30) if self.diverged else values)

    def hal(self) -> torch.Tensor:
        """Mean over coordinates of the population variance m2 / count, shape (n,)."""
        if int(self.count.min()) < 2:
            raise ValueError(f"every row needs at least 2 recorded steps, the fewest has {int(self.count.min())}: "
                             "was the sampler run with this observer (and T >= window)?")
        return (self.m2 / self.count.to(torch.float64)[:, None]).mean(dim=1)


# ---------------------------------------------------------------- threshold analysis

_scores_labels = check_scores_labels      # mode_interp.stats: 1-D finite scores, boolean (or 0/1) labels


def _both_classes(y: np.ndarray) -> tuple:
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels need both classes: {n_pos} hallucinated, {n_neg} in support")
    return n_pos, n_neg


def removal_retention(scores, labels, threshold: float) -> dict:
    """Filter = remove score > threshold: ``removed`` = share of hallucinations removed (TPR), ``retained``
    = share of in-support samples kept (1 - FPR), with the counts behind them."""
    s, y = _scores_labels(scores, labels)
    n_pos, n_neg = _both_classes(y)
    threshold = check_float("threshold", threshold)
    removed, kept = int((s[y] > threshold).sum()), int((s[~y] <= threshold).sum())
    return {"threshold": threshold, "removed": removed / n_pos, "retained": kept / n_neg,
            "n_removed": removed, "n_retained": kept, "n_hallucinated": n_pos, "n_in_support": n_neg,
            "n_total_removed": int((s > threshold).sum()), "n": len(s)}


def threshold_for_removal(scores, labels, target: float = 0.95) -> float:
    """The largest threshold whose filter removes at least ``target`` of the hallucinations (so it keeps as
    many in-support samples as any threshold that reaches the target): just below the
    ceil(target * n_hallucinated)-th highest hallucinated score."""
    s, y = _scores_labels(scores, labels)
    _both_classes(y)
    target = check_float("target", target, 0.0, 1.0, lo_open=True)
    pos = np.sort(s[y])[::-1]
    m = max(1, math.ceil(target * len(pos) - 1e-9))          # remove at least one (a tiny target: one)
    return float(np.nextafter(pos[m - 1], -np.inf))


def in_support_below_hallucinated(scores, labels) -> dict:
    """The sufficient statistics of every threshold at a hallucinated score: the hallucinated scores in
    ascending order (``hallucinated``) and, for each, how many in-support samples score at or below it
    (``in_support_le``: the in-support samples a filter at that threshold keeps), with ``n_in_support``."""
    s, y = _scores_labels(scores, labels)
    _both_classes(y)
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    return {"hallucinated": pos.tolist(), "in_support_le": np.searchsorted(neg, pos, side="right").tolist(),
            "n_in_support": len(neg)}


def retention_bound(counts: dict, target: float = 0.95, confidence: float = 0.95, z: float = 3.29) -> dict:
    """What a filter keeps when it must be sure of its removal on *new* hallucinations, from
    :func:`in_support_below_hallucinated`.

    :func:`threshold_for_removal` is fitted on the m hallucinations at hand. Its retention is an unbiased
    estimate of its retention on new samples (the in-support scores play no part in choosing it), but its
    removal of new hallucinations is not: the population's (1 - ``target``) quantile q of the hallucinated
    scores can lie below it. Distribution-free, q >= s_(l), the l-th smallest hallucinated score, with
    probability >= ``confidence`` (:func:`mode_interp.stats.quantile_lower_rank`), so a filter at s_(l)
    removes at least ``target`` of new hallucinations with that confidence. This returns what that filter
    keeps: ``rank`` (l; 0 when m is too small for any such threshold, and then ``retained`` = 0),
    ``n_hallucinated``, ``threshold`` (s_(l), -inf for l = 0), ``retained`` (the in-support share with score
    <= s_(l)) and ``retained_lo`` (its Wilson lower bound at ``z``; with the rank's ``confidence``, jointly
    at least confidence - (1 - Wilson level) by the union bound), plus ``confidence`` and ``target``."""
    from .stats import quantile_lower_rank, wilson_interval
    check_instance("counts", counts, dict, " (from in_support_below_hallucinated)")
    for key in ("hallucinated", "in_support_le", "n_in_support"):
        if key not in counts:
            raise ValueError(f"counts must come from in_support_below_hallucinated (it has no {key!r})")
    n_in = check_int("n_in_support", counts["n_in_support"], 1, None)
    pos, le = np.asarray(counts["hallucinated"], dtype=float), np.asarray(counts["in_support_le"])
    if pos.ndim != 1 or not len(pos) or pos.shape != le.shape:
        raise ValueError("counts must hold one in-support count per hallucinated score, and at least one score")
    if np.any(np.diff(pos) < 0) or np.any(np.diff(le) < 0) or le.min() < 0 or le.max() > n_in:
        raise ValueError("counts must list the hallucinated scores in ascending order with non-decreasing "
                         f"in-support counts in [0, n_in_support = {n_in}]")
    target = check_float("target", target, 0.0, 1.0, lo_open=True, hi_open=True)
    rank = quantile_lower_rank(len(pos), 1.0 - target, confidence)
    kept = int(le[rank - 1]) if rank else 0
    return {"rank": rank, "n_hallucinated": len(pos), "confidence": confidence, "target": target,
            "threshold": float(pos[rank - 1]) if rank else -math.inf, "retained": kept / n_in,
            "retained_lo": wilson_interval(kept, n_in, z)[0]}


def threshold_for_retention(scores, labels, target: float = 0.96) -> float:
    """The smallest threshold that keeps at least ``target`` of the in-support samples: the
    ceil(target * n_in_support)-th lowest in-support score."""
    s, y = _scores_labels(scores, labels)
    _both_classes(y)
    target = check_float("target", target, 0.0, 1.0, lo_open=True)
    neg = np.sort(s[~y])
    return float(neg[max(1, math.ceil(target * len(neg) - 1e-9)) - 1])    # keep at least one


def roc_curve(scores, labels) -> dict:
    """ROC of the filter "remove score > threshold" over every distinct threshold: ``fpr`` (share of
    in-support samples removed), ``tpr`` (share of hallucinations removed), ``thresholds`` (decreasing;
    the first is +inf: nothing removed). Ties move both rates at once (a diagonal segment)."""
    s, y = _scores_labels(scores, labels)
    n_pos, n_neg = _both_classes(y)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]          # last index of each run of equal scores
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    return {"fpr": np.r_[0.0, fp / n_neg], "tpr": np.r_[0.0, tp / n_pos],
            "thresholds": np.r_[np.inf, np.nextafter(s[last], -np.inf)]}


def auroc(scores, labels) -> float:
    """Area under the ROC curve = P(score of a hallucination > score of an in-support sample), ties 1/2
    (the Mann-Whitney U statistic divided by n_hallucinated * n_in_support)."""
    s, y = _scores_labels(scores, labels)
    _both_classes(y)
    return float(auroc_components(s, y)[0].mean())


def auroc_interval(scores, labels, z: float = 3.29, strata=None) -> dict:
    """AUROC with DeLong's interval (:func:`mode_interp.stats.delong_interval`; ``strata``: compare only
    pairs within the same stratum, e.g. the number of shapes in an image)."""
    s, y = _scores_labels(scores, labels)
    return delong_interval(s, y, z, strata)


def keep_lowest(scores, n: int) -> np.ndarray:
    """Indices of the ``n`` lowest scores, in increasing score order (ties: lower index first): the official
    code's rank filter (sort by Hal, keep the first N)."""
    s = check_array("scores", scores, min_len=0)
    n = check_int("n", n, 0, len(s))
    return np.argsort(s, kind="stable")[:n]


def held_out_filter(scores: dict, labels, calibration, target: float = 0.95) -> dict:
    """Choose a score and its threshold on one part of the samples, measure them on the rest.

    ``scores``: candidate scores ``{name: (n,)}`` (e.g. Hal over several windows); ``calibration``: boolean
    (n,), True for the samples used to choose. On the calibration part, each candidate's threshold is
    :func:`threshold_for_removal` at ``target``; the candidate that then retains the most in-support
    samples wins (ties: the first). Returns ``{"choice", "threshold", "calibration": removal_retention on
    the calibration part, "held_out": removal_retention of the same threshold on the other part}``.
    """
    check_instance("scores", scores, dict, " {name: (n,) scores}")
    if not scores:
        raise ValueError("scores must hold at least one candidate {name: scores}")
    cal = np.asarray(calibration)
    if cal.dtype != bool or cal.ndim != 1:
        raise ValueError("calibration must be a 1-D boolean mask (True = used to choose)")
    best = None
    for name, s in scores.items():
        s, y = _scores_labels(s, labels)
        if len(s) != len(cal):
            raise ValueError(f"calibration has {len(cal)} entries but scores[{name!r}] has {len(s)}")
        thr = threshold_for_removal(s[cal], y[cal], target)
        fit = removal_retention(s[cal], y[cal], thr)
        if best is None or fit["retained"] > best["calibration"]["retained"]:
            best = {"choice": name, "threshold": thr, "calibration": fit,
                    "held_out": removal_retention(s[~cal], y[~cal], thr)}
    return best


def filter_summary(scores, labels, target: float = 0.95, z: float = 3.29) -> dict:
    """The filter at the threshold that removes ``target`` of the hallucinations (:func:`threshold_for_removal`):
    its :func:`removal_retention` numbers, plus AUROC with its DeLong interval (:func:`auroc_interval`)."""
    threshold = threshold_for_removal(scores, labels, target)
    return {**auroc_interval(scores, labels, z), **removal_retention(scores, labels, threshold)}
