"""Property-based tests (hypothesis) of the public API: the identities the docstrings state hold for every
input hypothesis draws, and inputs outside a function's domain fail with an error naming the parameter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mode_interp import data, detect, diffusion, hallucination, optimal, schedule, stats, train
from mode_interp._validate import check_array, check_bool, check_float, check_int

SETTINGS = settings(max_examples=int(__import__("os").environ.get("HYPOTHESIS_EXAMPLES", "60")), deadline=None)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


# ---------------------------------------------------------------- probabilities and intervals

@SETTINGS
@given(k=st.floats(0, 1e300), dim=st.integers(1, 5000))
def test_chi_tail_is_a_probability_for_every_k_and_dim(k, dim):
    p = hallucination.chi_tail(k, dim)
    assert 0.0 <= p <= 1.0 and math.isfinite(p)


@SETTINGS
@given(k=st.floats(0, 50), dk=st.floats(1e-3, 5), dim=st.integers(1, 3000))
def test_chi_tail_decreases_in_k(k, dk, dim):
    assert hallucination.chi_tail(k + dk, dim) <= hallucination.chi_tail(k, dim) + 1e-12


@SETTINGS
@given(k=st.floats(0, 30))
def test_chi_tail_closed_forms(k):
    assert hallucination.chi_tail(k, 2) == pytest.approx(math.exp(-k * k / 2), rel=1e-9, abs=1e-300)
    assert hallucination.chi_tail(k, 1) == pytest.approx(math.erfc(k / math.sqrt(2)), rel=1e-9, abs=1e-300)


@SETTINGS
@given(n=st.integers(1, 10**6), frac=st.floats(0, 1), z=st.floats(0.1, 6))
def test_wilson_interval_brackets_the_rate(n, frac, z):
    count = int(round(frac * n))
    lo, hi = stats.wilson_interval(count, n, z)
    assert 0.0 <= lo <= count / n <= hi <= 1.0


@SETTINGS
@given(p=st.floats(1e-6, 1 - 1e-6), df=st.floats(0.5, 200))
def test_student_t_quantile_inverts_the_cdf(p, df):
    assert stats.student_t_cdf(stats.student_t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


@SETTINGS
@given(values=st.lists(finite, min_size=2, max_size=20), confidence=st.floats(0.5, 0.999))
def test_mean_interval_contains_the_mean(values, confidence):
    out = stats.mean_interval(values, confidence)
    assert out["lo"] <= out["mean"] <= out["hi"]
    assert math.isnan(out["p"]) or 0.0 <= out["p"] <= 1.0


@SETTINGS
@given(d=st.lists(st.floats(-10, 10), min_size=2, max_size=8))
def test_paired_test_p_values_are_probabilities(d):
    out = stats.paired_test(np.array(d), np.zeros(len(d)))
    assert 2.0 ** -len(d) - 1e-12 <= out["p_sign_flip"] <= 1.0
    assert math.isnan(out["p_one_sided"]) or 0.0 <= out["p_one_sided"] <= 1.0


# ---------------------------------------------------------------- the detector's threshold analysis

scores_labels = st.integers(4, 60).flatmap(lambda n: st.tuples(
    hnp.arrays(np.float64, n, elements=st.floats(-100, 100)),
    hnp.arrays(bool, n)).filter(lambda sl: 0 < sl[1].sum() < len(sl[1])))


@SETTINGS
@given(sl=scores_labels, target=st.floats(1e-12, 1.0))
def test_threshold_for_removal_reaches_its_target(sl, target):
    s, y = sl
    out = detect.removal_retention(s, y, detect.threshold_for_removal(s, y, target))
    assert out["removed"] >= target - 1e-12 and out["n_removed"] >= 1


@SETTINGS
@given(sl=scores_labels, target=st.floats(1e-12, 1.0))
def test_threshold_for_retention_reaches_its_target(sl, target):
    s, y = sl
    out = detect.removal_retention(s, y, detect.threshold_for_retention(s, y, target))
    assert out["retained"] >= target - 1e-12 and out["n_retained"] >= 1


@SETTINGS
@given(sl=scores_labels)
def test_auroc_is_the_mann_whitney_statistic(sl):
    s, y = sl
    pos, neg = s[y], s[~y]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert detect.auroc(s, y) == pytest.approx(brute, abs=1e-12)
    roc = detect.roc_curve(s, y)
    assert roc["fpr"][0] == roc["tpr"][0] == 0 and roc["fpr"][-1] == roc["tpr"][-1] == 1
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    ival = detect.auroc_interval(s, y)
    assert ival["lo"] <= ival["auroc"] <= ival["hi"]


@SETTINGS
@given(w=hnp.arrays(np.float64, st.tuples(st.integers(2, 12), st.integers(1, 8), st.integers(1, 3)),
                    elements=st.floats(-50, 50)))
def test_hal_is_the_population_variance_and_welford_agrees(w):
    x0_hat = torch.as_tensor(w)
    expected = w.var(axis=0).mean(axis=1)
    assert np.allclose(detect.hal(x0_hat).numpy(), expected, atol=1e-9)
    stream = detect.WindowVariance(w.shape[1], w.shape[2], window=w.shape[0])
    for row in x0_hat:
        stream.update(row)
    assert np.allclose(stream.hal().numpy(), expected, atol=1e-8)


# ---------------------------------------------------------------- schedule and forward process

betas = hnp.arrays(np.float64, st.integers(2, 60), elements=st.floats(1e-5, 0.3))


@SETTINGS
@given(b=betas, steps=st.integers(2, 60))
def test_respacing_keeps_alpha_bar_on_its_timesteps(b, steps):
    s = schedule.Schedule(b)
    assume(steps <= s.T)
    short, tau = schedule.respace(s, steps)
    assert np.allclose(short.alpha_bar, s.alpha_bar[tau], rtol=1e-12)
    assert np.all(np.diff(s.alpha_bar) < 0)


@SETTINGS
@given(t=st.integers(0, 19), n=st.integers(1, 20), d=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_x0_from_eps_inverts_q_sample(t, n, d, seed):
    s = schedule.linear_schedule(20)
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    eps = torch.randn(n, d, generator=g, dtype=torch.float64)
    x_t = diffusion.q_sample(x0, t, eps, s)
    assert torch.allclose(diffusion.x0_from_eps(x_t, t, eps, s), x0, atol=1e-8)


@SETTINGS
@given(mu=st.floats(-5, 5), sigma=st.floats(0.01, 2), t=st.integers(0, 19),
       x=hnp.arrays(np.float64, st.integers(1, 10), elements=st.floats(-10, 10)))
def test_posterior_mean_of_one_gaussian_is_linear(mu, sigma, t, x):
    """One mode: E[x0 | x_t] = mu + sqrt(ab) sigma^2 / v (x_t - sqrt(ab) mu), v = ab sigma^2 + 1 - ab."""
    s = schedule.linear_schedule(20)
    m = data.GaussianMixture(np.array([[mu]]), sigma)
    x_t = torch.as_tensor(x)[:, None]
    ab = s.alpha_bar[t]
    v = ab * sigma ** 2 + 1 - ab
    expected = mu + math.sqrt(ab) * sigma ** 2 / v * (x - math.sqrt(ab) * mu)
    assert np.allclose(optimal.posterior_mean(x_t, t, m, s)[:, 0].numpy(), expected, atol=1e-9)


# ---------------------------------------------------------------- distances between sample sets

@SETTINGS
@given(a=hnp.arrays(np.float64, st.tuples(st.integers(3, 30), st.integers(1, 4)), elements=st.floats(-10, 10)),
       shift=st.floats(-5, 5))
def test_frechet_distance_of_a_set_to_itself_and_to_a_shift(a, shift):
    assume(np.linalg.matrix_rank(np.cov(a.T).reshape(a.shape[1], a.shape[1])) == a.shape[1])
    assert abs(stats.frechet_distance(a, a)) < 1e-6 * (1 + np.abs(a).max() ** 2)
    shifted = stats.frechet_distance(a, a + shift)
    assert shifted == pytest.approx(a.shape[1] * shift ** 2, rel=1e-6, abs=1e-6 * (1 + np.abs(a).max() ** 2))


@SETTINGS
@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 50), st.just(2)), elements=st.floats(-3, 3)),
       bins=st.integers(1, 30))
def test_histogram_kl_is_zero_on_itself_and_never_negative(x, bins):
    t = torch.as_tensor(x)
    assert stats.histogram_kl(t, t, bins, -3.0, 3.0) == pytest.approx(0.0, abs=1e-12)
    other = torch.flip(t, dims=[1]) * 0.5
    assert stats.histogram_kl(t, other, bins, -3.0, 3.0) >= -1e-12


# ---------------------------------------------------------------- the validators refuse what they must

not_bool = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=5), st.lists(st.booleans(), max_size=2))


@SETTINGS
@given(value=not_bool)
def test_booleans_are_never_coerced(value):
    with pytest.raises(ValueError, match="share_blocks"):
        train.ToyConfig(share_blocks=value)
    with pytest.raises(ValueError, match="flag"):
        check_bool("flag", value)


@SETTINGS
@given(value=st.one_of(st.floats(allow_nan=True), st.text(max_size=4), st.complex_numbers(), st.booleans(),
                       st.none()).filter(lambda v: not (isinstance(v, float) and v.is_integer())))
def test_integers_are_never_truncated(value):
    with pytest.raises(ValueError, match="steps"):
        check_int("steps", value, 1)


@SETTINGS
@given(value=st.one_of(st.just(float("nan")), st.just(float("inf")), st.just(-float("inf")), st.complex_numbers(),
                       st.text(max_size=4), st.booleans(), st.none()))
def test_floats_must_be_finite_reals(value):
    with pytest.raises(ValueError, match="lr"):
        check_float("lr", value)


@SETTINGS
@given(a=hnp.arrays(st.sampled_from([np.complex128, np.object_, np.str_]), st.integers(1, 5)))
def test_arrays_of_non_reals_are_refused(a):
    with pytest.raises(ValueError, match="scores"):
        check_array("scores", a)


@SETTINGS
@given(w=hnp.arrays(np.float64, st.integers(2, 6), elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_mixture_weights_must_be_finite_and_non_negative(w):
    bad = not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0)
    means = np.arange(len(w), dtype=np.float64)
    if bad:
        with pytest.raises(ValueError, match="weights"):
            data.GaussianMixture(means, 0.1, w)
    else:
        m = data.GaussianMixture(means, 0.1, w)
        assert m.weights.sum() == pytest.approx(1.0) and np.all(m.weights >= 0)
