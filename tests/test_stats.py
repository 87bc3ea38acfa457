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
