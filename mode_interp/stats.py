"""Statistics used across the book: binomial intervals, two-proportion and across-seed tests, DeLong's
AUROC interval, a histogram KL divergence, the Fréchet distance, and a line fitted over independent units
with its permutation test.

**Within one run** (sampling noise only): :func:`wilson_interval` for a rate, :func:`two_proportion_z` for
two rates, :func:`delong_interval` for an AUROC. These measure how well one run's samples pin down that
run's numbers; they say nothing about a second seed.

**Across runs.** One run of a stochastic pipeline (training + sampling + a loop) is one observation;
comparing two arms needs several independent seeds, with the between-seed spread as the error. For paired
runs (the same seed, hence the same generation 0, in both arms) the observations are the per-seed
differences d_i, and

    mean_interval(d):  d_bar +/- t_{(1+c)/2, n-1} s / sqrt(n),    s^2 = sum (d_i - d_bar)^2 / (n - 1),

with the p-value of H0: E[d] = 0 from the t statistic d_bar / (s / sqrt(n)). :func:`paired_test` adds
the one-sided p-value and the exact sign-flip permutation p-value (all 2^n sign patterns of the d_i; it
assumes only that each d_i is symmetric about 0 under H0, but it cannot fall below 2^-n: 0.125 with 3
seeds, 0.031 with 5).

The t CDF is computed from the regularised incomplete beta function (a continued fraction, Lentz's
method): F(x) = 1 - I_{nu/(nu + x^2)}(nu/2, 1/2) / 2 for x >= 0.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from ._validate import check_array, check_choice, check_float, check_int, check_points


# ---------------------------------------------------------------- within one run

def wilson_interval(count: int, n: int, z: float = 3.29) -> tuple:
    """Wilson score interval for a binomial proportion count / n (z = 3.29: two-sided 99.9%)."""
    n = check_int("n", n, 1, None)
    count = check_int("count", count, 0, n)
    z = check_float("z", z, 0.0, None, lo_open=True)
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if count == 0 else min(p, max(0.0, centre - half))      # exact at the ends (no rounding above 0)
    hi = 1.0 if count == n else max(p, min(1.0, centre + half))
    return lo, hi


def two_proportion_z(count_a: int, n_a: int, count_b: int, n_b: int) -> float:
    """z statistic of the pooled two-proportion test that rate b exceeds rate a:

        z = (p_b - p_a) / sqrt(p (1 - p) (1/n_a + 1/n_b)),   p = (count_a + count_b) / (n_a + n_b).

    One-sided: z >= 1.645 rejects "b <= a" at the 5% level, z >= 2.326 at 1%. 0 when both counts are 0.
    """
    n_a, n_b = check_int("n_a", n_a, 1, None), check_int("n_b", n_b, 1, None)
    count_a, count_b = check_int("count_a", count_a, 0, n_a), check_int("count_b", count_b, 0, n_b)
    p = (count_a + count_b) / (n_a + n_b)
    if p in (0.0, 1.0):
        return 0.0
    return (count_b / n_b - count_a / n_a) / math.sqrt(p * (1 - p) * (1 / n_a + 1 / n_b))


def _midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of x with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x))
    starts = np.r_[0, np.flatnonzero(np.diff(xs)) + 1]
    ends = np.r_[starts[1:], len(x)]
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = (a + b + 1) / 2
    return ranks


def auroc_components(s: np.ndarray, y: np.ndarray) -> tuple:
    """DeLong's structural components of scores ``s`` (float array) with boolean labels ``y`` (True =
    positive, e.g. hallucinated): V10 (per positive, share of negative scores below it, ties 1/2) and V01
    (per negative, share of positive scores above it). AUROC = mean(V10) = mean(V01)."""
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels need both classes: {n_pos} positive, {n_neg} negative")
    r_all, r_pos, r_neg = _midranks(s), _midranks(s[y]), _midranks(s[~y])
    v10 = (r_all[y] - r_pos) / n_neg
    v01 = 1.0 - (r_all[~y] - r_neg) / n_pos
    return v10, v01


def check_scores_labels(scores, labels, score_name: str = "scores", label_name: str = "labels") -> tuple:
    """``(s, y)``: ``scores`` as a 1-D finite float64 array and ``labels`` as a boolean array of the same
    length (True = hallucinated / positive; 0/1 integers are accepted, nothing else)."""
    s = check_array(score_name, scores, min_len=0)
    if labels is None or isinstance(labels, (str, bytes)):
        raise ValueError(f"{label_name} must be a 1-D boolean array, got {labels!r}")
    y = np.asarray(labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels)
    if y.ndim != 1 or len(y) != len(s):
        raise ValueError(f"{score_name} and {label_name} must be 1-D of the same length, got shapes {s.shape} "
                         f"and {y.shape}")
    if y.dtype != bool:
        if y.dtype.kind not in "iu" or not np.isin(y, (0, 1)).all():
            raise ValueError(f"{label_name} must be boolean (True = hallucinated) or 0/1 integers, got dtype {y.dtype}")
        y = y.astype(bool)
    return s, y


def delong_interval(s: np.ndarray, y: np.ndarray, z: float = 3.29, strata=None) -> dict:
    """AUROC with DeLong's variance, var = var(V10)/n_pos + var(V01)/n_neg, and the normal interval
    AUROC +/- z * sd clipped to [0, 1] (z = 3.29: 99.9%), of float scores ``s`` and boolean labels ``y``
    (:func:`mode_interp.detect.auroc_interval` validates them and calls this).

    ``strata`` (one key per sample, e.g. the number of shapes in an image): compare only pairs within the
    same stratum, AUROC = sum_s U_s / sum_s n_pos_s n_neg_s, variance sum_s w_s^2 var_s with w_s the
    stratum's share of pairs; strata lacking either class are dropped (``n_pairs`` counts what is left).
    """
    s, y = check_scores_labels(s, y, "s", "y")
    z = check_float("z", z, 0.0, None, lo_open=True)
    if strata is None:
        keys = np.zeros(len(s), dtype=int)
    else:
        keys = np.asarray(strata)
        if keys.shape != s.shape:
            raise ValueError(f"strata must give one key per score ({len(s)}), got shape {keys.shape}")
        if keys.dtype.kind == "f" and not np.isfinite(keys).all():
            raise ValueError("strata contains NaN or infinite keys")
    parts = []
    for key in np.unique(keys):
        m = keys == key
        n_pos, n_neg = int(y[m].sum()), int((~y[m]).sum())
        if n_pos and n_neg:
            v10, v01 = auroc_components(s[m], y[m])
            var = (v10.var(ddof=1) / n_pos if n_pos > 1 else 0.0) + (v01.var(ddof=1) / n_neg if n_neg > 1 else 0.0)
            parts.append((n_pos * n_neg, float(v10.mean()), var, n_pos, n_neg))
    if not parts:
        raise ValueError("no stratum of strata holds both a hallucinated and an in-support sample")
    pairs = sum(p[0] for p in parts)
    value = sum(p[0] * p[1] for p in parts) / pairs
    sd = math.sqrt(sum((p[0] / pairs) ** 2 * p[2] for p in parts))
    return {"auroc": value, "lo": max(0.0, value - z * sd), "hi": min(1.0, value + z * sd), "sd": sd,
            "n_hallucinated": sum(p[3] for p in parts), "n_in_support": sum(p[4] for p in parts),
            "n_pairs": pairs}


def histogram_kl(x: torch.Tensor, reference: torch.Tensor, bins: int, lo: float, hi: float) -> float:
    """KL(reference || x) between histograms on a regular grid of ``bins`` per axis over [lo, hi]^d (1-D or
    2-D), each bin count + 0.5 (Jeffreys smoothing, so empty bins stay finite); points outside are clipped
    into the edge bins. Same sample sizes give comparable values across generations."""
    bins = check_int("bins", bins, 1, 10_000)
    check_points("x", x)
    check_points("reference", reference)
    if x.shape[1] != reference.shape[1] or x.shape[1] not in (1, 2):
        raise ValueError(f"x and reference must be (n, 1) or (n, 2) with the same d, got {tuple(x.shape)} and "
                         f"{tuple(reference.shape)}")
    lo, hi = check_float("lo", lo), check_float("hi", hi)
    if not hi > lo:
        raise ValueError(f"need hi > lo, got lo={lo}, hi={hi}")

    def hist(points):
        idx = ((points.double() - lo) / (hi - lo) * bins).floor().long().clamp(0, bins - 1)
        flat = idx[:, 0] if idx.shape[1] == 1 else idx[:, 0] * bins + idx[:, 1]
        counts = torch.bincount(flat, minlength=bins ** idx.shape[1]).double() + 0.5
        return counts / counts.sum()

    p, q = hist(reference), hist(x)
    return float((p * (p / q).log()).sum())


def frechet_distance(features_a, features_b) -> float:
    """FD between Gaussians fitted to two feature sets (rows = samples), in float64 (module docstring)."""
    a, b = (torch.as_tensor(check_array(name, f, ndim=2)) for name, f in
            (("features_a", features_a), ("features_b", features_b)))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must be (n, d) with the same d, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("features_a and features_b need at least 2 rows each (a covariance)")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))      # d = 1: a 1 x 1 matrix
    w, v = torch.linalg.eigh(s_a)
    root_a = (v * w.clamp_min(0).sqrt()) @ v.T
    cross = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp_min(0).sqrt().sum()
    return float(((mu_a - mu_b) ** 2).sum() + torch.trace(s_a) + torch.trace(s_b) - 2 * cross)


# ---------------------------------------------------------------- across runs

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    a = check_float("a", a, 0.0, None, lo_open=True)
    b = check_float("b", b, 0.0, None, lo_open=True)
    x = check_float("x", x, 0.0, 1.0)
    if x in (0.0, 1.0):
        return x
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def quantile_lower_rank(m: int, p: float, confidence: float = 0.95) -> int:
    """A distribution-free lower confidence bound on a quantile, as a rank: the largest l (0 .. m) such that
    the l-th smallest of ``m`` independent draws of a continuous distribution lies at or below its
    ``p``-quantile q with probability >= ``confidence`` (l = 0: no draw does; the bound is -inf).

    The number of draws below q is Binomial(m, p), so P(s_(l) <= q) = P(Bin(m, p) >= l); l is the smallest
    k with P(Bin(m, p) <= k) > 1 - confidence (the binomial pmf summed in log space)."""
    m = check_int("m", m, 1, None)
    p = check_float("p", p, 0.0, 1.0, lo_open=True, hi_open=True)
    confidence = check_float("confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True)
    cdf, log_p, log_q = 0.0, math.log(p), math.log1p(-p)
    for k in range(m + 1):
        cdf += math.exp(math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1) + k * log_p + (m - k) * log_q)
        if cdf > 1.0 - confidence:
            return k
    return m


def student_t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with ``df`` degrees of freedom."""
    x = check_float("x", x)
    df = check_float("df", df, 0.0, None, lo_open=True)
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + x * x))
    return 1.0 - tail if x >= 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The x with P(T <= x) = p (bisection on :func:`student_t_cdf`, to 1e-12)."""
    p = check_float("p", p, 0.0, 1.0, lo_open=True, hi_open=True)
    df = check_float("df", df, 0.0, None, lo_open=True)
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if student_t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_interval(values, confidence: float = 0.95) -> dict:
    """Mean of independent observations (e.g. per-seed paired differences) with its t-interval:
    ``{"mean", "lo", "hi", "sd", "n", "t", "p"}`` (``p``: two-sided, H0 mean = 0; NaN when sd = 0)."""
    v = check_array("values", values, min_len=2)
    confidence = check_float("confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True)
    n, mean, sd = len(v), float(v.mean()), float(v.std(ddof=1))
    half = student_t_quantile((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    t = mean / (sd / math.sqrt(n)) if sd > 0 else math.nan
    p = incomplete_beta((n - 1) / 2, 0.5, (n - 1) / (n - 1 + t * t)) if sd > 0 else math.nan   # 2 P(T > |t|)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "sd": sd, "n": n, "t": t, "p": p}


def paired_test(a, b, confidence: float = 0.95, alternative: str = "less") -> dict:
    """Across-seed comparison of two arms run on the same seeds: ``a[i]``, ``b[i]`` are seed i's values.

    The observations are d_i = a_i - b_i. Returns :func:`mean_interval` of d (``mean``, ``lo``, ``hi``,
    ``sd``, ``n``, ``t``, two-sided ``p``) plus ``p_one_sided`` (paired t-test of H1: E[d] < 0 for
    ``alternative="less"``, > 0 for ``"greater"``), ``p_sign_flip`` (the exact one-sided permutation
    p-value: the share of the 2^n sign patterns of |d_i| whose mean is at least as extreme as the observed
    one), ``n_agree`` (seeds whose d_i has the alternative's sign) and ``d`` (the differences).
    """
    check_choice("alternative", alternative, ("less", "greater"))
    a, b = check_array("a", a, min_len=2), check_array("b", b, min_len=2)
    if a.shape != b.shape:
        raise ValueError(f"a and b must be 1-D with one value per seed each, got shapes {a.shape} and {b.shape}")
    d = a - b
    out = mean_interval(d, confidence)
    sign = -1.0 if alternative == "less" else 1.0
    if math.isnan(out["t"]):
        out["p_one_sided"] = math.nan
    else:
        upper = 1.0 - student_t_cdf(sign * out["t"], len(d) - 1)            # P(T >= sign * t)
        out["p_one_sided"] = upper
    observed = sign * d.mean()
    means = [sign * np.mean(np.array(flips) * np.abs(d)) for flips in itertools.product((-1.0, 1.0), repeat=len(d))]
    out["p_sign_flip"] = float(np.mean(np.array(means) >= observed - 1e-12 * max(1.0, abs(observed))))
    out["n_agree"] = int((sign * d > 0).sum())
    out["d"] = [float(v) for v in d]
    return out


def seed_spread(values) -> dict:
    """Mean, sample sd, min and max of per-seed values (``n`` >= 1; sd is NaN for one seed)."""
    v = check_array("values", values)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
            "min": float(v.min()), "max": float(v.max()), "n": len(v)}


def sign_test(n_agree: int, n: int) -> float:
    """Exact one-sided sign test: P(X >= n_agree) for X ~ Binomial(n, 1/2), the chance that at least
    ``n_agree`` of ``n`` independent units point the predicted way when each is a fair coin under H0."""
    n = check_int("n", n, 1, None)
    n_agree = check_int("n_agree", n_agree, 0, n)
    return float(sum(math.comb(n, k) for k in range(n_agree, n + 1)) / 2 ** n)


def linear_fit(x, y, through_origin: bool = False, confidence: float = 0.95, alternative: str = "less") -> dict:
    """Least-squares line y = a + b x (``through_origin``: y = b x) over independent units (e.g. one
    point per trained model), with the slope's t-interval and tests:

        b = sum (x_i - x_bar)(y_i - y_bar) / sum (x_i - x_bar)^2,   se(b)^2 = sum e_i^2 / ((n - p) S_xx)

    (through the origin: x_bar = y_bar = 0; p = number of fitted coefficients, so n - p degrees of
    freedom). Returns ``slope``, ``intercept``, ``lo``, ``hi``, ``se``, ``n``, ``df``, ``r`` (Pearson's,
    about the means), ``p_one_sided`` (H1: b < 0 for ``alternative="less"``, b > 0 for ``"greater"``)."""
    x, y = check_array("x", x, min_len=3), check_array("y", y, min_len=3)
    if x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and {y.shape}")
    check_choice("alternative", alternative, ("less", "greater"))
    confidence = check_float("confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True)
    xc, yc = (x, y) if through_origin else (x - x.mean(), y - y.mean())
    sxx = float((xc ** 2).sum())
    if sxx == 0:
        raise ValueError("x must not be all zero (through the origin) or constant (no slope can be fitted)")
    slope = float((xc * yc).sum() / sxx)
    intercept = 0.0 if through_origin else float(y.mean() - slope * x.mean())
    df = len(x) - (1 if through_origin else 2)
    se = math.sqrt(float(((y - intercept - slope * x) ** 2).sum()) / df / sxx)
    half = student_t_quantile((1 + confidence) / 2, df) * se
    sign = -1.0 if alternative == "less" else 1.0
    p = 1.0 - student_t_cdf(sign * slope / se, df) if se > 0 else math.nan      # a perfect fit: no test
    r = float(np.corrcoef(x, y)[0, 1])
    return {"slope": slope, "intercept": intercept, "lo": slope - half, "hi": slope + half, "se": se,
            "n": len(x), "df": df, "r": r, "p_one_sided": float(p)}


def permutation_correlation(x, y, n_perm: int = 20_000, seed: int = 0, alternative: str = "less") -> dict:
    """Pearson's r of paired observations and its permutation p-value: the share of ``n_perm`` random
    re-pairings of ``x`` with ``y`` (a numpy generator seeded with ``seed``) whose r is at least as extreme,

        p = (1 + #{r_perm <= r}) / (1 + n_perm)     (``alternative="less"``; ">=" for ``"greater"``).

    It assumes only that, under H0 (no association), the units are exchangeable; it needs no normal errors
    and no particular value of the intercept. The smallest p it can give is 1 / (1 + n_perm)."""
    x, y = check_array("x", x, min_len=3), check_array("y", y, min_len=3)
    if x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and {y.shape}")
    if x.std() == 0 or y.std() == 0:
        raise ValueError("x and y must not be constant (no correlation is defined)")
    check_choice("alternative", alternative, ("less", "greater"))
    n_perm = check_int("n_perm", n_perm, 1, None)
    seed = check_int("seed", seed, 0, None)
    rng = np.random.default_rng(seed)
    xs, ys = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    r = float(np.mean(xs * ys))
    perms = rng.permuted(np.tile(xs, (n_perm, 1)), axis=1)
    r_perm = (perms * ys).mean(axis=1)
    extreme = r_perm <= r + 1e-12 if alternative == "less" else r_perm >= r - 1e-12
    return {"r": r, "p": float((1 + extreme.sum()) / (1 + n_perm)), "n_perm": n_perm, "seed": seed}
