"""Statistics across independent runs: Student's t distribution and the t-interval of a mean.

One run of a stochastic pipeline (training + sampling) is one observation; comparing two arms or two
precisions needs several independent seeds, with the between-seed spread as the error. For paired runs
(the same seed in both arms) the observations are the per-seed differences d_i, and

    mean_interval(d):  d_bar +/- t_{(1+c)/2, n-1} s / sqrt(n),    s^2 = sum (d_i - d_bar)^2 / (n - 1),

with the two-sided p-value of H0: E[d] = 0 from the t statistic d_bar / (s / sqrt(n)).
The t CDF is computed from the regularised incomplete beta function (a continued fraction, Lentz's
method): F(x) = 1 - I_{nu/(nu + x^2)}(nu/2, 1/2) / 2 for x >= 0.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import check_float


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
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f"values must be a 1-D sequence of at least 2 observations, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values contain NaN or infinite entries")
    confidence = check_float("confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True)
    n, mean, sd = len(v), float(v.mean()), float(v.std(ddof=1))
    half = student_t_quantile((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    t = mean / (sd / math.sqrt(n)) if sd > 0 else math.nan
    p = incomplete_beta((n - 1) / 2, 0.5, (n - 1) / (n - 1 + t * t)) if sd > 0 else math.nan   # 2 P(T > |t|)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "sd": sd, "n": n, "t": t, "p": p}
