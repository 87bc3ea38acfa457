"""The closed-form optimal denoiser of a Gaussian mixture under the forward process.

For p(x0) = sum_k w_k N(mu_k, sigma^2 I) and x_t = sqrt(ab) x0 + sqrt(1 - ab) eps (ab = alpha_bar_t):

    x_t | k   ~ N( sqrt(ab) mu_k, v_t I ),            v_t = ab sigma^2 + 1 - ab
    r_k(x_t)  = softmax_k( log w_k - ||x_t - sqrt(ab) mu_k||^2 / (2 v_t) )      (responsibilities)
    E[x0 | x_t] = (sqrt(ab) sigma^2 / v_t) x_t + ((1 - ab) / v_t) sum_k r_k mu_k   (posterior mean)
    score     = grad log p_t(x_t) = -(x_t - sqrt(ab) sum_k r_k mu_k) / v_t
    eps*      = -sqrt(1 - ab) score           (the eps-prediction that minimises the DDPM loss)

All three are computed in float64 with a log-sum-exp softmax, so they stay exact at t = 0, where
v_t is ~0.0035 and the responsibilities are a hard step between modes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._validate import check_array, check_callable, check_float, check_generator, check_int, check_ints, check_points
from .data import GaussianMixture, check_mixture
from .diffusion import q_sample
from .schedule import Schedule, check_schedule


def _terms(x_t: torch.Tensor, t, mixture: GaussianMixture, schedule: Schedule):
    """Return (x_t in float64, sqrt(ab), v_t, r, m_bar = sum_k r_k mu_k), broadcastable to (n, d)."""
    x = check_points("x_t", x_t, check_mixture(mixture).dim).to(torch.float64)
    ab = check_schedule(schedule).at("alpha_bar", t, x)
    ab = torch.as_tensor(ab, dtype=torch.float64).reshape(-1, 1) if isinstance(ab, torch.Tensor) \
        else torch.tensor([[ab]], dtype=torch.float64)                      # (n or 1, 1)
    sab = ab.sqrt()
    v = ab * mixture.sigma ** 2 + 1.0 - ab
    means = torch.as_tensor(mixture.means, device=x.device)                    # (K, d)
    diff = x[:, None, :] - sab[:, :, None] * means[None]                       # (n, K, d)
    logits = torch.log(torch.as_tensor(mixture.weights, device=x.device)) \
        - (diff ** 2).sum(-1) / (2 * v)                                        # (n, K)
    r = torch.softmax(logits, dim=1)
    return x, sab, v, r, r @ means


def responsibilities(x_t: torch.Tensor, t, mixture: GaussianMixture, schedule: Schedule) -> torch.Tensor:
    """r_k(x_t) = p(k | x_t), shape (n, K)."""
    return _terms(x_t, t, mixture, schedule)[3]


def posterior_mean(x_t: torch.Tensor, t, mixture: GaussianMixture, schedule: Schedule) -> torch.Tensor:
    """The optimal denoiser D*(x_t, t) = E[x0 | x_t] (module docstring), in x_t's dtype."""
    x, sab, v, _, m_bar = _terms(x_t, t, mixture, schedule)
    ab = sab ** 2
    return (sab * mixture.sigma ** 2 / v * x + (1.0 - ab) / v * m_bar).to(x_t.dtype)


def score(x_t: torch.Tensor, t, mixture: GaussianMixture, schedule: Schedule) -> torch.Tensor:
    """grad_x log p_t(x_t) = -(x_t - sqrt(ab) sum_k r_k mu_k) / v_t, in x_t's dtype."""
    x, sab, v, _, m_bar = _terms(x_t, t, mixture, schedule)
    return (-(x - sab * m_bar) / v).to(x_t.dtype)


def optimal_eps(x_t: torch.Tensor, t, mixture: GaussianMixture, schedule: Schedule) -> torch.Tensor:
    """eps*(x_t, t) = -sqrt(1 - ab) score = E[eps | x_t], the minimiser of the eps-MSE loss."""
    x, sab, v, _, m_bar = _terms(x_t, t, mixture, schedule)
    return ((1.0 - sab ** 2).sqrt() * (x - sab * m_bar) / v).to(x_t.dtype)


def exact_eps_fn(mixture: GaussianMixture, schedule: Schedule):
    """An eps function for :func:`mode_interp.diffusion.sample` that uses the true score (the control)."""
    check_mixture(mixture)
    check_schedule(schedule)
    return lambda x_t, t: optimal_eps(x_t, t, mixture, schedule)


def transition_width(schedule: Schedule, gap: float, sigma: float, q: float = 0.9) -> np.ndarray:
    """Width, in x_t units, over which D* switches between two equal-weight modes ``gap`` apart.

    Between two modes the responsibility is a logistic function of x_t with slope
    sqrt(ab) gap / v_t, so the q-to-(1-q) transition (default 10%-90%) has width
        w_t = 2 log(q / (1 - q)) v_t / (sqrt(ab) gap),        for every t = 0 .. T-1.
    """
    gap = check_float("gap", gap, 0.0, None, lo_open=True)
    sigma = check_float("sigma", sigma, 0.0, None, lo_open=True)
    q = check_float("q", q, 0.5, 1.0, lo_open=True, hi_open=True)
    ab = check_schedule(schedule).alpha_bar
    v = ab * sigma ** 2 + 1.0 - ab
    return 2.0 * math.log(q / (1.0 - q)) * v / (np.sqrt(ab) * gap)


def ramp_width(x: np.ndarray, r: np.ndarray, q: float = 0.9) -> float:
    """Distance in x between the first points where the running maximum of r reaches 1 - q and q.

    ``x`` strictly increasing, ``r`` of the same length; NaN when r never reaches q (no switch on the grid).
    """
    x = check_array("x", x, min_len=2)
    r = check_array("r", r, min_len=2)
    if r.shape != x.shape:
        raise ValueError(f"r must give one value per point of x ({len(x)}), got {len(r)}")
    if not np.all(np.diff(x) > 0):
        raise ValueError("x must be strictly increasing")
    q = check_float("q", q, 0.5, 1.0, lo_open=True, hi_open=True)
    env = np.maximum.accumulate(r)
    if env[-1] < q or env[0] >= 1 - q:
        return float("nan")
    return float(x[np.argmax(env >= q)] - x[np.argmax(env >= 1 - q)])


def measured_transition_width(mixture: GaussianMixture, schedule: Schedule, t: int, pair=(0, 1),
                              q: float = 0.9, n_grid: int = 200_001) -> float:
    """The 10%-90% width of r_{pair[1]}(x_t) between two neighbouring 1-D modes, read off the computed
    responsibilities on a grid (a numerical check of :func:`transition_width`)."""
    check_mixture(mixture, dim=1)
    t = check_schedule(schedule).check_t(t)
    q = check_float("q", q, 0.5, 1.0, lo_open=True, hi_open=True)
    pair = check_ints("pair", pair, 0, mixture.n_modes - 1)
    if len(pair) != 2 or pair[0] >= pair[1]:
        raise ValueError(f"pair must be two mode indices (i, j), i < j, in increasing order of the means, got {pair}")
    n_grid = check_int("n_grid", n_grid, 3, None)
    mu = np.sort(mixture.means[:, 0])[list(pair)]
    sab = math.sqrt(schedule.alpha_bar[t])
    x_t = torch.linspace(sab * mu[0], sab * mu[1], n_grid, dtype=torch.float64)[:, None]
    order = np.argsort(mixture.means[:, 0])
    r = responsibilities(x_t, t, mixture, schedule)[:, int(order[pair[1]])]
    return ramp_width(x_t[:, 0].numpy(), r.numpy(), q)


def posterior_mean_check(mixture: GaussianMixture, schedule: Schedule, t: int, generator: torch.Generator,
                         n: int = 400_000, denoiser=None, bin_width: float = 0.01, min_count: int = 500):
    """Monte-Carlo test that ``denoiser`` (default: :func:`posterior_mean`) is E[x0 | x_t] for 1-D data.

    Draws x0 from the mixture, noises it to t, bins x_t, and in each bin with >= ``min_count`` draws forms
    z = mean(x0 - D(x_t)) / its standard error. Returns ``(mean z^2, number of bins)``: about 1 when D is
    the posterior mean; compare with 1 + 5 sqrt(2 / bins), five standard deviations of chi2_B / B.
    """
    check_mixture(mixture, dim=1)
    t = check_schedule(schedule).check_t(t)
    check_generator("generator", generator)
    n = check_int("n", n, 1, None)
    bin_width = check_float("bin_width", bin_width, 0.0, None, lo_open=True)
    min_count = check_int("min_count", min_count, 2, None)
    if denoiser is not None:
        check_callable("denoiser", denoiser)
    denoiser = denoiser or (lambda x: posterior_mean(x, t, mixture, schedule))
    x0 = mixture.sample(n, generator).double()
    x_t = q_sample(x0, t, torch.randn(x0.shape, generator=generator, dtype=torch.float64), schedule)
    resid = (x0 - denoiser(x_t))[:, 0]
    _, inverse, counts = torch.unique(torch.floor(x_t[:, 0] / bin_width).long(), return_inverse=True,
                                      return_counts=True)
    s1 = torch.zeros(counts.numel(), dtype=torch.float64).index_add_(0, inverse, resid)
    s2 = torch.zeros_like(s1).index_add_(0, inverse, resid ** 2)
    mean = s1 / counts
    z2 = mean ** 2 / ((s2 / counts - mean ** 2).clamp_min(1e-300) / counts)
    keep = counts >= min_count
    if not bool(keep.any()):
        raise ValueError(f"no bin of width {bin_width} holds min_count={min_count} draws (the fullest holds "
                         f"{int(counts.max())} of n={n}): lower min_count or raise n or bin_width")
    return float(z2[keep].mean()), int(keep.sum())


def step_profile(schedule: Schedule, gap: float, sigma: float) -> dict:
    """How step-like D* is between two equal-weight modes ``gap`` apart, for every t (arrays of length T).

    ``width``: 10%-90% transition width in x_t units (:func:`transition_width`);
    ``jump``: the change of D* across the boundary, (1 - ab) gap / v_t (the rest of D* follows x_t);
    ``slope``: dD*/dx_t at the midpoint, sqrt(ab) sigma^2 / v_t + (1 - ab) sqrt(ab) gap^2 / (4 v_t^2),
    i.e. the Lipschitz constant any network must reach to represent D* there;
    ``eps_jump``: the change of eps* across the boundary, sqrt(ab (1 - ab)) gap / v_t.
    """
    width = transition_width(schedule, gap, sigma)
    ab = schedule.alpha_bar
    v = ab * sigma ** 2 + 1.0 - ab
    return {
        "width": width,
        "jump": (1.0 - ab) * gap / v,
        "slope": np.sqrt(ab) * sigma ** 2 / v + (1.0 - ab) * np.sqrt(ab) * gap ** 2 / (4 * v ** 2),
        "eps_jump": np.sqrt(ab * (1.0 - ab)) * gap / v,
    }


def exact_chain_mode_std(schedule: Schedule, sigma: float, variance: str = "fixed_large") -> float:
    """Std of each mode in the output of the exact-score ancestral chain (not sigma!).

    For one Gaussian N(mu, sigma^2) the optimal eps is affine in x_t, so each reverse step is
    x_{t-1} = a_t x_t + const + sigma_t z with a_t = coef1_t sqrt(ab_t) sigma^2 / v_t + coef2_t, and
        Var_{t-1} = a_t^2 Var_t + sigma_t^2   (sigma_0 = 0),    from Var_T = 1.
    The discrete chain is not the exact time reversal: with the paper's ``fixed_large`` variance the
    modes come out narrower than sigma (0.0471 for sigma = 0.05, T = 1000), with ``fixed_small`` narrower
    still (0.0386). Near each mode of a well-separated mixture the responsibilities are saturated over
    the steps that set this width, so the same number predicts every mode's width.
    """
    sigma = check_float("sigma", sigma, 0.0, None, lo_open=True)
    ab = check_schedule(schedule).alpha_bar
    v = ab * sigma ** 2 + 1.0 - ab
    a = schedule.posterior_mean_coef1 * np.sqrt(ab) * sigma ** 2 / v + schedule.posterior_mean_coef2
    noise = schedule.reverse_variance(variance).copy()
    noise[0] = 0.0
    var = 1.0
    for t in range(schedule.T - 1, -1, -1):
        var = a[t] ** 2 * var + noise[t]
    return math.sqrt(var)
