"""The trajectory-variance detector on a ``diffusers`` sampling loop (optional: ``pip install
mode-interp[diffusers]``).

A diffusers scheduler's ``step`` returns ``pred_original_sample``, the x0_hat of chapter 4; Hal is the
population variance of x0_hat over the last ``window`` timesteps of the loop, averaged over the sample's
coordinates (:mod:`mode_interp.detect`). So a researcher's own loop only needs one extra line:

    hal = HalObserver(scheduler, n=batch_size, window=10)
    for t in scheduler.timesteps:
        eps = unet(x, t).sample
        out = scheduler.step(eps, t, x, generator=generator)
        hal(t, out.pred_original_sample)          # <- the detector
        x = out.prev_sample
    scores = hal.hal()                            # (n,): high = likely hallucinated

:func:`sample_with_hal` is that loop. :class:`EpsModule` wraps any eps function of this package (e.g.
``ToyMLP.eps_for_sampling()`` or the exact score) as a diffusers-style model, and :func:`ddpm_scheduler`
builds the diffusers scheduler of a :class:`mode_interp.schedule.Schedule`, so that the package's own
models run through diffusers' code (the equivalence test: same weights and noise, same Hal).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ._validate import check_callable, check_choice, check_generator, check_int, check_optional_float
from .detect import WindowVariance
from .schedule import Schedule, check_schedule


def _diffusers():
    try:
        import diffusers
    except ImportError as err:            # an optional extra: say how to get it
        raise ImportError("mode_interp.diffusers_adapter needs diffusers: pip install 'mode-interp[diffusers]' "
                          "(or pip install diffusers)") from err
    return diffusers


class EpsModule(torch.nn.Module):
    """A diffusers-style model around an eps function ``eps_fn(x_t, t)`` (t an int): called as
    ``module(sample, timestep)``, it returns an object whose ``.sample`` is eps_hat, like ``UNet2DModel``.
    The sample is flattened to (n, d) for ``eps_fn`` and the result reshaped back."""

    def __init__(self, eps_fn):
        super().__init__()
        self.eps_fn = check_callable("eps_fn", eps_fn)

    def forward(self, sample: torch.Tensor, timestep, return_dict: bool = True):
        t = int(timestep.item() if isinstance(timestep, torch.Tensor) else timestep)
        eps = self.eps_fn(sample.reshape(len(sample), -1), t).reshape(sample.shape).to(sample.dtype)
        return SimpleNamespace(sample=eps) if return_dict else (eps,)


def ddpm_scheduler(schedule: Schedule, kind: str = "ddpm", variance: str = "fixed_large",
                   clip_x0: float | None = None):
    """The diffusers scheduler of ``schedule`` (its betas as ``trained_betas``, eps prediction):
    ``kind="ddpm"`` a ``DDPMScheduler`` with ``variance_type=variance`` (the paper's "fixed_large":
    sigma_t^2 = beta_t), ``kind="ddim"`` a ``DDIMScheduler``. ``clip_x0 = c`` clamps x0_hat to [-c, c]
    (diffusers' ``clip_sample``), as ``clip_x0`` of :func:`mode_interp.diffusion.sample`.

    Trap: diffusers computes alpha_bar in float32. The paper's schedule (beta up to 0.2) takes
    alpha_bar_{T-1} to about 1e-47, which is 0 in float32, and the first step's alpha_t = alpha_bar_t /
    alpha_bar_{t-1} is then 0 / 0: the whole chain is NaN, clipped or not. The scheduler returned here holds
    the schedule's own float64 alpha_bar instead (the step's arithmetic on the samples stays float32)."""
    diffusers = _diffusers()
    check_schedule(schedule)
    check_choice("kind", kind, ("ddpm", "ddim"))
    clip_x0 = check_optional_float("clip_x0", clip_x0, 0.0, None, lo_open=True)
    common = dict(num_train_timesteps=schedule.T, trained_betas=schedule.betas.tolist(), prediction_type="epsilon",
                  clip_sample=clip_x0 is not None, clip_sample_range=clip_x0 if clip_x0 is not None else 1.0)
    if kind == "ddim":
        scheduler = diffusers.DDIMScheduler(**common, set_alpha_to_one=True)
    else:
        scheduler = diffusers.DDPMScheduler(**common, variance_type=check_choice("variance", variance,
                                                                                  ("fixed_small", "fixed_large")))
    scheduler.betas = torch.tensor(schedule.betas, dtype=torch.float64)
    scheduler.alphas = 1.0 - scheduler.betas
    scheduler.alphas_cumprod = torch.tensor(schedule.alpha_bar, dtype=torch.float64)
    return scheduler


class HalObserver:
    """Streaming Hal for a diffusers loop: call it with each step's ``(t, pred_original_sample)``; it keeps a
    Welford variance (:class:`mode_interp.detect.WindowVariance`, O(n d) memory) over the scheduler's last
    ``window`` timesteps (those of ``scheduler.timesteps``, so it follows ``set_timesteps``)."""

    def __init__(self, scheduler, n: int, window: int = 10):
        timesteps = [int(t) for t in scheduler.timesteps]
        self.window = check_int("window", window, 2, len(timesteps))
        self.last = set(timesteps[-self.window:])
        self.n = check_int("n", n, 1, None)
        self._variance = None

    def __call__(self, t, pred_original_sample: torch.Tensor) -> None:
        if int(t.item() if isinstance(t, torch.Tensor) else t) not in self.last:
            return
        x0_hat = pred_original_sample.reshape(self.n, -1)
        if self._variance is None:
            self._variance = WindowVariance(self.n, x0_hat.shape[1], self.window)
        self._variance.update(x0_hat)

    def hal(self) -> torch.Tensor:
        """Hal per sample, shape (n,) float64 (a ValueError before ``window`` steps were seen)."""
        if self._variance is None:
            raise ValueError("no step of the window was observed: call the observer at every step of the loop")
        return self._variance.hal()


def sample_with_hal(model, scheduler, shape, generator: torch.Generator, window: int = 10, **step_kwargs) -> tuple:
    """The standard diffusers loop (x_T ~ N(0, I) drawn with ``generator``, then ``scheduler.step`` at every
    timestep, its noise drawn with the same generator) with a :class:`HalObserver`: returns ``(x0, hal)``.
    ``step_kwargs`` go to ``scheduler.step`` (e.g. ``eta=0.0`` for DDIM)."""
    check_generator("generator", generator)
    if not callable(model):
        raise TypeError(f"model must be callable as model(sample, t).sample, got {type(model).__name__}")
    x = torch.randn(tuple(shape), generator=generator)
    observer = HalObserver(scheduler, len(x), window)
    with torch.no_grad():
        for t in scheduler.timesteps:
            out = scheduler.step(model(x, t).sample, t, x, generator=generator, **step_kwargs)
            observer(t, out.pred_original_sample)
            x = out.prev_sample
    return x, observer.hal()
