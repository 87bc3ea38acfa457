import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from mode_interp import smoothing


def optimal_model(mixture, schedule):
    """A stand-in network whose eps is the optimum: every learned quantity must equal the optimal one."""
    return lambda x_t, t: mi.optimal_eps(x_t.double(), t, mixture, schedule)


@pytest.mark.parametrize("t", [0, 9, 49])
def test_implied_responsibility_of_the_optimum_is_the_responsibility(mixture, schedule, t):
    sab = math.sqrt(schedule.alpha_bar[t])
    x_t = torch.linspace(0.9 * sab, 2.1 * sab, 501, dtype=torch.float64)[:, None]
    d = mi.posterior_mean(x_t, t, mixture, schedule)
    r = smoothing.implied_responsibility(d, x_t, t, 1.0, 2.0, mixture.sigma, schedule)
    resp = mi.responsibilities(x_t, t, mixture, schedule)
    expected = resp[:, 1] + 2 * resp[:, 2]          # (m - 1) / (2 - 1) with m = sum r_k mu_k
    assert torch.allclose(r[:, 0], expected, atol=1e-6)


def test_ramp_width_of_a_logistic():
    x = np.linspace(-5, 5, 100_001)
    assert smoothing.ramp_width(x, 1 / (1 + np.exp(-2 * x))) == pytest.approx(math.log(9), abs=1e-3)
    assert math.isnan(smoothing.ramp_width(x, np.zeros_like(x)))
    with pytest.raises(ValueError, match="q"):
        smoothing.ramp_width(x, x, q=0.3)


def test_learned_width_of_the_optimum_matches_the_formula(mixture, schedule):
    ts = [0, 4, 9, 19]
    w = smoothing.learned_transition_width(optimal_model(mixture, schedule), mixture, schedule, ts)
    spacing = 1.0 / 20_000                     # the default grid between the modes: widths are exact to ~2 cells
    assert np.allclose(w, mi.transition_width(schedule, 1.0, mixture.sigma)[ts], rtol=1e-3, atol=2.2 * spacing)


def test_denoiser_curves_shapes_and_tweedie(mixture, schedule):
    c = smoothing.denoiser_curves(optimal_model(mixture, schedule), mixture, schedule, [0, 9], n_points=101)
    for q in ("eps", "score", "x0_hat"):
        assert c[q]["learned"].shape == (2, 101)
        assert np.allclose(c[q]["learned"], c[q]["optimal"], rtol=1e-5, atol=1e-4)   # float32 network input
    x_t = torch.as_tensor(c["u"])[:, None] * math.sqrt(schedule.alpha_bar[9])
    assert np.allclose(c["x0_hat"]["optimal"][1], mi.posterior_mean(x_t, 9, mixture, schedule)[:, 0], atol=1e-9)
    assert np.allclose(c["score"]["optimal"][1], mi.score(x_t, 9, mixture, schedule)[:, 0], rtol=1e-6, atol=1e-6)


def test_smoothing_bad_input(schedule):
    grid = mi.grid_25()
    model = lambda x, t: x  # noqa: E731
    with pytest.raises(ValueError, match="1-D"):
        smoothing.denoiser_curves(model, grid, schedule, [0])
    with pytest.raises(ValueError, match="1-D"):
        smoothing.learned_transition_width(model, grid, schedule, [0])
    with pytest.raises(ValueError, match="ts"):
        smoothing.denoiser_curves(model, mi.mixture_1d(), schedule, [1000])


@pytest.mark.parametrize("data", ["mixture_1d", "grid_25"])
def test_mode_contraction_of_the_optimum_is_the_exact_slope(schedule, data):
    mixture = mi.mixture_1d((1.0, 2.0, 3.0), 0.05) if data == "mixture_1d" else mi.grid_25(0.05)
    r = smoothing.mode_contraction(optimal_model(mixture, schedule), mixture, schedule, [0, 3, 10])
    ab = schedule.alpha_bar[[0, 3, 10]]
    exact = np.sqrt(ab) * mixture.sigma ** 2 / (ab * mixture.sigma ** 2 + 1 - ab)
    assert np.allclose(r["exact_slope"], exact)
    assert r["slope"].shape == r["error"].shape == (3, mixture.n_modes)
    assert np.allclose(r["slope"], exact[:, None], rtol=0.05, atol=2e-3)    # float32 network input
    assert r["error"].max() < 0.05


def test_mode_contraction_flags_a_denoiser_that_only_sees_the_direction(schedule):
    """A denoiser that reads x_t only through x_t / |x_t| (as LN(W_in x_t) does) cannot hold a mode at 0."""
    grid = mi.grid_25(0.05)

    def direction_only(x_t, t):                 # x0_hat = 0.1 * x_t / |x_t|, written as an eps
        ab = schedule.alpha_bar[t]
        x = x_t.double()
        x0 = 0.1 * x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)

    r = smoothing.mode_contraction(direction_only, grid, schedule, [0])
    centre = int(np.argmin(np.linalg.norm(grid.means, axis=1)))
    assert r["slope"][0, centre] > 100 * r["exact_slope"][0]
    with pytest.raises(ValueError, match="h"):
        smoothing.mode_contraction(direction_only, grid, schedule, [0], h=0.0)
    with pytest.raises(ValueError, match="ts"):
        smoothing.mode_contraction(direction_only, grid, schedule, [])


@pytest.mark.parametrize("t", [0, 5, 10, 20])
def test_boundary_lipschitz_of_the_optimum_is_its_boundary_slope(schedule, t):
    """A stand-in network equal to the optimum (eps in float64, so autograd sees the exact function) is as
    steep as the formula at the boundary, and its slope by autograd matches central differences."""
    mixture = mi.mixture_1d((1.0, 2.0, 3.0), 0.05)
    model = lambda x_t, t: mi.optimal_eps(x_t.double(), t, mixture, schedule).to(x_t.dtype)   # noqa: E731
    r = smoothing.boundary_lipschitz(model, mixture, schedule, [t], n_grid=20_001)
    assert r["gaps"] == [[1.0, 2.0], [2.0, 3.0]] and r["ts"] == [t]
    exact = smoothing.optimal_boundary_slope(schedule, 1.0, 0.05, t)
    assert np.allclose(r["optimal"], exact)
    assert np.allclose(r["learned"], exact, rtol=2e-3)          # the grid's maximum sits at the boundary
    sab = math.sqrt(schedule.alpha_bar[t])
    x = torch.tensor([[1.3 * sab], [1.5 * sab]], dtype=torch.float64)
    h = 1e-4 * sab
    fd = (mi.posterior_mean(x + h, t, mixture, schedule) - mi.posterior_mean(x - h, t, mixture, schedule)) / (2 * h)
    assert torch.allclose(smoothing.network_x0_slope(model, x, t, schedule), fd, rtol=1e-3)


def test_optimal_boundary_slope_is_the_two_mode_formula(schedule):
    """Between two modes far from the others, the slope of D* where r = 1/2 is sqrt(ab)/v (sigma^2 +
    (1 - ab) gap^2 / (4 v)); with unequal weights the same value is reached at the shifted boundary."""
    mixture = mi.mixture_1d((1.0, 2.0), 0.05, (0.8, 0.2))
    t = 10
    ab = float(schedule.alpha_bar[t])
    xs = torch.linspace(1.0, 2.0, 200_001, dtype=torch.float64)[:, None] * math.sqrt(ab)
    d = mi.posterior_mean(xs, t, mixture, schedule)[:, 0]
    slope = torch.diff(d) / torch.diff(xs[:, 0])
    assert float(slope.max()) == pytest.approx(smoothing.optimal_boundary_slope(schedule, 1.0, 0.05, t), rel=1e-3)


def test_boundary_lipschitz_bad_input(schedule):
    model = lambda x, t: x  # noqa: E731
    with pytest.raises(ValueError, match="1-D"):
        smoothing.boundary_lipschitz(model, mi.grid_25(), schedule, [0])
    with pytest.raises(ValueError, match="ts"):
        smoothing.boundary_lipschitz(model, mi.mixture_1d(), schedule, [1000])
    with pytest.raises(ValueError, match="n_grid"):
        smoothing.boundary_lipschitz(model, mi.mixture_1d(), schedule, [0], n_grid=2)
    with pytest.raises(TypeError, match="model"):
        smoothing.network_x0_slope(None, torch.zeros(3, 1), 0, schedule)
    with pytest.raises(ValueError, match="gap"):
        smoothing.optimal_boundary_slope(schedule, 0.0, 0.05, 0)
