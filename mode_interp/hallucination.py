"""Which samples of a Gaussian mixture are hallucinations, and how often the true mixture makes them.

Label (the paper's 1-D and 2-D experiments; the paper's own rule was not recovered): a point is *hallucinated* when
its Euclidean distance to the nearest mode exceeds k sigma. The default k = 5 is chosen so that the true
mixture itself almost never crosses the line (1-D: erfc(5/sqrt 2) = 5.7e-7; 2-D: exp(-12.5) = 3.7e-6),
while a point halfway between two modes (20 sigma from each in 1-D, 20 sigma in 2-D too) is far beyond
it. At k = 3 the true mixture already puts 0.27% (1-D) and 1.1% (2-D) of its mass beyond the line.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._validate import check_float, check_int, check_points
from .data import GaussianMixture, check_mixture


def nearest_mode_distance(x: torch.Tensor, mixture: GaussianMixture) -> torch.Tensor:
    """min_k ||x - mu_k||, shape (n,), in float64."""
    x = check_points("x", x, check_mixture(mixture).dim, min_rows=0).to(torch.float64)
    return torch.cdist(x, torch.as_tensor(mixture.means)).min(dim=1).values


def is_hallucinated(x: torch.Tensor, mixture: GaussianMixture, k: float = 5.0) -> torch.Tensor:
    """Boolean (n,): nearest-mode distance > k sigma."""
    k = check_float("k", k, 0.0, None, lo_open=True)
    return nearest_mode_distance(x, mixture) > k * mixture.sigma


def chi_tail(k: float, dim: int) -> float:
    """P(||z|| > k) for z ~ N(0, I_dim): the regularised upper incomplete gamma Q(dim/2, k^2/2).

    Closed forms: even dim, exp(-y) sum_{j < dim/2} y^j / j!; odd dim, erfc(sqrt y) plus
    exp(-y) sum_{j=1}^{(dim-1)/2} y^(j-1/2) / Gamma(j + 1/2), with y = k^2 / 2. Each term is summed in
    log space (log y^j / j! - y, a log-sum-exp), so neither a large dim (an image-sized mixture) nor a
    large k overflows: the result is a probability in [0, 1] for every k >= 0 and dim >= 1.
    """
    k = check_float("k", k, 0.0, None)
    dim = check_int("dim", dim, 1, 10_000_000)
    if k == 0.0:
        return 1.0
    log_y = 2.0 * math.log(k) - math.log(2.0)
    y = math.exp(log_y) if log_y < 700 else math.inf
    if dim % 2 == 0:
        logs = [j * log_y - math.lgamma(j + 1.0) for j in range(dim // 2)]
        head = 0.0
    else:
        logs = [(j - 0.5) * log_y - math.lgamma(j + 0.5) for j in range(1, (dim - 1) // 2 + 1)]
        head = math.erfc(math.sqrt(y)) if math.isfinite(y) else 0.0
    if not logs or not math.isfinite(y):
        return min(1.0, head)
    top = max(logs)
    log_sum = top + math.log(math.fsum(math.exp(v - top) for v in logs))
    return min(1.0, max(0.0, head + math.exp(log_sum - y) if log_sum - y > -745 else head))


def true_hallucination_rate(mixture: GaussianMixture, k: float = 5.0) -> float:
    """P_{x ~ mixture}(nearest-mode distance > k sigma).

    Exact in 1-D (Gaussian mass outside the union of the intervals [mu_j - k sigma, mu_j + k sigma]).
    In d > 1, the tail of each point's own component, chi_tail(k, d): an upper bound on the exact rate
    that is tight when modes are many sigma apart (all the paper's mixtures).
    """
    k = check_float("k", k, 0.0, None, lo_open=True)
    if check_mixture(mixture).dim > 1:
        return chi_tail(k, mixture.dim)
    mus = np.sort(mixture.means[:, 0])
    half = k * mixture.sigma
    intervals = []                                   # merge overlapping windows around the modes
    for mu in mus:
        if intervals and mu - half <= intervals[-1][1]:
            intervals[-1][1] = mu + half
        else:
            intervals.append([mu - half, mu + half])
    # Sum the Gaussian mass of each gap between windows (and of the two outer tails) directly rather
    # than 1 - inside, which would lose all precision for rates ~1e-7. Every gap lies entirely on one
    # side of every mode, so each piece is a difference of two tails of the same sign: no cancellation.
    tail = lambda z: 0.5 * math.erfc(z / math.sqrt(2))  # noqa: E731  P(Z > z)
    edges = [-math.inf] + [e for iv in intervals for e in iv] + [math.inf]
    outside = 0.0
    for a, b in zip(edges[0::2], edges[1::2]):
        for mu, w in zip(mixture.means[:, 0], mixture.weights):
            lo, hi = (a - mu) / mixture.sigma, (b - mu) / mixture.sigma
            outside += w * (tail(-hi) - tail(-lo) if hi <= 0 else tail(lo) - tail(hi))
    return float(outside)
