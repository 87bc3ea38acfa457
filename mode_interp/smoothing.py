"""The learned denoiser beside the optimal one (paper §4, chapter 2): a smooth version of a step.

For a Gaussian mixture with shared sigma the optimal denoiser is (chapter 1, :mod:`mode_interp.optimal`)
    D*(x_t, t) = (sqrt(ab) sigma^2 x_t + (1 - ab) m(x_t)) / v_t,    v_t = ab sigma^2 + 1 - ab,
where m(x_t) = sum_k r_k(x_t) mu_k is the responsibility-weighted mean. Any denoiser D can be read the
same way: its *implied mean* m_D = (v_t D - sqrt(ab) sigma^2 x_t) / (1 - ab), and between two modes its
*implied responsibility* r_D = (m_D - mu_a) / (mu_b - mu_a). For D* this is exactly r_b, a logistic step;
for a network it is whatever ramp the network learned, and its 10%-90% width is directly comparable with
:func:`mode_interp.optimal.transition_width`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._validate import check_callable, check_float, check_int, check_ints, check_points
from .data import GaussianMixture, check_mixture
from .diffusion import x0_from_eps
from .optimal import optimal_eps, ramp_width
from .schedule import Schedule, check_schedule


def network_eps(model, x_t: torch.Tensor, t: int) -> torch.Tensor:
    """eps_theta(x_t, t) in float64, without gradients (the model runs in float32). ``t``: one timestep
    (an int >= 0) for the whole batch."""
    check_callable("model", model)
    x_t = check_points("x_t", x_t)
    t = check_int("t", t, 0, None)
    with torch.inference_mode():
        return model(x_t.to(torch.float32), t).double()


def denoiser_curves(model, mixture: GaussianMixture, schedule: Schedule, ts, margin: float = 0.5,
                    n_points: int = 801) -> dict:
    """eps, score and x0_hat of the network and of the optimum on a 1-D grid, for each t in ``ts``.

    The grid is u = x_t / sqrt(ab_t) (so the modes sit still as t changes). Returns arrays of shape
    (len(ts), n_points) under ``eps``/``score``/``x0_hat`` x ``learned``/``optimal`` (e.g.
    ``curves["x0_hat"]["learned"]``), plus ``u`` and ``ts``. Score = -eps / sqrt(1 - ab) (Tweedie).
    """
    check_mixture(mixture, dim=1)
    ts = [check_schedule(schedule).check_t(t, "ts") for t in check_ints("ts", ts, min_len=1)]
    margin = check_float("margin", margin, 0.0, None)
    n_points = check_int("n_points", n_points, 2, 10**7)
    u = torch.linspace(mixture.means.min() - margin, mixture.means.max() + margin, n_points,
                       dtype=torch.float64)[:, None]
    out = {q: {"learned": [], "optimal": []} for q in ("eps", "score", "x0_hat")}
    for t in ts:
        x_t = u * math.sqrt(schedule.alpha_bar[t])
        for name, eps in (("learned", network_eps(model, x_t, t)), ("optimal", optimal_eps(x_t, t, mixture, schedule))):
            out["eps"][name].append(eps[:, 0].numpy())
            out["score"][name].append(-eps[:, 0].numpy() / math.sqrt(1 - schedule.alpha_bar[t]))
            out["x0_hat"][name].append(x0_from_eps(x_t, t, eps, schedule)[:, 0].numpy())
    for q in out:
        out[q] = {k: np.stack(v) for k, v in out[q].items()}
    out["u"], out["ts"] = u[:, 0].numpy(), np.array(ts)
    return out


def implied_responsibility(x0_hat: torch.Tensor, x_t: torch.Tensor, t: int, mu_a: float, mu_b: float,
                           sigma: float, schedule: Schedule) -> torch.Tensor:
    """r_D = (m_D - mu_a) / (mu_b - mu_a), m_D = (v_t x0_hat - sqrt(ab) sigma^2 x_t) / (1 - ab)."""
    x0_hat = check_points("x0_hat", x0_hat, 1)
    x_t = check_points("x_t", x_t, 1)
    if x0_hat.shape != x_t.shape:
        raise ValueError(f"x0_hat and x_t must have the same shape, got {tuple(x0_hat.shape)} and {tuple(x_t.shape)}")
    mu_a, mu_b = check_float("mu_a", mu_a), check_float("mu_b", mu_b)
    if mu_a == mu_b:
        raise ValueError(f"mu_a and mu_b must differ, got {mu_a} twice")
    sigma = check_float("sigma", sigma, 0.0, None, lo_open=True)
    ab = float(check_schedule(schedule).alpha_bar[schedule.check_t(t)])
    v = ab * sigma ** 2 + 1 - ab
    m = (v * x0_hat.double() - math.sqrt(ab) * sigma ** 2 * x_t.double()) / (1 - ab)
    return (m - mu_a) / (mu_b - mu_a)


def learned_transition_width(model, mixture: GaussianMixture, schedule: Schedule, ts, pair=(0, 1),
                             q: float = 0.9, n_grid: int = 20_001) -> np.ndarray:
    """The 10%-90% width, in x_t units, of the network's implied responsibility between two
    neighbouring 1-D modes (sorted indices ``pair``), for each t in ``ts``; compare
    :func:`mode_interp.optimal.transition_width`."""
    check_mixture(mixture, dim=1)
    check_schedule(schedule)
    pair = check_ints("pair", pair, 0, mixture.n_modes - 1)
    if len(pair) != 2 or pair[0] >= pair[1]:
        raise ValueError(f"pair must be two sorted mode indices (i, j), i < j, got {pair}")
    n_grid = check_int("n_grid", n_grid, 3, None)
    mu_a, mu_b = np.sort(mixture.means[:, 0])[list(pair)]
    widths = []
    for t in check_ints("ts", ts, min_len=1):
        t = schedule.check_t(t, "ts")
        sab = math.sqrt(schedule.alpha_bar[t])
        x_t = torch.linspace(sab * mu_a, sab * mu_b, n_grid, dtype=torch.float64)[:, None]
        x0_hat = x0_from_eps(x_t, t, network_eps(model, x_t, t), schedule)
        r = implied_responsibility(x0_hat, x_t, t, mu_a, mu_b, mixture.sigma, schedule)
        widths.append(ramp_width(x_t[:, 0].numpy(), r[:, 0].numpy(), q))
    return np.array(widths)
