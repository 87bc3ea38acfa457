"""Student's t against tabulated values and closed forms; the t-interval of a mean."""
import math

import numpy as np
import pytest

from mode_interp import stats


@pytest.mark.parametrize("p, df, expected", [(0.975, 2, 4.302652730), (0.975, 4, 2.776445105),
                                             (0.975, 10, 2.228138852), (0.95, 1, 6.313751515),
                                             (0.995, 30, 2.749995654), (0.975, 1e6, 1.959966)])
def test_t_quantile_matches_tables(p, df, expected):
    assert stats.student_t_quantile(p, df) == pytest.approx(expected, rel=1e-6)
    assert stats.student_t_quantile(1 - p, df) == pytest.approx(-expected, rel=1e-6)


def test_t_cdf_closed_forms():
    for x in (-3.0, -0.5, 0.0, 0.7, 5.0):
        assert stats.student_t_cdf(x, 1) == pytest.approx(0.5 + math.atan(x) / math.pi, abs=1e-12)   # Cauchy
        assert stats.student_t_cdf(x, 2) == pytest.approx(0.5 + x / (2 * math.sqrt(2 + x * x)), abs=1e-12)


def test_mean_interval():
    r = stats.mean_interval([1.0, 2.0, 3.0])
    half = 4.302652730 * 1.0 / math.sqrt(3)
    assert r["mean"] == 2.0 and r["lo"] == pytest.approx(2 - half) and r["hi"] == pytest.approx(2 + half)
    assert r["t"] == pytest.approx(2 * math.sqrt(3)) and 0 < r["p"] < 0.1
    assert math.isnan(stats.mean_interval([1.0, 1.0])["p"])
    rng = np.random.default_rng(0)        # coverage of the 95% interval on normal data, 2,000 repetitions
    cover = np.mean([(lambda r: r["lo"] <= 0 <= r["hi"])(stats.mean_interval(rng.normal(size=4)))
                     for _ in range(2000)])
    assert 0.93 < cover < 0.97


@pytest.mark.parametrize("call, name", [
    (lambda: stats.mean_interval([1.0]), "values"), (lambda: stats.mean_interval([1.0, math.nan]), "values"),
    (lambda: stats.mean_interval([[1.0, 2.0]]), "values"), (lambda: stats.mean_interval([1, 2], 1.0), "confidence"),
    (lambda: stats.student_t_quantile(1.0, 3), "p"), (lambda: stats.student_t_quantile(0.5, 0), "df"),
    (lambda: stats.student_t_cdf(math.inf, 3), "x"), (lambda: stats.incomplete_beta(1, 1, 1.5), "x"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_paired_test_t_and_exact_sign_flip():
    a, b = [0.10, 0.20, 0.15, 0.12, 0.18], [0.20, 0.26, 0.25, 0.15, 0.30]
    r = stats.paired_test(a, b)
    d = np.subtract(a, b)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(5))
    assert r["t"] == pytest.approx(t) and r["mean"] == pytest.approx(d.mean())
    assert r["p_one_sided"] == pytest.approx(stats.student_t_cdf(t, 4))          # H1: mean < 0
    assert r["p_one_sided"] == pytest.approx(r["p"] / 2)
    assert r["p_sign_flip"] == pytest.approx(1 / 32)           # every d < 0: only the observed pattern
    assert r["n_agree"] == 5 and r["d"] == pytest.approx(list(d))
    g = stats.paired_test(b, a, alternative="greater")
    assert g["p_one_sided"] == pytest.approx(r["p_one_sided"]) and g["p_sign_flip"] == pytest.approx(1 / 32)
    mixed = stats.paired_test([1.0, 2.0, 3.0], [2.0, 1.0, 3.5])    # d = -1, +1, -0.5
    # sign patterns of |d| = (1, 1, .5) with mean <= -0.5/3: (-,-,-), (-,-,+), (-,+,-), (+,-,-) -> 4 of 8
    assert mixed["p_sign_flip"] == pytest.approx(4 / 8) and mixed["n_agree"] == 2


def test_paired_test_is_calibrated_under_the_null():
    rng = np.random.default_rng(1)
    ps = [stats.paired_test(rng.normal(size=5), rng.normal(size=5))["p_one_sided"] for _ in range(2000)]
    assert 0.035 < np.mean(np.array(ps) < 0.05) < 0.065


@pytest.mark.parametrize("call, name", [
    (lambda: stats.paired_test([1, 2], [1, 2, 3]), "a and b"), (lambda: stats.paired_test([1, 2], [0, 1], alternative="two"), "alternative"),
    (lambda: stats.seed_spread([]), "values")])
def test_across_seed_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_seed_spread():
    r = stats.seed_spread([1.0, 3.0])
    assert r == {"mean": 2.0, "sd": pytest.approx(math.sqrt(2)), "min": 1.0, "max": 3.0, "n": 2}
    assert math.isnan(stats.seed_spread([1.0])["sd"])


def test_sign_test_is_the_binomial_tail():
    assert stats.sign_test(3, 3) == pytest.approx(1 / 8)
    assert stats.sign_test(0, 5) == 1.0
    assert stats.sign_test(24, 27) == pytest.approx(sum(math.comb(27, k) for k in range(24, 28)) / 2 ** 27)
    with pytest.raises(ValueError, match="n_agree"):
        stats.sign_test(4, 3)


def test_linear_fit_recovers_a_line_and_its_interval():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = 1.5 - 2.0 * x + rng.normal(scale=0.5, size=200)
    f = stats.linear_fit(x, y)
    assert f["lo"] < -2.0 < f["hi"] and f["intercept"] == pytest.approx(1.5, abs=0.15)
    assert f["df"] == 198 and f["p_one_sided"] < 1e-10 and f["r"] < -0.9
    ref = np.polyfit(x, y, 1)
    assert f["slope"] == pytest.approx(ref[0]) and f["intercept"] == pytest.approx(ref[1])
    g = stats.linear_fit(x, -2.0 * x + rng.normal(scale=0.5, size=200), through_origin=True)
    assert g["intercept"] == 0.0 and g["df"] == 199 and g["lo"] < -2.0 < g["hi"]
    assert stats.linear_fit(x, y, alternative="greater")["p_one_sided"] > 0.999


def test_linear_fit_covers_the_true_slope_at_its_level():
    """Over many noisy data sets the 95% interval holds the true slope about 95% of the time."""
    rng = np.random.default_rng(1)
    hits = [(f["lo"] < 0.7 < f["hi"]) for f in (stats.linear_fit(x, 0.7 * x + rng.normal(size=8))
                                              for x in rng.normal(size=(2000, 8)))]
    assert 0.93 < np.mean(hits) < 0.97


def test_linear_fit_bad_input():
    with pytest.raises(ValueError, match="constant"):
        stats.linear_fit([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="same length"):
        stats.linear_fit([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="alternative"):
        stats.linear_fit([1, 2, 3], [1, 2, 4], alternative="two")
    with pytest.raises(ValueError, match="x"):
        stats.linear_fit([1, 2], [1, 2])


def test_linear_fit_through_the_origin_covers_at_its_level():
    rng = np.random.default_rng(2)
    hits = [(f["lo"] < -1.5 < f["hi"]) for f in (stats.linear_fit(x, -1.5 * x + rng.normal(size=6), through_origin=True)
                                               for x in rng.normal(size=(2000, 6)))]
    assert 0.93 < np.mean(hits) < 0.97
    assert math.isnan(stats.linear_fit([1, 2, 3], [2, 4, 6])["p_one_sided"])        # a perfect fit: no test
    with pytest.raises(ValueError, match="all zero"):
        stats.linear_fit([0, 0, 0], [1, 2, 3], through_origin=True)


def test_permutation_correlation_is_uniform_under_the_null_and_small_under_a_relation():
    rng = np.random.default_rng(3)
    ps = [stats.permutation_correlation(rng.normal(size=10), rng.normal(size=10), 200, seed=i)["p"] for i in range(300)]
    assert 0.03 < np.mean(np.array(ps) <= 0.05) < 0.08
    x = rng.normal(size=20)
    r = stats.permutation_correlation(x, -x + 0.1 * rng.normal(size=20), 2000, seed=1)
    assert r["r"] < -0.9 and r["p"] == pytest.approx(1 / 2001)
    assert stats.permutation_correlation(x, -x, 2000, seed=1, alternative="greater")["p"] == 1.0
    with pytest.raises(ValueError, match="constant"):
        stats.permutation_correlation([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="n_perm"):
        stats.permutation_correlation([1, 2, 3], [1, 2, 4], 0)


@pytest.mark.parametrize("m, p, confidence", [(92, 0.05, 0.95), (92, 0.05, 0.999), (1000, 0.05, 0.95), (7, 0.5, 0.9)])
def test_quantile_lower_rank_is_the_binomial_tail_rule(m, p, confidence):
    """l = the largest rank with P(Bin(m, p) >= l) >= confidence, by exact sums."""
    tail = lambda l: sum(math.comb(m, k) * p ** k * (1 - p) ** (m - k) for k in range(l, m + 1))  # noqa: E731
    l = stats.quantile_lower_rank(m, p, confidence)
    assert l == 0 or tail(l) >= confidence - 1e-12
    assert tail(l + 1) < confidence


def test_quantile_lower_rank_covers_the_quantile():
    """Over repeated draws the l-th smallest lies below the true 5% quantile in >= 95% of them."""
    rng = np.random.default_rng(0)
    m, l = 92, stats.quantile_lower_rank(92, 0.05, 0.95)
    q = -1.6448536269514722            # the 5% quantile of N(0, 1)
    below = np.mean([np.sort(rng.standard_normal(m))[l - 1] <= q for _ in range(4000)])
    assert l == 1 and below >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / 4000)
    assert stats.quantile_lower_rank(92, 0.05, 0.999) == 0            # too few draws for that confidence
    for bad, name in (({"m": 0, "p": 0.1}, "m"), ({"m": 5, "p": 1.0}, "p"), ({"m": 5, "p": 0.1, "confidence": 1.0}, "confidence")):
        with pytest.raises(ValueError, match=f"^{name} must"):
            stats.quantile_lower_rank(**bad)
