import math

import numpy as np
import pytest
import torch

import mode_interp as mi


def test_closed_form_values(schedule):
    assert schedule.T == 1000
    assert schedule.betas[0] == pytest.approx(1e-3)
    assert schedule.betas[-1] == pytest.approx(0.2)
    assert schedule.betas[1] == pytest.approx(1e-3 + 0.199 / 999)
    assert schedule.alpha_bar[0] == pytest.approx(0.999)
    assert schedule.alpha_bar[1] == pytest.approx(0.999 * (1 - 1e-3 - 0.199 / 999))
    # paper-notes §3.1 table
    for t, ab in [(4, 0.9930), (9, 0.9812), (19, 0.9437), (49, 0.7445), (99, 0.3350)]:
        assert schedule.alpha_bar[t] == pytest.approx(ab, abs=1e-4)
    assert int(np.argmax(schedule.alpha_bar < 0.01)) == 209
    assert int(np.argmax(schedule.alpha_bar < 1e-4)) == 296


def test_invariants_and_dtype(schedule):
    for name in ("betas", "alphas", "alpha_bar", "alpha_bar_prev", "posterior_variance",
                 "posterior_mean_coef1", "posterior_mean_coef2"):
        assert getattr(schedule, name).dtype == np.float64
    ab = schedule.alpha_bar
    assert np.all((ab > 0) & (ab < 1)) and np.all(np.diff(ab) < 0)
    assert schedule.alpha_bar_prev[0] == 1.0
    assert schedule.posterior_variance[0] == 0.0
    assert np.all(schedule.posterior_variance[1:] <= schedule.betas[1:])
    assert np.all(schedule.posterior_variance[1:50] < schedule.betas[1:50])


def test_posterior_coefficients_match_gaussian_conditioning(schedule):
    # E[x_{t-1} | x_t, x0] by conditioning the joint Gaussian (x_{t-1}, x_t) given x0, derived independently:
    # = sqrt(ab_{t-1}) x0 + (1 - ab_{t-1}) sqrt(a_t) / (1 - ab_t) (x_t - sqrt(ab_t) x0)
    t = np.arange(1, schedule.T)
    ab, ab_prev, a = schedule.alpha_bar[t], schedule.alpha_bar_prev[t], schedule.alphas[t]
    coef_x_t = (1 - ab_prev) * np.sqrt(a) / (1 - ab)
    coef_x0 = np.sqrt(ab_prev) - coef_x_t * np.sqrt(ab)
    np.testing.assert_allclose(schedule.posterior_mean_coef2[t], coef_x_t, rtol=1e-12)
    np.testing.assert_allclose(schedule.posterior_mean_coef1[t], coef_x0, rtol=1e-10)
    var = (1 - ab_prev) - coef_x_t ** 2 * (1 - ab)          # Var(x_{t-1} | x0) - explained part
    np.testing.assert_allclose(schedule.posterior_variance[t], var, rtol=1e-8)
    # t = 0 returns x0_hat itself
    assert schedule.posterior_mean_coef1[0] == pytest.approx(1.0)
    assert schedule.posterior_mean_coef2[0] == 0.0


def test_reverse_variances(schedule):
    large = schedule.reverse_variance("fixed_large")
    np.testing.assert_array_equal(large[1:], schedule.betas[1:])
    assert large[0] == schedule.posterior_variance[1]
    np.testing.assert_array_equal(schedule.reverse_variance("fixed_small"), schedule.posterior_variance)


def test_at_broadcasts(schedule):
    x = torch.zeros(3, 2)
    assert schedule.at("alpha_bar", 5, x) == pytest.approx(schedule.alpha_bar[5])
    out = schedule.at("alpha_bar", torch.tensor([0, 1, 2]), x)
    assert out.shape == (3, 1) and out.dtype == torch.float32


def test_other_T():
    s = mi.linear_schedule(T=200, beta_start=1e-4, beta_end=0.02)
    assert s.T == 200 and math.isclose(s.betas[-1], 0.02)


@pytest.mark.parametrize("kwargs, name", [
    (dict(T=1), "T"), (dict(T=10.5), "T"), (dict(beta_start=0.0), "beta_start"),
    (dict(beta_end=1.0), "beta_end"), (dict(beta_start=0.3, beta_end=0.2), "beta_end"),
    (dict(beta_start=float("nan")), "beta_start"),
])
def test_linear_schedule_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mi.linear_schedule(**kwargs)


def test_schedule_bad_betas():
    with pytest.raises(ValueError, match="betas"):
        mi.Schedule(np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="betas"):
        mi.Schedule(np.full(1000, 0.9999))          # alpha_bar underflows to 0
    with pytest.raises(ValueError, match="betas"):
        mi.Schedule(np.array([0.1]))


@pytest.mark.parametrize("t", [-1, 1000, 2.0, torch.tensor([0.5]), torch.tensor([0, 1000])])
def test_check_t_bad(schedule, t):
    with pytest.raises(ValueError, match="t"):
        schedule.check_t(t)


def test_reverse_variance_bad(schedule):
    with pytest.raises(ValueError, match="variance"):
        schedule.reverse_variance("learned")


def test_respace_keeps_alpha_bar_at_the_kept_steps(schedule):
    short, tau = mi.respace(schedule, 50)
    assert short.T == 50 and tau[0] == 0 and tau[-1] == schedule.T - 1
    assert np.allclose(short.alpha_bar, schedule.alpha_bar[tau], rtol=1e-12)
    full, tau_full = mi.respace(schedule, schedule.T)
    assert np.allclose(full.betas, schedule.betas) and np.array_equal(tau_full, np.arange(schedule.T))
    with pytest.raises(ValueError, match="steps"):
        mi.respace(schedule, 1)
