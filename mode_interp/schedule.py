"""The DDPM noise schedule, in float64.

Forward process (Ho et al. 2020, eq. 4):  q(x_t | x_0) = N( sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I ),
with alpha_t = 1 - beta_t and alpha_bar_t = prod_{s <= t} alpha_s. Time is 0-indexed, t = 0 .. T-1,
as in the official code: t = 0 is the first noising step, not the clean data.

The paper's constants (the paper's toy setup and its official code): T = 1000, beta linear from 1e-3 to 0.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ._validate import check_array, check_choice, check_float, check_instance, check_int

VARIANCES = ("fixed_large", "fixed_small")


@dataclass(frozen=True, eq=False)
class Schedule:
    """A variance schedule ``betas`` (shape (T,), float64) and every quantity derived from it."""

    betas: np.ndarray

    def __post_init__(self):
        betas = check_array("betas", self.betas, min_len=2)
        if not np.all((betas > 0) & (betas < 1)):
            raise ValueError("betas must lie in the open interval (0, 1)")
        object.__setattr__(self, "betas", betas)
        # Invariants every later formula relies on (1 / sqrt(alpha_bar), 1 / (1 - alpha_bar), ...).
        ab = self.alpha_bar
        if not (np.all((ab > 0) & (ab < 1)) and np.all(np.diff(ab) < 0)):
            raise ValueError("betas must give alpha_bar strictly decreasing inside (0, 1); "
                             f"got alpha_bar in [{ab.min():.3g}, {ab.max():.3g}] (underflow to 0?)")

    @property
    def T(self) -> int:
        return int(self.betas.size)

    @cached_property
    def alphas(self) -> np.ndarray:
        return 1.0 - self.betas

    @cached_property
    def alpha_bar(self) -> np.ndarray:
        """alpha_bar_t = prod_{s=0}^{t} (1 - beta_s)."""
        return np.cumprod(self.alphas)

    @cached_property
    def alpha_bar_prev(self) -> np.ndarray:
        """alpha_bar_{t-1}, with alpha_bar_{-1} = 1 (the clean data)."""
        return np.append(1.0, self.alpha_bar[:-1])

    @cached_property
    def posterior_variance(self) -> np.ndarray:
        """beta_tilde_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)  (DDPM eq. 7); 0 at t = 0."""
        return self.betas * (1.0 - self.alpha_bar_prev) / (1.0 - self.alpha_bar)

    @cached_property
    def posterior_mean_coef1(self) -> np.ndarray:
        """Coefficient of x0 in mu_tilde_t(x_t, x0) (DDPM eq. 7)."""
        return np.sqrt(self.alpha_bar_prev) * self.betas / (1.0 - self.alpha_bar)

    @cached_property
    def posterior_mean_coef2(self) -> np.ndarray:
        """Coefficient of x_t in mu_tilde_t(x_t, x0) (DDPM eq. 7)."""
        return np.sqrt(self.alphas) * (1.0 - self.alpha_bar_prev) / (1.0 - self.alpha_bar)

    def reverse_variance(self, variance: str = "fixed_large") -> np.ndarray:
        """sigma_t^2 of the reverse step.

        ``fixed_large`` (the paper's code): sigma_t^2 = beta_t, except at t = 0, where the official code
        uses beta_tilde_1; no noise is added at t = 0 anyway. ``fixed_small``: sigma_t^2 = beta_tilde_t.
        """
        check_choice("variance", variance, VARIANCES)
        return self.posterior_variance if variance == "fixed_small" else self._fixed_large_variance

    @cached_property
    def _fixed_large_variance(self) -> np.ndarray:
        return np.append(self.posterior_variance[1], self.betas[1:])

    def check_t(self, t, name: str = "t"):
        """Validate a timestep: an int, or an integer tensor, with 0 <= t < T."""
        if isinstance(t, torch.Tensor):
            if t.dtype in (torch.bool,) or t.is_floating_point() or t.is_complex():
                raise ValueError(f"{name} must hold integers, got dtype {t.dtype}")
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.T):
                raise ValueError(f"{name} must be in [0, {self.T - 1}], got values in "
                                 f"[{int(t.min())}, {int(t.max())}]")
            return t
        return check_int(name, t, 0, self.T - 1)

    def at(self, name: str, t, like: torch.Tensor):
        """The schedule array ``name`` at timestep(s) ``t``, shaped to broadcast against ``like``.

        An int ``t`` gives a Python float; a tensor ``t`` of shape (n,) gives a tensor (n, 1, ..., 1)
        in ``like``'s dtype and device.
        """
        values = getattr(self, name)
        t = self.check_t(t)
        if isinstance(t, int):
            return float(values[t])
        out = torch.as_tensor(values, device=like.device)[t.to(like.device)].to(like.dtype)
        return out.reshape(-1, *([1] * (like.ndim - 1)))


def linear_schedule(T: int = 1000, beta_start: float = 1e-3, beta_end: float = 0.2) -> Schedule:
    """beta_t = beta_start + (beta_end - beta_start) t / (T - 1), t = 0 .. T-1 (the paper's schedule)."""
    T = check_int("T", T, 2, 100_000)
    beta_start = check_float("beta_start", beta_start, 0.0, 1.0, lo_open=True, hi_open=True)
    beta_end = check_float("beta_end", beta_end, 0.0, 1.0, lo_open=True, hi_open=True)
    if beta_end < beta_start:
        raise ValueError(f"beta_end must be >= beta_start ({beta_start}), got {beta_end}")
    return Schedule(np.linspace(beta_start, beta_end, T, dtype=np.float64))


def respace(schedule: Schedule, steps: int) -> tuple:
    """A shorter chain on ``steps`` evenly spaced timesteps tau_0 = 0 < ... < tau_{S-1} = T-1 of ``schedule``.

    Returns ``(Schedule, tau)``: beta'_i = 1 - alpha_bar_{tau_i} / alpha_bar_{tau_{i-1}} (beta'_0 =
    1 - alpha_bar_0), so the new chain's alpha_bar'_i equals alpha_bar_{tau_i} exactly (Nichol & Dhariwal
    2021, "respacing"). A network trained on ``schedule`` is evaluated at ``tau[i]`` for step i.
    """
    steps = check_int("steps", steps, 2, check_schedule(schedule).T)
    tau = np.unique(np.round(np.linspace(0, schedule.T - 1, steps)).astype(np.int64))
    ab = schedule.alpha_bar[tau]
    return Schedule(1.0 - ab / np.append(1.0, ab[:-1])), tau


def check_schedule(schedule, name: str = "schedule") -> Schedule:
    """``schedule`` if it is a :class:`Schedule` (e.g. from :func:`linear_schedule`), else a TypeError."""
    return check_instance(name, schedule, Schedule, " (e.g. linear_schedule())")
