"""DDPM forward process, eps-MSE loss, the ancestral reverse chain (Ho et al. 2020) and DDIM (Song et al. 2021).

An *eps function* is any callable ``eps_fn(x_t, t) -> eps_hat`` with ``x_t`` of shape (n, d) and ``t``
an int (the same timestep for the whole batch) or an integer tensor of shape (n,). Networks and the
closed-form optimal denoiser (:mod:`mode_interp.optimal`) both fit this interface.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from ._validate import (check_bool, check_callable, check_choice, check_float, check_generator, check_int,
                        check_ints, check_optional_float, check_points, check_tensor)
from .schedule import VARIANCES, Schedule, check_schedule

EpsFn = Callable[[torch.Tensor, "int | torch.Tensor"], torch.Tensor]


def _check_like(name: str, eps, x: torch.Tensor) -> torch.Tensor:
    """``eps``: a finite float tensor of exactly ``x``'s shape (no broadcasting)."""
    return check_tensor(name, eps, shape=tuple(x.shape))


def q_sample(x0: torch.Tensor, t, eps: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps   (DDPM eq. 4, reparametrised)."""
    check_points("x0", x0)
    _check_like("eps", eps, x0)
    ab = check_schedule(schedule).at("alpha_bar", t, x0)          # a float, or a tensor broadcasting over rows
    return ab ** 0.5 * x0 + (1.0 - ab) ** 0.5 * eps


def x0_from_eps(x_t: torch.Tensor, t, eps: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)   (inverse of eq. 4)."""
    check_points("x_t", x_t)
    return _x0_from_eps(x_t, t, _check_like("eps", eps, x_t), check_schedule(schedule))


def _x0_from_eps(x_t, t, eps, schedule):
    ab = schedule.at("alpha_bar", t, x_t)
    return (x_t - (1.0 - ab) ** 0.5 * eps) / ab ** 0.5


def eps_mse_loss(eps_fn: EpsFn, x0: torch.Tensor, schedule: Schedule,
                 generator: torch.Generator) -> torch.Tensor:
    """L_simple = E_{t ~ U{0..T-1}, eps ~ N(0, I)} || eps - eps_fn(x_t, t) ||^2   (DDPM eq. 14).

    Averaged over the batch and the data dimensions, as the official code does. ``eps_fn`` must return
    a finite tensor of x_t's shape (an (n,) output for (n, 1) data would broadcast to an (n, n) matrix
    and give a plausible but wrong loss; a NaN means training has diverged).
    """
    check_callable("eps_fn", eps_fn)
    check_points("x0", x0)
    check_schedule(schedule)
    check_generator("generator", generator)
    t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    x_t = q_sample(x0, t, eps, schedule)
    out = eps_fn(x_t, t)
    if not isinstance(out, torch.Tensor) or out.shape != x_t.shape:
        raise ValueError(f"eps_fn must return a tensor of x_t's shape {tuple(x_t.shape)}, got "
                         f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError("eps_fn returned NaN or infinite values (training has diverged?)")
    return torch.mean((out - eps) ** 2)


def _check_step(x_t, t, eps_hat, schedule, variance, clip_x0) -> tuple:
    check_points("x_t", x_t)
    _check_like("eps_hat", eps_hat, x_t)
    schedule = check_schedule(schedule)
    t = schedule.check_t(t)
    if not isinstance(t, int):
        raise ValueError("t must be a single int here (one timestep for the whole batch)")
    check_choice("variance", variance, VARIANCES)
    return t, check_optional_float("clip_x0", clip_x0, 0.0, None, lo_open=True)


def posterior_step_mean(x_t: torch.Tensor, t: int, eps_hat: torch.Tensor, schedule: Schedule,
                        clip_x0: float | None = None):
    """(mu_tilde, x0_hat): the mean of the ancestral step and the predicted clean sample.

        x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t)
        mu_tilde = coef1_t x0_hat + coef2_t x_t        (DDPM eq. 7; coef1_0 = 1, coef2_0 = 0)
    No clipping of x0_hat by default (as the toy code); ``clip_x0 = c`` clamps x0_hat to [-c, c] first
    (DDPM's image sampler, with data in [-1, 1]: c = 1).
    """
    t, clip_x0 = _check_step(x_t, t, eps_hat, schedule, "fixed_large", clip_x0)
    return _posterior_step_mean(x_t, t, eps_hat, schedule, clip_x0)


def _posterior_step_mean(x_t, t, eps_hat, schedule, clip_x0):
    x0_hat = _x0_from_eps(x_t, t, eps_hat, schedule)
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
    mean = float(schedule.posterior_mean_coef1[t]) * x0_hat + float(schedule.posterior_mean_coef2[t]) * x_t
    return mean, x0_hat


def reverse_step(x_t: torch.Tensor, t: int, eps_hat: torch.Tensor, schedule: Schedule,
                 generator: torch.Generator, variance: str = "fixed_large", clip_x0: float | None = None):
    """One ancestral step x_t -> x_{t-1}; returns ``(x_prev, x0_hat)``.

        x_prev = mu_tilde(x_t, x0_hat) + sigma_t z,  z ~ N(0, I),  no noise at t = 0,

    with mu_tilde, x0_hat from :func:`posterior_step_mean` and sigma_t^2 the reverse variance
    (``fixed_large``: beta_t, the paper's choice). At t = 0 the chain returns x0_hat itself. Every
    sampler of the package runs on this step (:func:`sample_progressive` checks its inputs once, not at
    every step, so that a chain that diverges returns its NaN samples for the caller to count).
    """
    t, clip_x0 = _check_step(x_t, t, eps_hat, schedule, variance, clip_x0)
    check_generator("generator", generator)
    return _reverse_step(x_t, t, eps_hat, schedule, generator, variance, clip_x0)


def _reverse_step(x_t, t, eps_hat, schedule, generator, variance, clip_x0):
    mean, x0_hat = _posterior_step_mean(x_t, t, eps_hat, schedule, clip_x0)
    if t == 0:
        return mean, x0_hat
    sigma = float(schedule.reverse_variance(variance)[t] ** 0.5)
    z = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype, device=x_t.device)
    return mean + sigma * z, x0_hat


def ddim_step(x_t: torch.Tensor, t: int, eps_hat: torch.Tensor, schedule: Schedule, generator: torch.Generator,
              eta: float = 0.0, clip_x0: float | None = None):
    """One DDIM step x_t -> x_{t-1} of ``schedule`` (Song, Meng & Ermon 2021, eq. 12); returns ``(x_prev, x0_hat)``.

        x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t)
        sigma_t(eta) = eta sqrt((1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_{t-1})
        x_prev = sqrt(alpha_bar_{t-1}) x0_hat + sqrt(1 - alpha_bar_{t-1} - sigma_t^2) eps_hat + sigma_t z

    ``eta = 0``: deterministic (the probability-flow-like DDIM path, no draw); ``eta = 1``: sigma_t^2 is the
    posterior variance beta_tilde_t, and the step *is* the ancestral step with ``variance="fixed_small"``
    (same mean, same noise: :func:`reverse_step`). At t = 0 the chain returns x0_hat. On a respaced
    schedule (:func:`mode_interp.schedule.respace`) "t - 1" is the previous kept timestep. ``clip_x0 = c``
    clamps x0_hat to [-c, c] and recomputes eps_hat from it (as DDIM's image sampler).
    """
    t, clip_x0 = _check_step(x_t, t, eps_hat, schedule, "fixed_small", clip_x0)
    check_generator("generator", generator)
    return _ddim_step(x_t, t, eps_hat, schedule, generator, check_eta(eta), clip_x0)


def check_eta(eta) -> float:
    """``eta``, DDIM's noise scale, as a float in [0, 1] (a ValueError naming ``eta`` otherwise)."""
    return check_float("eta", eta, 0.0, 1.0)


def _ddim_step(x_t, t, eps_hat, schedule, generator, eta, clip_x0):
    ab, ab_prev = float(schedule.alpha_bar[t]), float(schedule.alpha_bar_prev[t])
    x0_hat = _x0_from_eps(x_t, t, eps_hat, schedule)
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        eps_hat = (x_t - ab ** 0.5 * x0_hat) / (1.0 - ab) ** 0.5
    if t == 0:
        return x0_hat, x0_hat
    sigma = eta * ((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)) ** 0.5
    x_prev = ab_prev ** 0.5 * x0_hat + max(1.0 - ab_prev - sigma ** 2, 0.0) ** 0.5 * eps_hat
    if sigma > 0:
        x_prev = x_prev + sigma * torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype, device=x_t.device)
    return x_prev, x0_hat


def respaced_eps(eps_fn: EpsFn, tau) -> EpsFn:
    """``eps_fn`` (trained on the full schedule) as an eps function of a respaced chain's step index:
    step i is evaluated at the original timestep ``tau[i]`` (``tau`` from :func:`mode_interp.schedule.respace`)."""
    check_callable("eps_fn", eps_fn)
    tau = torch.as_tensor(check_ints("tau", list(tau) if not isinstance(tau, torch.Tensor) else tau.tolist(), 0,
                                     None, min_len=1))
    if len(tau) > 1 and not bool((tau[1:] > tau[:-1]).all()):
        raise ValueError("tau must be strictly increasing timesteps (as respace returns them)")
    return lambda x_t, i: eps_fn(x_t, int(tau[i]) if isinstance(i, int) else tau[i])


@dataclass(frozen=True)
class Step:
    """One step of the reverse chain, as :func:`sample_progressive` yields it: the timestep ``t``, the
    chain's input ``x_t`` (n, d), the prediction ``x0_hat`` (n, d) and the output ``x_prev`` (x_{t-1};
    at t = 0 the final sample)."""

    t: int
    x_t: torch.Tensor
    x0_hat: torch.Tensor
    x_prev: torch.Tensor


@dataclass
class SampleResult:
    """Output of :func:`sample`.

    ``x0``: final samples, shape (n, d). ``x0_hat``: the recorded predictions, shape (k, n, d), in
    reverse-time order, i.e. ``x0_hat[i]`` belongs to timestep ``timesteps[i]`` (``timesteps`` runs
    k-1, ..., 0), or ``None`` when no window was asked for. ``precision`` and ``compiled``: how the eps
    function ran (:mod:`mode_interp.precision`; "float32" / False for a plain callable). ``x_t``: the
    chain's states x_t over the same window (``x_t[i]`` is the input of step ``timesteps[i]``), when kept.
    ``seconds``: the chain's wall time; ``from_cache``: the draw was read back from the cache folder
    (:func:`mode_interp.cache.cached_draw`; ``seconds`` is then the original draw's).
    """

    x0: torch.Tensor
    x0_hat: torch.Tensor | None
    timesteps: tuple
    precision: str = "float32"
    compiled: bool = False
    x_t: torch.Tensor | None = None
    seconds: float = 0.0
    from_cache: bool = False


CHUNK_SIZE = 2048             # rows per eps evaluation where torch runs on several threads
CHUNK_SIZE_ONE_THREAD = 512   # ... and on one thread (a sweep worker, an xdist test process). On an AVX2 EPYC
                              # (512 KiB L2 per core) a 512-row activation block samples 1.36x faster than 2,048
                              # rows on one thread, but on two threads the book's chapter 2 ran 1.4x slower with
                              # 512 (benchmarks/run.py, "chunk" rows, compares them)


def default_chunk_size() -> int:
    """The sampler's rows per eps evaluation for torch's current thread count: :data:`CHUNK_SIZE_ONE_THREAD`
    on one thread, else :data:`CHUNK_SIZE`."""
    return CHUNK_SIZE_ONE_THREAD if torch.get_num_threads() == 1 else CHUNK_SIZE


def _chunked_eps(eps_fn: EpsFn, x: torch.Tensor, t: int, chunk_size: int) -> torch.Tensor:
    """eps_fn on row chunks of x (cache-sized batches are faster on a CPU), as one (n, d) tensor."""
    if len(x) <= chunk_size:
        out = eps_fn(x, t)
    else:
        out = torch.cat([eps_fn(x[s:s + chunk_size], t) for s in range(0, len(x), chunk_size)])
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise ValueError(f"eps_fn must return a tensor of the shape of x_t {tuple(x.shape)}, got "
                         f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    return out.to(x.dtype)        # a float32 eps in a float64 chain is promoted before the step


def sample_progressive(eps_fn: EpsFn, n: int, dim: int, schedule: Schedule, generator: torch.Generator, *,
                       chunk_size: int | None = None, variance: str = "fixed_large",
                       dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                       progress: bool = False, clip_x0: float | None = None, eta: float | None = None):
    """The ancestral DDPM chain as a generator of :class:`Step` s, x_T ~ N(0, I), t = T-1, ..., 0 (as
    improved-diffusion's ``p_sample_loop_progressive``): each step evaluates ``eps_fn`` on chunks of
    ``chunk_size`` rows (default: :func:`default_chunk_size`) and takes one :func:`reverse_step` of the
    whole batch. The last step's ``x_prev`` is the sample. Random numbers: x_T, then one (n, d) draw per
    step t > 0, so the samples do not depend on ``chunk_size``. ``eta`` (a float in [0, 1]) runs the DDIM
    chain instead, one :func:`ddim_step` per step (``variance`` is then unused; eta = 0 draws only x_T); on
    fewer steps, pass a respaced schedule and :func:`respaced_eps`.
    """
    n = check_int("n", n, 1, None)
    dim = check_int("dim", dim, 1, None)
    if chunk_size is None:
        chunk_size = default_chunk_size()
    chunk_size = check_int("chunk_size", chunk_size, 1, None)
    check_schedule(schedule)
    check_generator("generator", generator)
    check_choice("variance", variance, VARIANCES)
    clip_x0 = check_optional_float("clip_x0", clip_x0, 0.0, None, lo_open=True)
    check_bool("progress", progress)
    eta = None if eta is None else check_eta(eta)
    if not isinstance(dtype, torch.dtype) or dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if not callable(eps_fn):
        raise ValueError(f"eps_fn must be callable as eps_fn(x_t, t), got {type(eps_fn).__name__}")
    return _chain(eps_fn, n, dim, schedule, generator, chunk_size, variance, dtype, device, progress, clip_x0, eta)


def _chain(eps_fn, n, dim, schedule, generator, chunk_size, variance, dtype, device, progress, clip_x0, eta=None):
    x = torch.randn(n, dim, generator=generator, dtype=dtype, device=device)
    for t in tqdm(range(schedule.T - 1, -1, -1), disable=not progress, desc="sampling", unit="step"):
        with torch.no_grad():          # around each step only: never around the yield (the caller's own code)
            eps_hat = _chunked_eps(eps_fn, x, t, chunk_size)
            if eta is None:
                x_prev, x0_hat = _reverse_step(x, t, eps_hat, schedule, generator, variance, clip_x0)
            else:
                x_prev, x0_hat = _ddim_step(x, t, eps_hat, schedule, generator, eta, clip_x0)
        yield Step(t, x, x0_hat, x_prev)
        x = x_prev


def _observers(observer) -> list:
    if observer is None:
        return []
    observers = list(observer) if isinstance(observer, (list, tuple)) else [observer]
    for o in observers:
        if not callable(o):
            raise ValueError("observer must be callable as observer(t, x_t, x0_hat), or a list of such, got "
                             f"{type(o).__name__}")
    return observers


def check_no_observer(observer) -> None:
    """A cached draw (``cache=True`` of the trained models' ``sample``) is read back without running the
    chain: an observer would see no step, so it is refused (keep x0_hat / x_t with ``window`` / ``keep_x_t``)."""
    if observer is not None:
        raise ValueError("observer cannot watch a cached draw (cache=True reads it back without running the chain); "
                         "keep what it needs with window / keep_x_t, or pass cache=False")


def sample(eps_fn: EpsFn, n: int, dim: int, schedule: Schedule, generator: torch.Generator, *,
           window: int = 0, chunk_size: int | None = None, variance: str = "fixed_large",
           dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
           progress: bool = False, clip_x0: float | None = None, observer=None,
           eta: float | None = None, keep_x_t: bool = False) -> SampleResult:
    """Ancestral DDPM sampling through all T steps (:func:`sample_progressive`), keeping what is asked for.

    ``window`` = k keeps x0_hat of the last k steps (t = k-1 .. 0): memory O(n k d), not O(n T d);
    ``window = schedule.T`` keeps the whole trajectory; ``keep_x_t`` keeps the states x_t over the same
    window too (a score of x_t computed later, with no observer). ``chunk_size``: rows per eps evaluation (an eps
    function may reuse per-step work across the chunks, see ``ToyMLP.eps_for_sampling``); the samples do
    not depend on it. ``clip_x0``: see :func:`posterior_step_mean`. ``observer``: a callable
    ``observer(t, x_t, x0_hat)``, or a list of them, run at every step on the whole batch (e.g.
    :class:`mode_interp.detect.WindowVariance`, a streaming Hal in O(n d) memory). ``eta``: the DDIM chain
    instead of the ancestral one (:func:`sample_progressive`).
    """
    window = check_int("window", window, 0, check_schedule(schedule).T)
    if check_bool("keep_x_t", keep_x_t) and not window:
        raise ValueError("keep_x_t keeps x_t over the window: give window >= 1 as well")
    observers = _observers(observer)
    start = time.perf_counter()
    steps = sample_progressive(eps_fn, n, dim, schedule, generator, chunk_size=chunk_size, variance=variance,
                               dtype=dtype, device=device, progress=progress, clip_x0=clip_x0, eta=eta)
    x0_hat = torch.empty(window, n, dim, dtype=dtype, device=device) if window else None
    x_t = torch.empty(window, n, dim, dtype=dtype, device=device) if keep_x_t else None
    x = None
    for step in steps:
        for o in observers:
            o(step.t, step.x_t, step.x0_hat)
        if step.t < window:
            x0_hat[window - 1 - step.t] = step.x0_hat
            if keep_x_t:
                x_t[window - 1 - step.t] = step.x_t
        x = step.x_prev
    compiled = getattr(eps_fn, "compiled", None)
    return SampleResult(x, x0_hat, tuple(range(window - 1, -1, -1)), getattr(eps_fn, "precision", "float32"),
                        bool(compiled()) if callable(compiled) else False, x_t, time.perf_counter() - start)
