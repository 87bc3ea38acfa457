"""Gaussian-mixture data sets of the paper (the paper's 1-D and 2-D experiments and its official code).

A mixture with K modes mu_k in R^d, one shared isotropic standard deviation sigma and weights w_k:
    p(x0) = sum_k w_k N(x0; mu_k, sigma^2 I).
All randomness comes from a passed ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import check_array, check_bool, check_float, check_generator, check_instance, check_int, check_points

#: The official code divides the 2-D grid by the per-axis std of the raw grid, sqrt(0.05^2 + 8).
GRID_SCALE = math.sqrt(0.05 ** 2 + 8.0)


def origin_mode(means) -> int:
    """The index of the mode nearest the origin among ``means`` (K, d): ``argmin_k ||mu_k||``."""
    means = np.asarray(means, dtype=float)
    if means.size == 0:
        raise ValueError("means is empty: origin_mode needs at least one mode")
    means = means.reshape(len(means), -1)
    return int(np.linalg.norm(means, axis=1).argmin())


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """sum_k w_k N(mu_k, sigma^2 I). ``means`` has shape (K, d); ``weights`` defaults to uniform."""

    means: np.ndarray
    sigma: float
    weights: np.ndarray | None = None

    def __post_init__(self):
        means = check_array("means", self.means, ndim=(1, 2))
        if means.ndim == 1:
            means = means[:, None]
        if means.shape[1] < 1:
            raise ValueError(f"means must have shape (K, d) with d >= 1, got shape {means.shape}")
        sigma = check_float("sigma", self.sigma, 0.0, None, lo_open=True)
        if self.weights is None:
            weights = np.full(means.shape[0], 1.0 / means.shape[0])
        else:
            weights = check_array("weights", self.weights)
            if weights.shape != (means.shape[0],) or np.any(weights < 0) or weights.sum() <= 0:
                raise ValueError(f"weights must be {means.shape[0]} non-negative numbers with a "
                                 f"positive sum, got {self.weights!r}")
            weights = weights / weights.max()          # first to the largest: a sum of huge weights can overflow
            weights = weights / weights.sum()
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "weights", weights)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def n_modes(self) -> int:
        return int(self.means.shape[0])

    @property
    def balanced(self) -> bool:
        return bool(np.allclose(self.weights, 1.0 / self.n_modes))

    @property
    def origin_mode(self) -> int:
        """The index of the mode nearest the origin, ``argmin_k ||mu_k||`` (on the paper's 2-D lattices, the
        centre mode: chapter 2, section 2.6)."""
        return origin_mode(self.means)

    def sample(self, n: int, generator: torch.Generator, return_labels: bool = False):
        """Draw n points (float32, shape (n, d)).

        Equal weights use the official code's exact round-robin assignment (sample i belongs to mode
        i mod K), so classes are exactly balanced; unequal weights draw components from ``weights``.
        """
        n = check_int("n", n, 1, None)
        check_generator("generator", generator)
        if self.balanced:
            labels = torch.arange(n) % self.n_modes
        else:
            labels = torch.multinomial(torch.as_tensor(self.weights), n, replacement=True,
                                       generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = (torch.as_tensor(self.means)[labels] + self.sigma * noise).to(torch.float32)
        return (x, labels) if return_labels else x

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) for points x of shape (n, d), computed in float64 with log-sum-exp."""
        x = check_points("x", x, self.dim).to(torch.float64)
        means = torch.as_tensor(self.means)
        d2 = torch.cdist(x, means) ** 2                                    # (n, K)
        log_norm = -0.5 * self.dim * math.log(2 * math.pi * self.sigma ** 2)
        return torch.logsumexp(torch.log(torch.as_tensor(self.weights)) - d2 / (2 * self.sigma ** 2),
                               dim=1) + log_norm


def mixture_1d(means=(1.0, 2.0, 3.0), sigma: float = 0.05, weights=None) -> GaussianMixture:
    """The paper's 1-D mixture: modes {1, 2, 3} (or e.g. {1, 2, 4, 5}), sigma 0.05, raw units."""
    means = check_array("means", means)
    return GaussianMixture(means[:, None], sigma, weights)


def _square_grid(half: int, sigma: float, spacing: float, normalise: bool, weights) -> GaussianMixture:
    """(2 half + 1)^2 modes at (spacing*i, spacing*j), i, j in -half..half, divided by GRID_SCALE when
    ``normalise``; mode k = (2 half + 1)(i + half) + (j + half) has weight ``weights[k]``."""
    sigma = check_float("sigma", sigma, 0.0, None, lo_open=True)
    spacing = check_float("spacing", spacing, 0.0, None, lo_open=True)
    normalise = check_bool("normalise", normalise)
    i, j = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1), indexing="ij")
    means = spacing * np.stack([i.ravel(), j.ravel()], axis=1).astype(np.float64)
    scale = GRID_SCALE if normalise else 1.0
    return GaussianMixture(means / scale, sigma / scale, weights)


def grid_25(sigma: float = 0.05, spacing: float = 2.0, normalise: bool = True, weights=None) -> GaussianMixture:
    """25 modes at (spacing*i, spacing*j), i, j in -2..2, divided by GRID_SCALE when ``normalise``.

    With the defaults the modes sit at multiples of 0.707 in [-1.414, 1.414]^2 and sigma = 0.0177. Mode
    k = 5 (i + 2) + (j + 2) has weight ``weights[k]`` (default: equal weights).
    """
    return _square_grid(2, sigma, spacing, normalise, weights)


def grid_9(sigma: float = 0.05, spacing: float = 2.0, normalise: bool = True, weights=None) -> GaussianMixture:
    """The centre 3 x 3 of :func:`grid_25`: 9 modes at (spacing*i, spacing*j), i, j in -1..1, on the same
    scale (GRID_SCALE), so spacing 0.707 and sigma 0.0177 as on the 25-grid. Mode k = 3 (i + 1) + (j + 1)
    has weight ``weights[k]``; k = 4 is the mode at the origin. Chapter 6's imbalanced 2-D grid: a small
    grid whose network converges in a few CPU minutes, where the 25-grid takes hours.
    """
    return _square_grid(1, sigma, spacing, normalise, weights)


def rotated_grid_25(sigma: float = 0.05, spacing: float = 2.0, normalise: bool = True,
                    weights=None) -> GaussianMixture:
    """The "diamond": the 25-point lattice turned 45 degrees, modes at spacing/2 * (i - j, i + j).

    It reuses GRID_SCALE, as the official code does, so nearest neighbours (along the diagonals) are
    0.5 apart after normalisation and axis-aligned neighbours 0.707 apart. ``weights`` as in :func:`grid_25`.
    """
    sigma = check_float("sigma", sigma, 0.0, None, lo_open=True)
    spacing = check_float("spacing", spacing, 0.0, None, lo_open=True)
    normalise = check_bool("normalise", normalise)
    i, j = np.meshgrid(np.arange(-2, 3), np.arange(-2, 3), indexing="ij")
    i, j = i.ravel(), j.ravel()
    means = spacing / 2 * np.stack([i - j, i + j], axis=1).astype(np.float64)
    scale = GRID_SCALE if normalise else 1.0
    return GaussianMixture(means / scale, sigma / scale, weights)


# ---------------------------------------------------------------- the toy data sets, by name

@dataclass(frozen=True)
class ToyDataSet:
    """A named data set a toy model can train on, built from a config's fields (``means``, ``sigma``,
    ``latent_dim``, ...): ``mixture(config)`` for Gaussian mixtures (None otherwise), ``dim(config)`` and
    ``points(config, n, seed)``, n training points drawn with a generator seeded by ``seed``."""

    name: str
    mixture: object = None          # config -> GaussianMixture, or None: not a mixture
    dim: object = None              # config -> int (default: the mixture's)
    points: object = None           # (config, n, seed) -> (n, dim) tensor (default: the mixture's samples)
    max_n: int | None = None        # the most points it holds (a finite data set)

    def get_mixture(self, config) -> GaussianMixture:
        if self.mixture is None:
            raise ValueError(f"data={self.name!r} is not a Gaussian mixture (it has no modes to label against)")
        return self.mixture(config)

    def get_dim(self, config) -> int:
        return self.dim(config) if self.dim is not None else self.get_mixture(config).dim

    def get_points(self, config, n: int, seed: int) -> torch.Tensor:
        if self.points is not None:
            return self.points(config, n, seed)
        return self.get_mixture(config).sample(n, torch.Generator().manual_seed(seed))


def _digit_codes(config, n: int, seed: int) -> torch.Tensor:
    """n codes of the shipped digits, chosen by a permutation seeded by ``seed`` (:mod:`mode_interp.digits`)."""
    from .digits import digits_pca

    codes = digits_pca(config.latent_dim).codes
    return codes[torch.randperm(len(codes), generator=torch.Generator().manual_seed(seed))[:n]]


TOY_DATASETS = {d.name: d for d in (
    ToyDataSet("mixture_1d", mixture=lambda c: mixture_1d(c.means, c.sigma, c.weights or None)),
    ToyDataSet("grid_25", mixture=lambda c: grid_25(sigma=c.sigma, weights=c.weights or None)),
    ToyDataSet("grid_9", mixture=lambda c: grid_9(sigma=c.sigma, weights=c.weights or None)),
    ToyDataSet("rotated_grid_25", mixture=lambda c: rotated_grid_25(sigma=c.sigma, weights=c.weights or None)),
    ToyDataSet("digits_pca", dim=lambda c: c.latent_dim, points=_digit_codes, max_n=10_000),
)}


def toy_dataset(name: str) -> ToyDataSet:
    """The registered toy data set ``name`` (one of :data:`TOY_DATASETS`)."""
    if not isinstance(name, str) or name not in TOY_DATASETS:
        raise ValueError(f"name (a toy data set, ToyConfig.data) must be one of {tuple(TOY_DATASETS)}, got {name!r}")
    return TOY_DATASETS[name]


def check_mixture(mixture, name: str = "mixture", dim: int | None = None) -> GaussianMixture:
    """``mixture`` if it is a :class:`GaussianMixture` (of dimension ``dim``, if given), else a clear error."""
    check_instance(name, mixture, GaussianMixture)
    if dim is not None and mixture.dim != dim:
        raise ValueError(f"{name} must be a {dim}-D mixture, got dim={mixture.dim}")
    return mixture
