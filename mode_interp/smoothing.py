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

from ._validate import check_array, check_callable, check_float, check_int, check_ints, check_points
from .data import GaussianMixture, check_mixture
from .diffusion import _x0_from_eps, x0_from_eps
from .optimal import _eps, optimal_eps, ramp_width, transition_width
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


def mode_contraction(model, mixture: GaussianMixture, schedule: Schedule, ts, h: float = 1e-2) -> dict:
    """How the network's denoiser holds each mode, against the optimum, for each t in ``ts``.

    At the mode's own position x_t = sqrt(ab_t) mu_k the optimal denoiser is (nearly) the contraction
    D*(x_t) = mu_k + sqrt(ab) sigma^2 (x_t - sqrt(ab) mu_k) / v_t, whose slope is
    ``exact_slope`` = sqrt(ab) sigma^2 / v_t per coordinate (the other modes' pull is exponentially small).
    Returned, with ``ts`` and the modes' ``means``, per t (rows) and mode (columns): ``slope``, the network's mean diagonal slope
    (1/d) sum_i dD_i/dx_i there, by central differences of step ``h * sigma * sqrt(ab)``; and ``error``,
    |D(sqrt(ab) mu_k) - mu_k| / sigma. A mode where the slope is far above ``exact_slope`` is not held:
    samples near it are not pulled in, and the mode comes out wide."""
    check_mixture(mixture)
    check_schedule(schedule)
    h = check_float("h", h, 0.0, None, lo_open=True)
    ts = [schedule.check_t(t, "ts") for t in check_ints("ts", ts, min_len=1)]
    mu = torch.as_tensor(mixture.means, dtype=torch.float64)
    n_modes, dim = mu.shape
    slope, error, exact = np.zeros((len(ts), n_modes)), np.zeros((len(ts), n_modes)), np.zeros(len(ts))
    for row, t in enumerate(ts):
        ab = float(schedule.alpha_bar[t])
        step = h * mixture.sigma * math.sqrt(ab)
        x = math.sqrt(ab) * mu
        shifts = torch.cat([torch.zeros(1, dim, dtype=torch.float64), step * torch.eye(dim, dtype=torch.float64),
                            -step * torch.eye(dim, dtype=torch.float64)])             # 0, +e_i, -e_i
        x_t = (x[:, None, :] + shifts[None]).reshape(-1, dim)
        d = x0_from_eps(x_t, t, network_eps(model, x_t, t), schedule).reshape(n_modes, 1 + 2 * dim, dim)
        diag = [(d[:, 1 + i, i] - d[:, 1 + dim + i, i]) / (2 * step) for i in range(dim)]
        slope[row] = torch.stack(diag).mean(0).numpy()
        error[row] = ((d[:, 0] - mu).norm(dim=1) / mixture.sigma).numpy()
        exact[row] = math.sqrt(ab) * mixture.sigma ** 2 / (ab * mixture.sigma ** 2 + 1 - ab)
    return {"ts": np.array(ts), "slope": slope, "error": error, "exact_slope": exact, "means": mu.numpy()}


def network_x0_slope(model, x_t: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
    """d x0_hat / d x_t of the network's denoiser at each 1-D point of ``x_t`` (shape (n, 1), float64; by
    autograd through the float32 network), where x0_hat = (x_t - sqrt(1 - ab) eps_theta(x_t, t)) / sqrt(ab)."""
    check_callable("model", model)
    x_t = check_points("x_t", x_t, 1)
    t = check_schedule(schedule).check_t(t)
    with torch.enable_grad():
        x = x_t.detach().to(torch.float32).requires_grad_(True)
        (grad,) = torch.autograd.grad(_x0_from_eps(x, t, model(x, t), schedule).sum(), x)
    return grad.detach().double()


def optimal_boundary_slope(schedule: Schedule, gap: float, sigma: float, t: int) -> float:
    """The optimal denoiser's slope at the boundary between two modes ``gap`` apart:

        dD*/dx_t = sqrt(ab) / v_t * (sigma^2 + (1 - ab) Var_r(mu) / v_t),   Var_r(mu) = gap^2 / 4 there

    (m = sum_k r_k mu_k has dm/dx_t = sqrt(ab) Var_r(mu) / v_t, and the variance of a two-point
    responsibility is largest, gap^2 / 4, where r = 1/2, wherever the weights put that point). Other
    modes add exponentially little."""
    t = check_schedule(schedule).check_t(t)
    gap = check_float("gap", gap, 0.0, None, lo_open=True)
    sigma = check_float("sigma", sigma, 0.0, None, lo_open=True)
    ab = float(schedule.alpha_bar[t])
    v = ab * sigma ** 2 + 1 - ab
    return math.sqrt(ab) / v * (sigma ** 2 + (1 - ab) * gap ** 2 / (4 * v))


def boundary_lipschitz(model, mixture: GaussianMixture, schedule: Schedule, ts, n_grid: int = 4001) -> dict:
    """How steep the network's denoiser is between each pair of neighbouring 1-D modes: for each gap
    (mu_a, mu_b) and each t in ``ts``, the local Lipschitz constant

        L(t) = max over x_t in [sqrt(ab) mu_a, sqrt(ab) mu_b] of |d x0_hat / d x_t|

    on ``n_grid`` points (:func:`network_x0_slope`), beside the optimal denoiser's boundary slope
    (:func:`optimal_boundary_slope`). A smooth network spreads the step over a wide ramp: a small L. The
    score's slope follows from the denoiser's, (sqrt(ab) dx0_hat/dx_t - 1) / (1 - ab); where the steepest
    part of the ramp has dx0_hat/dx_t well above 1/sqrt(ab), the two rank gaps alike. Returns ``gaps`` (pairs of means), ``ts``, ``learned`` and
    ``optimal`` (arrays of shape (n_gaps, len(ts)))."""
    mixture = check_mixture(mixture, dim=1)
    check_schedule(schedule)
    ts = [schedule.check_t(t, "ts") for t in check_ints("ts", ts, min_len=1)]
    n_grid = check_int("n_grid", n_grid, 3, 10**7)
    mus = np.sort(mixture.means[:, 0])
    gaps = list(zip(mus[:-1].tolist(), mus[1:].tolist()))
    learned, optimal = np.zeros((len(gaps), len(ts))), np.zeros((len(gaps), len(ts)))
    for i, (a, b) in enumerate(gaps):
        for j, t in enumerate(ts):
            sab = math.sqrt(schedule.alpha_bar[t])
            x_t = torch.linspace(sab * a, sab * b, n_grid, dtype=torch.float64)[:, None]
            learned[i, j] = float(network_x0_slope(model, x_t, t, schedule).abs().max())
            optimal[i, j] = optimal_boundary_slope(schedule, b - a, mixture.sigma, t)
    return {"gaps": [list(g) for g in gaps], "ts": list(ts), "learned": learned, "optimal": optimal}


# ---------------------------------------------------------------- smoothness alone (chapter 6)

def tempered_eps(x_t: torch.Tensor, t: int, mixture: GaussianMixture, schedule: Schedule,
                 tau: float = 1.0) -> torch.Tensor:
    """eps of the *tempered* optimal denoiser D_tau: the exact denoiser with its responsibilities softened,

        r_k^(tau)(x_t) = softmax_k( (log w_k - ||x_t - sqrt(ab) mu_k||^2 / (2 v_t)) / tau ),
        D_tau = (sqrt(ab) sigma^2 x_t + (1 - ab) sum_k r_k^(tau) mu_k) / v_t,
        eps_tau = (x_t - sqrt(ab) D_tau) / sqrt(1 - ab).

    Between two equal-weight modes the logit difference is linear in x_t with slope sqrt(ab) gap / v_t, so
    tempering divides the slope by tau and multiplies the 10%-90% transition width by exactly tau:
    w_tau(t) = tau w*(t) (:func:`mode_interp.optimal.transition_width`). ``tau = 1`` is the exact
    denoiser; ``tau > 1`` is a smooth version of the step with no training and no finite data.
    """
    tau = check_float("tau", tau, 0.0, None, lo_open=True)
    return _eps(check_points("x_t", x_t, check_mixture(mixture).dim), t, mixture, check_schedule(schedule), tau)


def tempered_eps_fn(mixture: GaussianMixture, schedule: Schedule, tau):
    """An eps function for :func:`mode_interp.diffusion.sample`: :func:`tempered_eps` with one temperature
    for every step (a float) or one per timestep (an array of length T, ``tau[t]``, e.g.
    :func:`matched_temperature`)."""
    check_mixture(mixture)
    check_schedule(schedule)
    taus = np.full(schedule.T, check_float("tau", tau)) if np.ndim(tau) == 0 else check_array("tau", tau)
    if taus.shape != (schedule.T,):
        raise ValueError(f"tau must be one float or one value per timestep ({schedule.T}), got {len(taus)} values")
    if np.any(taus <= 0):
        raise ValueError(f"tau must be > 0, got a minimum of {taus.min():.3g}")
    return lambda x_t, t: tempered_eps(x_t, t, mixture, schedule, float(taus[int(t)]))


def matched_temperature(model, mixture: GaussianMixture, schedule: Schedule, ts, pair=(0, 1),
                        q: float = 0.9) -> np.ndarray:
    """The per-timestep temperature that gives the tempered denoiser the network's own transition width:

        tau(t) = w_learned(t) / w*(t),

    measured at the timesteps ``ts`` (:func:`learned_transition_width`, :func:`mode_interp.optimal.
    transition_width`) and interpolated linearly in t in between (held constant beyond the first and last
    measured t; a t where the ramp does not fit between the two modes is skipped). Returns T values."""
    ts = np.array(check_ints("ts", ts, 0, check_schedule(schedule).T - 1, min_len=1))
    if np.any(np.diff(ts) <= 0):
        raise ValueError("ts must be strictly increasing timesteps")
    gap = float(np.diff(np.sort(check_mixture(mixture, dim=1).means[:, 0])[list(pair)])[0])
    ratio = learned_transition_width(model, mixture, schedule, ts, pair, q) \
        / transition_width(schedule, gap, mixture.sigma, q)[ts]
    ok = np.isfinite(ratio) & (ratio > 0)
    if not ok.any():
        raise ValueError("the network's transition width could not be measured at any of ts")
    return np.interp(np.arange(schedule.T), ts[ok], ratio[ok])


def empirical_mixture(points, sigma: float = 1e-6) -> GaussianMixture:
    """The training set itself as a mixture of N (near-)point masses: its optimal denoiser
    (:func:`mode_interp.optimal.exact_eps_fn` on it) is the *empirical* optimal denoiser, which a network
    with unlimited capacity trained to zero loss on these N points would learn. Its chain returns training
    points (memorisation: no interpolation, and no new samples either). ``sigma``: the width of each
    mass (a tiny number; 0 is not a Gaussian)."""
    points = check_points("points", points)
    return GaussianMixture(points.double().numpy(), check_float("sigma", sigma, 0.0, None, lo_open=True))
