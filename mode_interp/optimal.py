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
import time
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import check_array, check_callable, check_float, check_generator, check_int, check_ints, check_points
from .data import GaussianMixture, check_mixture
from .diffusion import q_sample, sample
from .hallucination import is_hallucinated, true_hallucination_rate
from .report import markdown_table
from .schedule import Schedule, check_schedule
from .stats import wilson_interval


def _terms(x_t: torch.Tensor, t, mixture: GaussianMixture, schedule: Schedule, tau: float = 1.0):
    """Return (x_t in float64, sqrt(ab), v_t, r, m_bar = sum_k r_k mu_k), broadcastable to (n, d).

    ``tau`` > 0 tempers the responsibilities, r_k = softmax_k(logit_k / tau) (1: the exact ones; the
    tempered denoiser of :func:`mode_interp.smoothing.tempered_eps`)."""
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
    r = torch.softmax(logits / tau if tau != 1.0 else logits, dim=1)
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
    return _eps(x_t, t, mixture, schedule, 1.0)


def _eps(x_t, t, mixture, schedule, tau):
    """sqrt(1 - ab) (x_t - sqrt(ab) m_bar) / v_t with m_bar from responsibilities tempered by ``tau``."""
    x, sab, v, _, m_bar = _terms(x_t, t, mixture, schedule, tau)
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


# ------------------------------------------------------------------ chapter 1's numbers, tables and control

def mode_gap(mixture: GaussianMixture) -> float:
    """Delta: the smallest distance between neighbouring modes of a 1-D mixture (the gap of the step
    formulas, :func:`step_profile`)."""
    check_mixture(mixture, dim=1)
    if mixture.n_modes < 2:
        raise ValueError(f"mixture must have at least 2 modes to have a gap between them, got {mixture.n_modes}")
    return float(np.min(np.diff(np.sort(mixture.means[:, 0]))))


def noise_level_table(schedule: Schedule, ts) -> str:
    """Markdown table of the forward marginal's signal and noise at the steps ``ts``: alpha_bar_t and the
    noise std sqrt(1 - alpha_bar_t) of x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps."""
    ab = check_schedule(schedule).alpha_bar
    ts = [schedule.check_t(t, "ts") for t in check_ints("ts", ts, min_len=1)]
    return markdown_table([r"$t$", r"$\bar\alpha_t$", r"noise std $\sqrt{1-\bar\alpha_t}$"],
                          [[t, f"{ab[t]:.4f}", f"{math.sqrt(1 - ab[t]):.3f}"] for t in ts])


def forward_numbers(schedule: Schedule, mixture: GaussianMixture, threshold: float = 0.01) -> dict:
    """The forward process's numbers for a 1-D mixture: ``t_pure_noise``, the first t with
    alpha_bar_t < ``threshold`` (x_t is then practically pure noise); ``frac_pure_noise`` = 1 - t_pure_noise / T,
    the share of the chain beyond it; ``gap_in_sigma`` = Delta / sigma (:func:`mode_gap`)."""
    ab = check_schedule(schedule).alpha_bar
    threshold = check_float("threshold", threshold, 0.0, 1.0, lo_open=True, hi_open=True)
    gap = mode_gap(mixture)
    if not bool((ab < threshold).any()):
        raise ValueError(f"alpha_bar never falls below threshold={threshold} (its last value is {ab[-1]:.3g})")
    t_pure = int(np.argmax(ab < threshold))
    return {"t_pure_noise": t_pure, "frac_pure_noise": 1.0 - t_pure / schedule.T,
            "gap_in_sigma": gap / mixture.sigma}


def posterior_mean_summary(mixture: GaussianMixture, schedule: Schedule, ts, seed: int = 0,
                           n: int = 400_000) -> dict:
    """:func:`posterior_mean_check` at every t of ``ts`` (``n`` draws each, from one generator seeded with
    ``seed``, used in turn), pooled over all bins: ``mc_bins`` = B = sum_t B_t, ``mc_chi2`` =
    sum_t B_t mean_z2_t / B (the mean z^2 over every bin: about 1 when D* = E[x0 | x_t]) and
    ``mc_chi2_limit`` = 1 + 5 sqrt(2 / B) (five standard deviations of chi2_B / B); per t, ``z2_t{t}`` and
    ``bins_t{t}``."""
    ts = check_ints("ts", ts, 0, None, min_len=1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0, None))
    out = {}
    for t in ts:
        out[f"z2_t{t}"], out[f"bins_t{t}"] = posterior_mean_check(mixture, schedule, t, generator, n=n)
    bins = sum(out[f"bins_t{t}"] for t in ts)
    chi2 = sum(out[f"z2_t{t}"] * out[f"bins_t{t}"] for t in ts) / bins
    return {"mc_chi2": chi2, "mc_chi2_limit": 1.0 + 5.0 * math.sqrt(2.0 / bins), "mc_bins": bins, **out}


def step_numbers(schedule: Schedule, mixture: GaussianMixture) -> dict:
    """Chapter 1's reading of :func:`step_profile` for the mixture's gap Delta (:func:`mode_gap`) and sigma:

    ``width_t{0,9,49}`` (10%-90% switch, x_t units), ``jump_t{0,9}`` (jump of D* as a fraction of Delta),
    ``slope_t{0,9}``, ``slope_max`` and ``t_slope_max`` (the midpoint slope L_t and where it peaks),
    ``t_smooth`` (first t with w_t > Delta, None if none), ``sharp_lo`` / ``sharp_hi`` (first and last t
    of a *sharp step*: jump >= Delta / 2 across w_t <= Delta / 10; None if no t is), ``sqrt_beta_t{0,9}``
    (the per-step noise std). Needs T >= 50."""
    check_schedule(schedule)
    if schedule.T < 50:
        raise ValueError(f"schedule must have at least 50 steps (the numbers read t = 49), got T={schedule.T}")
    gap = mode_gap(mixture)
    p = step_profile(schedule, gap, mixture.sigma)
    sharp = np.flatnonzero((p["jump"] >= 0.5 * gap) & (p["width"] <= 0.1 * gap))
    smooth = np.flatnonzero(p["width"] > gap)
    return {"width_t0": p["width"][0], "width_t9": p["width"][9], "width_t49": p["width"][49],
            "jump_t0": p["jump"][0] / gap, "jump_t9": p["jump"][9] / gap,
            "slope_t0": p["slope"][0], "slope_t9": p["slope"][9],
            "slope_max": p["slope"].max(), "t_slope_max": int(p["slope"].argmax()),
            "t_smooth": int(smooth[0]) if len(smooth) else None,
            "sharp_lo": int(sharp.min()) if len(sharp) else None,
            "sharp_hi": int(sharp.max()) if len(sharp) else None,
            "sqrt_beta_t0": math.sqrt(schedule.betas[0]), "sqrt_beta_t9": math.sqrt(schedule.betas[9])}


def step_table(schedule: Schedule, mixture: GaussianMixture, ts) -> str:
    """Markdown table of :func:`step_profile` at the steps ``ts`` for the mixture's gap Delta and sigma:
    width w_t, w_t / Delta, jump of D*, midpoint slope L_t and jump of eps*."""
    check_schedule(schedule)
    ts = [schedule.check_t(t, "ts") for t in check_ints("ts", ts, min_len=1)]
    gap = mode_gap(mixture)
    p = step_profile(schedule, gap, mixture.sigma)
    return markdown_table(
        [r"$t$", r"width $w_t$", r"$w_t$ / gap", r"jump of $D^*$", r"slope $L_t$", r"jump of $\epsilon^*$"],
        [[t, f"{p['width'][t]:.3f}", f"{p['width'][t] / gap:.1%}", f"{p['jump'][t]:.3f}",
          f"{p['slope'][t]:.1f}", f"{p['eps_jump'][t]:.1f}"] for t in ts])


def width_formula_error(mixture: GaussianMixture, schedule: Schedule, ts=(0, 9, 19)) -> float:
    """max over ``ts`` of |measured / formula - 1|: the 10%-90% width read off the computed responsibilities
    (:func:`measured_transition_width`, modes 0 and 1) against the closed form (:func:`transition_width`)."""
    check_schedule(schedule)
    ts = [schedule.check_t(t, "ts") for t in check_ints("ts", ts, min_len=1)]
    width = transition_width(schedule, mode_gap(mixture), mixture.sigma)
    return max(abs(measured_transition_width(mixture, schedule, t) / width[t] - 1) for t in ts)


@dataclass
class ExactControl:
    """The exact-score control of :func:`exact_score_control`: ``x`` the samples (n, 1), ``seconds`` the
    sampling time; ``rates[k]`` for each label distance k: ``count`` of samples farther than k sigma from
    every mode, ``rate`` = count / n, ``ci_lo`` / ``ci_hi`` its 99.9% Wilson interval, ``true`` the true
    mixture's rate and ``expected`` = true n; ``mode_std`` the std of the samples nearest each mode and
    ``std_pred`` its closed-form prediction (:func:`exact_chain_mode_std`)."""

    x: torch.Tensor
    seconds: float
    rates: dict
    mode_std: list
    std_pred: float

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def numbers(self, k_label: float) -> dict:
        """Flat numbers for glue: ``k_label``, ``count_label``, ``rate_label``, ``ci_lo_label``,
        ``ci_hi_label``, ``true_rate_label``, ``expected_label`` (at k = ``k_label``); ``count_k{k}``,
        ``rate_k{k}``, ``true_rate_k{k}`` for every k (``{k:g}``, e.g. ``rate_k3``); ``mode_std_min``,
        ``mode_std_max``, ``std_pred``, ``sample_seconds``."""
        k_label = check_float("k_label", k_label, 0.0, None, lo_open=True)
        if k_label not in self.rates:
            raise ValueError(f"k_label={k_label} is not one of the control's label distances {sorted(self.rates)}")
        r = self.rates[k_label]
        out = {"k_label": k_label, "count_label": r["count"], "rate_label": r["rate"], "ci_lo_label": r["ci_lo"],
               "ci_hi_label": r["ci_hi"], "true_rate_label": r["true"], "expected_label": r["expected"]}
        for k, r in self.rates.items():
            name = f"{k:g}".replace(".", "_")
            out.update({f"count_k{name}": r["count"], f"rate_k{name}": r["rate"], f"true_rate_k{name}": r["true"]})
        return {**out, "mode_std_min": min(self.mode_std), "mode_std_max": max(self.mode_std),
                "std_pred": self.std_pred, "sample_seconds": self.seconds}

    def table(self) -> str:
        """Markdown table: for each k, the true mixture's rate and expected count, the sampler's count, rate
        and 99.9% Wilson interval."""
        return markdown_table(
            [r"label: $> k\sigma$ from every mode", "true mixture rate", "expected count", "exact-score count",
             "exact-score rate", "99.9% interval"],
            [[f"$k = {k:g}$", f"{r['true']:.3g}", f"{r['expected']:.3g}", f"{r['count']:,}", f"{r['rate']:.3g}",
              f"[{r['ci_lo']:.2g}, {r['ci_hi']:.2g}]"] for k, r in self.rates.items()])


def exact_score_control(mixture: GaussianMixture, schedule: Schedule, n: int, seed: int,
                        ks=(3.0, 4.0, 5.0), chunk_size: int = 50_000) -> ExactControl:
    """The control experiment: ``n`` ancestral DDPM samples (all T steps, "fixed_large", generator seeded
    with ``seed``) with the exact eps* (:func:`exact_eps_fn`) of a 1-D mixture, and for each k of ``ks``
    the samples farther than k sigma from every mode (:func:`mode_interp.is_hallucinated`) against the true
    rate (:func:`mode_interp.true_hallucination_rate`); see :class:`ExactControl`."""
    check_mixture(mixture, dim=1)
    check_schedule(schedule)
    n = check_int("n", n, 1, None)
    seed = check_int("seed", seed, 0, None)
    ks = [check_float("ks", k, 0.0, None, lo_open=True) for k in check_array("ks", ks, min_len=1)]
    chunk_size = check_int("chunk_size", chunk_size, 1, None)
    start = time.perf_counter()
    x = sample(exact_eps_fn(mixture, schedule), n, 1, schedule, torch.Generator().manual_seed(seed),
               chunk_size=chunk_size).x0
    seconds = time.perf_counter() - start
    rates = {}
    for k in ks:
        count = int(is_hallucinated(x, mixture, k).sum())
        lo, hi = wilson_interval(count, n)
        true = true_hallucination_rate(mixture, k)
        rates[k] = {"count": count, "rate": count / n, "ci_lo": lo, "ci_hi": hi, "true": true, "expected": true * n}
    nearest = torch.cdist(x.double(), torch.as_tensor(mixture.means)).argmin(dim=1)
    mode_std = [float(x[nearest == j, 0].double().std()) for j in range(mixture.n_modes)]
    return ExactControl(x, seconds, rates, mode_std, exact_chain_mode_std(schedule, mixture.sigma))
