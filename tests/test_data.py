import numpy as np
import pytest
import torch

import mode_interp as mi
from conftest import gen


def test_mixture_1d_defaults():
    m = mi.mixture_1d()
    assert m.dim == 1 and m.n_modes == 3 and m.sigma == 0.05
    np.testing.assert_array_equal(m.means[:, 0], [1, 2, 3])


def test_round_robin_balance_and_seeding():
    m = mi.mixture_1d((1, 2, 4, 5))
    x, labels = m.sample(1002, gen(1), return_labels=True)
    assert x.shape == (1002, 1) and x.dtype == torch.float32
    assert torch.equal(labels, torch.arange(1002) % 4)
    assert torch.equal(x, m.sample(1002, gen(1)))
    assert not torch.equal(x, m.sample(1002, gen(2)))
    resid = (x[:, 0].double() - torch.as_tensor(m.means[:, 0])[labels])
    assert resid.std().item() == pytest.approx(0.05, rel=0.1)


def test_unequal_weights():
    m = mi.mixture_1d((0.0, 10.0), 0.1, weights=(3, 1))
    np.testing.assert_allclose(m.weights, [0.75, 0.25])
    x = m.sample(20_000, gen(0))
    assert (x[:, 0] > 5).float().mean().item() == pytest.approx(0.25, abs=0.015)


def test_grid_25_constants():
    g = mi.grid_25()
    assert g.means.shape == (25, 2)
    assert g.sigma == pytest.approx(0.05 / np.sqrt(0.05 ** 2 + 8))
    assert g.sigma == pytest.approx(0.0177, abs=1e-4)
    d = np.linalg.norm(g.means[:, None] - g.means[None], axis=-1)
    nearest = np.sort(d, axis=1)[:, 1]
    np.testing.assert_allclose(nearest, 2 / mi.data.GRID_SCALE)
    assert nearest[0] == pytest.approx(0.707, abs=1e-3)
    assert np.abs(g.means).max() == pytest.approx(1.414, abs=1e-3)


def test_grid_9_is_the_centre_of_grid_25():
    g9, g25 = mi.grid_9(), mi.grid_25()
    assert g9.means.shape == (9, 2) and g9.sigma == g25.sigma
    inner = np.abs(g25.means).max(axis=1) < 1.0                    # the 25-grid's centre 3 x 3
    np.testing.assert_allclose(g9.means, g25.means[inner])
    assert np.allclose(g9.means[4], 0.0)                           # mode 4 sits at the origin
    w = [1 / 16] * 4 + [0.5] + [1 / 16] * 4
    assert mi.data.grid_9(weights=w).weights[4] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="weights"):
        mi.data.grid_9(weights=[1.0] * 8)


def test_rotated_grid_nearest_neighbours_on_diagonals():
    r = mi.rotated_grid_25()
    d = np.linalg.norm(r.means[:, None] - r.means[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert d.min() == pytest.approx(0.5, abs=1e-3)
    i, j = np.nonzero(np.isclose(d, d.min()))
    delta = np.abs(r.means[i] - r.means[j])
    np.testing.assert_allclose(delta[:, 0], delta[:, 1])        # all nearest pairs are diagonal
    # axis-aligned neighbours exist and are 0.707 apart
    axis = np.isclose(r.means[:, None, 1], r.means[None, :, 1]) & ~np.eye(25, dtype=bool)
    assert d[axis].min() == pytest.approx(0.707, abs=1e-3)


def test_origin_mode_is_the_lattice_centre():
    from mode_interp.data import origin_mode
    for mixture in (mi.grid_25(), mi.rotated_grid_25()):
        assert mixture.origin_mode == 12
        np.testing.assert_allclose(mixture.means[mixture.origin_mode], 0.0, atol=1e-12)
    assert mi.mixture_1d((1, 2, 3)).origin_mode == 0
    assert origin_mode([[3.0], [-0.5], [1.0]]) == 1
    with pytest.raises(ValueError, match="means is empty"):
        origin_mode([])


def test_log_prob_normalised():
    m = mi.mixture_1d((1, 2, 3), 0.05)
    x = torch.linspace(0, 4, 400_001, dtype=torch.float64)[:, None]
    integral = torch.trapezoid(m.log_prob(x).exp(), x[:, 0]).item()
    assert integral == pytest.approx(1.0, abs=1e-6)
    g = mi.grid_25()
    assert g.log_prob(torch.tensor(g.means[:1])).item() == pytest.approx(
        np.log(1 / 25) - np.log(2 * np.pi * g.sigma ** 2), rel=1e-9)


@pytest.mark.parametrize("call, name", [
    (lambda: mi.mixture_1d(()), "means"),
    (lambda: mi.mixture_1d(sigma=0), "sigma"),
    (lambda: mi.mixture_1d(sigma=-1), "sigma"),
    (lambda: mi.mixture_1d(weights=(1, 1)), "weights"),
    (lambda: mi.mixture_1d(weights=(1, -1, 1)), "weights"),
    (lambda: mi.GaussianMixture(np.zeros((2, 2, 2)), 0.1), "means"),
    (lambda: mi.grid_25(sigma=0), "sigma"),
    (lambda: mi.grid_25(spacing=-2), "spacing"),
    (lambda: mi.rotated_grid_25(sigma=float("inf")), "sigma"),
    (lambda: mi.rotated_grid_25(spacing=0), "spacing"),
    (lambda: mi.mixture_1d().sample(0, gen()), "n"),
    (lambda: mi.mixture_1d().sample(10, 0), "generator"),
    (lambda: mi.mixture_1d().log_prob(torch.zeros(3, 2)), "x"),
    (lambda: mi.mixture_1d().log_prob(torch.zeros(3)), "x"),
    (lambda: mi.mixture_1d().log_prob(torch.tensor([[float("nan")]])), "x"),
    (lambda: mi.mixture_1d().log_prob(torch.zeros(3, 1, dtype=torch.long)), "x"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_toy_dataset_registry():
    from mode_interp.data import TOY_DATASETS, toy_dataset
    from mode_interp.train import DATASETS, ToyConfig
    assert DATASETS == tuple(TOY_DATASETS)
    c = ToyConfig(data="grid_25", n_train=50)
    assert toy_dataset("grid_25").get_dim(c) == 2 and c.training_data().shape == (50, 2)
    assert torch.equal(c.training_data(), c.mixture().sample(50, torch.Generator().manual_seed(c.data_seed)))
    d = ToyConfig(data="digits_pca", n_train=10, latent_dim=8)
    assert d.dim == 8 and d.training_data().shape == (10, 8)
    with pytest.raises(ValueError, match="not a Gaussian mixture"):
        d.mixture()
    with pytest.raises(ValueError, match=r"name \(a toy data set, ToyConfig.data\) must be one of"):
        toy_dataset("moons")
