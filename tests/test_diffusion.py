import numpy as np
import pytest
import torch

import mode_interp as mi
from conftest import gen


def test_q_sample_moments(schedule):
    x0 = torch.full((200_000, 1), 2.0, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen(0), dtype=torch.float64)
    for t in (0, 9, 99):
        x_t = mi.q_sample(x0, t, eps, schedule)
        ab = schedule.alpha_bar[t]
        assert x_t.mean().item() == pytest.approx(2 * np.sqrt(ab), abs=5 * np.sqrt(1 - ab) / 400)
        assert x_t.std().item() == pytest.approx(np.sqrt(1 - ab), rel=0.01)


def test_q_sample_per_row_t_and_inverse(schedule):
    x0 = torch.randn(5, 2, generator=gen(1), dtype=torch.float64)
    eps = torch.randn(5, 2, generator=gen(2), dtype=torch.float64)
    t = torch.tensor([0, 3, 50, 100, 200])   # beyond t ~ 300 alpha_bar < 1e-4 and x0 is unrecoverable
    x_t = mi.q_sample(x0, t, eps, schedule)
    for i in range(5):
        np.testing.assert_allclose(x_t[i], mi.q_sample(x0[i:i + 1], int(t[i]), eps[i:i + 1], schedule)[0])
    np.testing.assert_allclose(mi.x0_from_eps(x_t, t, eps, schedule), x0, rtol=1e-6, atol=1e-6)


def test_reverse_step_with_oracle_x0_reproduces_posterior(schedule):
    # Feeding the true eps makes x0_hat = x0, so x_{t-1} ~ N(mu_tilde(x_t, x0), sigma_t^2).
    n, t = 200_000, 5
    x0 = torch.full((n, 1), 1.5, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen(3), dtype=torch.float64)
    x_t = mi.q_sample(x0, t, eps, schedule)
    for variance in ("fixed_small", "fixed_large"):
        x_prev, x0_hat = mi.reverse_step(x_t, t, eps, schedule, gen(4), variance)
        np.testing.assert_allclose(x0_hat, x0, atol=1e-9)
        mean = schedule.posterior_mean_coef1[t] * x0 + schedule.posterior_mean_coef2[t] * x_t
        resid = x_prev - mean
        assert resid.mean().item() == pytest.approx(0.0, abs=5e-3 * np.sqrt(schedule.betas[t]))
        expected = schedule.reverse_variance(variance)[t] ** 0.5
        assert resid.std().item() == pytest.approx(expected, rel=0.01)
    # fixed_small at t-1 is the exact posterior: x_{t-1} has the marginal q(x_{t-1} | x0)
    x_prev, _ = mi.reverse_step(x_t, t, eps, schedule, gen(5), "fixed_small")
    assert x_prev.std().item() == pytest.approx(np.sqrt(1 - schedule.alpha_bar[t - 1]), rel=0.01)


def test_reverse_step_t0_is_deterministic(schedule):
    x = torch.randn(10, 1, generator=gen(0))
    eps = torch.randn(10, 1, generator=gen(1))
    a, x0_hat = mi.reverse_step(x, 0, eps, schedule, gen(2))
    b, _ = mi.reverse_step(x, 0, eps, schedule, gen(3))
    assert torch.equal(a, b)
    torch.testing.assert_close(a, x0_hat)


def test_eps_mse_loss_prefers_optimal_eps(schedule, mixture):
    x0 = mixture.sample(50_000, gen(0))
    zero = mi.eps_mse_loss(lambda x, t: torch.zeros_like(x), x0, schedule, gen(1)).item()
    best = mi.eps_mse_loss(mi.exact_eps_fn(mixture, schedule), x0, schedule, gen(1)).item()
    assert zero == pytest.approx(1.0, rel=0.02)
    assert best < 0.5 * zero


def test_sample_shapes_window_and_seeding(schedule, mixture):
    small = mi.linear_schedule(T=50, beta_start=1e-3, beta_end=0.3)
    fn = mi.exact_eps_fn(mixture, small)
    r = mi.sample(fn, 37, 1, small, gen(0), window=10, chunk_size=16)
    assert r.x0.shape == (37, 1) and r.x0_hat.shape == (10, 37, 1)
    assert r.timesteps == tuple(range(9, -1, -1))
    torch.testing.assert_close(r.x0_hat[-1], r.x0)           # t = 0 returns x0_hat itself
    again = mi.sample(fn, 37, 1, small, gen(0), window=10, chunk_size=16)
    assert torch.equal(r.x0, again.x0) and torch.equal(r.x0_hat, again.x0_hat)
    other = mi.sample(fn, 37, 1, small, gen(1), chunk_size=16)
    assert not torch.equal(r.x0, other.x0) and other.x0_hat is None
    chunked = mi.sample(fn, 37, 1, small, gen(0), window=10, chunk_size=5)   # chunking changes nothing
    torch.testing.assert_close(chunked.x0, r.x0)
    torch.testing.assert_close(chunked.x0_hat, r.x0_hat)
    full = mi.sample(fn, 5, 1, small, gen(0), window=small.T)
    assert full.x0_hat.shape == (50, 5, 1) and full.timesteps[0] == 49


def test_the_default_chunk_follows_the_thread_count():
    from mode_interp.diffusion import CHUNK_SIZE, CHUNK_SIZE_ONE_THREAD, default_chunk_size
    threads = torch.get_num_threads()
    seen = []
    fn = lambda x, t: (seen.append(len(x)), 0.1 * x)[1]  # noqa: E731
    try:
        for n_threads, expected in ((1, CHUNK_SIZE_ONE_THREAD), (2, CHUNK_SIZE)):
            torch.set_num_threads(n_threads)
            seen.clear()
            mi.sample(fn, 3000, 1, mi.linear_schedule(T=2), gen(0))
            assert default_chunk_size() == expected and max(seen) == expected
    finally:
        torch.set_num_threads(threads)


def test_keep_x_t_records_the_states_an_observer_sees(mixture):
    small = mi.linear_schedule(T=30, beta_start=1e-3, beta_end=0.3)
    fn = mi.exact_eps_fn(mixture, small)
    seen = {}
    kept = mi.sample(fn, 9, 1, small, gen(3), window=5, keep_x_t=True,
                     observer=lambda t, x_t, x0_hat: seen.__setitem__(t, x_t.clone()))
    assert kept.x_t.shape == (5, 9, 1) and kept.seconds > 0 and not kept.from_cache
    for i, t in enumerate(kept.timesteps):                    # row i: the input of step timesteps[i]
        assert torch.equal(kept.x_t[i], seen[t])
    plain = mi.sample(fn, 9, 1, small, gen(3), window=5)
    assert plain.x_t is None and torch.equal(plain.x0, kept.x0) and torch.equal(plain.x0_hat, kept.x0_hat)
    with pytest.raises(ValueError, match="keep_x_t"):
        mi.sample(fn, 9, 1, small, gen(3), keep_x_t=True)
    with pytest.raises(ValueError, match="keep_x_t"):
        mi.sample(fn, 9, 1, small, gen(3), window=5, keep_x_t="yes")


def test_window_matches_full_trajectory(mixture):
    small = mi.linear_schedule(T=40, beta_start=1e-3, beta_end=0.3)
    fn = mi.exact_eps_fn(mixture, small)
    full = mi.sample(fn, 8, 1, small, gen(7), window=40)
    last = mi.sample(fn, 8, 1, small, gen(7), window=6)
    torch.testing.assert_close(last.x0_hat, full.x0_hat[-6:])


def test_exact_sampler_mode_width_matches_prediction():
    # A short chain (T = 200) keeps this fast; the prediction is exact for a single Gaussian.
    s = mi.linear_schedule(T=200, beta_start=1e-3, beta_end=0.2)
    m = mi.mixture_1d((0.0,), 0.1)
    for variance in ("fixed_large", "fixed_small"):
        x = mi.sample(mi.exact_eps_fn(m, s), 40_000, 1, s, gen(0), variance=variance, chunk_size=40_000).x0
        assert x.std().item() == pytest.approx(mi.exact_chain_mode_std(s, 0.1, variance), rel=0.02)
        assert abs(x.mean().item()) < 0.01


@pytest.mark.parametrize("call, name", [
    (lambda s: mi.q_sample(torch.zeros(3), 0, torch.zeros(3), s), "x0"),
    (lambda s: mi.q_sample(torch.zeros(3, 1), 0, torch.zeros(2, 1), s), "eps"),
    (lambda s: mi.q_sample(torch.zeros(3, 1), 1000, torch.zeros(3, 1), s), "t"),
    (lambda s: mi.x0_from_eps(torch.zeros(3, 1), 5, torch.zeros(3, 2), s), "eps"),
    (lambda s: mi.posterior_step_mean(torch.zeros(3, 1), 5, torch.zeros(2, 1), s), "eps"),
    (lambda s: mi.posterior_step_mean(torch.zeros(3, 1), 1000, torch.zeros(3, 1), s), "t"),
    (lambda s: mi.reverse_step(torch.zeros(3, 1), torch.tensor([1, 2, 3]), torch.zeros(3, 1), s, gen()), "t"),
    (lambda s: mi.reverse_step(torch.zeros(3, 1), 1, torch.zeros(3, 2), s, gen()), "eps_hat"),
    (lambda s: mi.reverse_step(torch.zeros(3, 1), 1, torch.zeros(3, 1), s, gen(), "learned"), "variance"),
    (lambda s: mi.eps_mse_loss(lambda x, t: x, torch.zeros(3, 1), s, None), "generator"),
    (lambda s: mi.sample(lambda x, t: x, 0, 1, s, gen()), "n"),
    (lambda s: mi.sample(lambda x, t: x, 3, 0, s, gen()), "dim"),
    (lambda s: mi.sample(lambda x, t: x, 3, 1, s, gen(), window=1001), "window"),
    (lambda s: mi.sample(lambda x, t: x, 3, 1, s, gen(), chunk_size=0), "chunk_size"),
    (lambda s: mi.sample(lambda x, t: x, 3, 1, s, gen(), variance="x"), "variance"),
    (lambda s: mi.sample(lambda x, t: x, 3, 1, s, gen(), dtype=torch.int64), "dtype"),
    (lambda s: mi.sample(lambda x, t: x, 3, 1, s, 123), "generator"),
])
def test_bad_input(schedule, call, name):
    with pytest.raises(ValueError, match=name):
        call(schedule)
