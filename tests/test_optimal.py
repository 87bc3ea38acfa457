import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from conftest import gen


def noisy_mixture(mixture, schedule, t):
    """p_t itself: the mixture with means sqrt(ab) mu and std sqrt(v_t)."""
    ab = schedule.alpha_bar[t]
    return mi.GaussianMixture(np.sqrt(ab) * mixture.means, math.sqrt(ab * mixture.sigma ** 2 + 1 - ab),
                              mixture.weights)


@pytest.mark.parametrize("t", [2, 9, 49])
def test_posterior_mean_matches_monte_carlo_and_test_has_power(schedule, mixture, t):
    chi2, bins = mi.posterior_mean_check(mixture, schedule, t, gen(0))
    assert chi2 < 1 + 5 * math.sqrt(2 / bins)
    # the same check rejects a denoiser built for the wrong timestep
    wrong, _ = mi.posterior_mean_check(mixture, schedule, t, gen(0),
                                       denoiser=lambda x: mi.posterior_mean(x, t + 3, mixture, schedule))
    assert wrong > 1 + 5 * math.sqrt(2 / bins)


@pytest.mark.parametrize("make", [mi.mixture_1d, mi.grid_25, mi.rotated_grid_25,
                                  lambda: mi.mixture_1d((0.0, 1.0), 0.2, weights=(0.8, 0.2))])
@pytest.mark.parametrize("t", [0, 9, 300])
def test_score_is_gradient_of_log_p_t(schedule, make, t):
    m = make()
    x = (torch.randn(64, m.dim, generator=gen(t), dtype=torch.float64) * 1.2).requires_grad_(True)
    noisy_mixture(m, schedule, t).log_prob(x).sum().backward()
    torch.testing.assert_close(mi.score(x.detach(), t, m, schedule), x.grad, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("t", [0, 9, 300])
def test_tweedie_and_eps_consistency(schedule, t):
    m = mi.grid_25()
    x = torch.randn(100, 2, generator=gen(1), dtype=torch.float64)
    eps = mi.optimal_eps(x, t, m, schedule)
    torch.testing.assert_close(mi.x0_from_eps(x, t, eps, schedule), mi.posterior_mean(x, t, m, schedule))
    ab = schedule.alpha_bar[t]
    torch.testing.assert_close(eps, -math.sqrt(1 - ab) * mi.score(x, t, m, schedule))
    r = mi.responsibilities(x, t, m, schedule)
    torch.testing.assert_close(r.sum(1), torch.ones(100, dtype=torch.float64))


def test_stable_far_from_modes_and_at_t0(schedule, mixture):
    x = torch.tensor([[-50.0], [1.5], [1e3], [2.0]])
    for fn in (mi.posterior_mean, mi.score, mi.optimal_eps, mi.responsibilities):
        assert torch.isfinite(fn(x, 0, mixture, schedule)).all()
    assert mi.posterior_mean(x, 0, mixture, schedule).dtype == torch.float32


def test_denoiser_snaps_to_modes_between_them(schedule, mixture):
    # at t = 9 a point just left of the 1-2 boundary maps near mode 1, just right near mode 2
    sab = math.sqrt(schedule.alpha_bar[9])
    x = torch.tensor([[1.4 * sab], [1.6 * sab]], dtype=torch.float64)
    d = mi.posterior_mean(x, 9, mixture, schedule)[:, 0]
    assert d[0] < 1.15 and d[1] > 1.85


def test_transition_width_and_profile_match_numerics(schedule, mixture):
    prof = mi.step_profile(schedule, 1.0, 0.05)
    assert prof["width"][0] == pytest.approx(0.0154, abs=1e-4)
    assert prof["width"][9] == pytest.approx(0.0943, abs=1e-4)
    for t in (0, 9, 19):
        sab = math.sqrt(schedule.alpha_bar[t])
        width = mi.measured_transition_width(mixture, schedule, t, n_grid=400_001)
        assert width == pytest.approx(prof["width"][t], rel=1e-3)
        mid = torch.tensor([[1.5 * sab - 1e-6], [1.5 * sab + 1e-6]], dtype=torch.float64)
        d = mi.posterior_mean(mid, t, mixture, schedule)[:, 0]
        assert float((d[1] - d[0]) / 2e-6) == pytest.approx(prof["slope"][t], rel=1e-4)
        far = torch.tensor([[1.0 * sab], [2.0 * sab]], dtype=torch.float64)
        d = mi.posterior_mean(far, t, mixture, schedule)[:, 0]
        jump_d = float(d[1] - d[0]) - math.sqrt(schedule.alpha_bar[t]) * 0.05 ** 2 / (
            schedule.alpha_bar[t] * 0.05 ** 2 + 1 - schedule.alpha_bar[t]) * sab
        assert jump_d == pytest.approx(prof["jump"][t], rel=1e-3)
        # eps* at fixed x drops by eps_jump when the responsibility switches; away from the switch it
        # rises with slope sqrt(1 - ab) / v, which we add back.
        delta = 5 * prof["width"][t]
        if delta > 0.4:                 # the switch is not isolated from the other modes at t = 19
            continue
        v = schedule.alpha_bar[t] * 0.05 ** 2 + 1 - schedule.alpha_bar[t]
        e = mi.optimal_eps(torch.tensor([[1.5 * sab - delta], [1.5 * sab + delta]], dtype=torch.float64),
                           t, mixture, schedule)[:, 0]
        drop = float(e[0] - e[1]) + math.sqrt(1 - schedule.alpha_bar[t]) / v * 2 * delta
        assert drop == pytest.approx(prof["eps_jump"][t], rel=1e-3)


def test_exact_chain_mode_std_values(schedule):
    assert mi.exact_chain_mode_std(schedule, 0.05) == pytest.approx(0.04709, abs=1e-5)
    assert mi.exact_chain_mode_std(schedule, 0.05, "fixed_small") == pytest.approx(0.03857, abs=1e-5)


@pytest.mark.parametrize("call, name", [
    (lambda s, m: mi.posterior_mean(torch.zeros(3, 2), 0, m, s), "x_t"),
    (lambda s, m: mi.score(torch.zeros(3, 1), -1, m, s), "t"),
    (lambda s, m: mi.optimal_eps(torch.zeros(3, 1), 1000, m, s), "t"),
    (lambda s, m: mi.responsibilities([[0.0]], 0, m, s), "x_t"),
    (lambda s, m: mi.exact_eps_fn("grid", s), "mixture"),
    (lambda s, m: mi.transition_width(s, 0.0, 0.05), "gap"),
    (lambda s, m: mi.transition_width(s, 1.0, -0.05), "sigma"),
    (lambda s, m: mi.transition_width(s, 1.0, 0.05, q=0.4), "q"),
    (lambda s, m: mi.step_profile(s, -1.0, 0.05), "gap"),
    (lambda s, m: mi.exact_chain_mode_std(s, 0.0), "sigma"),
    (lambda s, m: mi.exact_chain_mode_std(s, 0.05, "other"), "variance"),
    (lambda s, m: mi.measured_transition_width(mi.grid_25(), s, 0), "mixture"),
    (lambda s, m: mi.measured_transition_width(m, s, 1000), "t"),
    (lambda s, m: mi.posterior_mean_check(m, s, 0, None), "generator"),
    (lambda s, m: mi.posterior_mean_check(mi.grid_25(), s, 0, gen()), "mixture"),
])
def test_bad_input(schedule, mixture, call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call(schedule, mixture)
