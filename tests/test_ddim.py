"""The DDIM chain (mode_interp.diffusion.ddim_step, sample(eta=...)) against the ancestral chain: at eta = 1
it *is* the ancestral step with the posterior variance (same mean, same noise), on the full schedule and
on a respaced one; at eta = 0 it draws nothing after x_T."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mode_interp as mi
from mode_interp.diffusion import ddim_step, respaced_eps, reverse_step


@pytest.fixture(scope="module")
def setup():
    schedule = mi.linear_schedule(1000)
    mixture = mi.mixture_1d((1.0, 2.0, 3.0), 0.05)
    return schedule, mixture, mi.exact_eps_fn(mixture, schedule)


def _run(eps, schedule, seed=0, n=400, **kw):
    return mi.sample(eps, n, 1, schedule, torch.Generator().manual_seed(seed), dtype=torch.float64, **kw).x0


def test_eta_one_is_the_ancestral_chain_with_the_posterior_variance(setup):
    schedule, _, eps = setup
    ddpm = _run(eps, schedule, variance="fixed_small")
    ddim = _run(eps, schedule, eta=1.0)
    assert torch.allclose(ddim, ddpm, rtol=0, atol=1e-9)
    assert not torch.allclose(_run(eps, schedule, variance="fixed_large"), ddpm, atol=1e-3)   # a real difference


def test_eta_one_on_a_respaced_chain_equals_the_respaced_ancestral_chain(setup):
    schedule, _, eps = setup
    short, tau = mi.respace(schedule, 50)
    step_eps = respaced_eps(eps, tau)
    ddpm = _run(step_eps, short, variance="fixed_small")
    assert torch.allclose(_run(step_eps, short, eta=1.0), ddpm, rtol=0, atol=1e-9)


def test_eta_zero_draws_only_x_T_and_is_a_function_of_it(setup):
    schedule, _, eps = setup
    short, tau = mi.respace(schedule, 20)
    g = torch.Generator().manual_seed(3)
    x = mi.sample(respaced_eps(eps, tau), 50, 1, short, g, dtype=torch.float64, eta=0.0).x0
    after = g.get_state()
    g2 = torch.Generator().manual_seed(3)
    torch.randn(50, 1, generator=g2, dtype=torch.float64)            # x_T only
    assert torch.equal(after, g2.get_state())
    assert torch.equal(x, mi.sample(respaced_eps(eps, tau), 50, 1, short, torch.Generator().manual_seed(3),
                                    dtype=torch.float64, eta=0.0).x0)


def test_ddim_step_closed_form_and_edges(setup):
    schedule, _, _ = setup
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(8, 2, generator=g, dtype=torch.float64)
    eps_hat = torch.randn(8, 2, generator=g, dtype=torch.float64)
    t = 500
    ab, ab_prev = schedule.alpha_bar[t], schedule.alpha_bar[t - 1]
    x0_hat = (x_t - np.sqrt(1 - ab) * eps_hat) / np.sqrt(ab)
    x_prev, x0 = ddim_step(x_t, t, eps_hat, schedule, g, eta=0.0)
    assert torch.allclose(x0, x0_hat) and torch.allclose(x_prev, np.sqrt(ab_prev) * x0_hat + np.sqrt(1 - ab_prev) * eps_hat)
    last, x0_last = ddim_step(x_t, 0, eps_hat, schedule, g, eta=0.5)
    assert torch.equal(last, x0_last)                                  # t = 0 returns x0_hat
    # eta = 1: the same mean and the same draw as the ancestral step with sigma^2 = beta_tilde
    a = ddim_step(x_t, t, eps_hat, schedule, torch.Generator().manual_seed(9), eta=1.0)[0]
    b = reverse_step(x_t, t, eps_hat, schedule, torch.Generator().manual_seed(9), variance="fixed_small")[0]
    assert torch.allclose(a, b, atol=1e-12)
    clipped = ddim_step(x_t * 50, t, eps_hat, schedule, g, eta=0.0, clip_x0=1.0)[1]
    assert clipped.abs().max() <= 1.0


def test_bad_input_names_the_parameter(setup):
    schedule, _, eps = setup
    x = torch.zeros(4, 1)
    for bad in (-0.1, 1.5, float("nan"), "1", True):
        with pytest.raises(ValueError, match="eta"):
            ddim_step(x, 5, x, schedule, torch.Generator(), eta=bad)
        with pytest.raises(ValueError, match="eta"):
            mi.sample(eps, 4, 1, schedule, torch.Generator(), eta=bad)
    with pytest.raises(ValueError, match="generator"):
        ddim_step(x, 5, x, schedule, None)
    with pytest.raises(ValueError, match="tau"):
        respaced_eps(eps, [0, 5, 5])
    with pytest.raises(ValueError, match="tau"):
        respaced_eps(eps, "0 1")
    with pytest.raises(TypeError, match="eps_fn"):
        respaced_eps(3, [0, 1])
