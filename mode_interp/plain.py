"""Plain, straightforward reference implementations, for equivalence tests and benchmarks only.

They compute exactly the same functions as :class:`mode_interp.models.ToyMLP` and
:func:`mode_interp.diffusion.sample`, the way the official code does: the time embedding and every
time projection row by row, the whole batch at once, and the full x0_hat trajectory kept in memory.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .models import NEGATIVE_SLOPE, ToyMLP, timestep_embedding
from .schedule import Schedule


def plain_eps(model: ToyMLP, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """eps_theta(x_t, t) with per-row time embeddings and projections (t: shape (n,))."""
    c = F.leaky_relu(model.t_proj(timestep_embedding(t, model.width)), NEGATIVE_SLOPE)
    h = model.in_fc(x_t)
    for blk in model.block_sequence():
        out = blk.fc1(F.leaky_relu(blk.norm1(h), NEGATIVE_SLOPE)) + blk.enc(c)
        h = h + blk.fc2(F.leaky_relu(blk.norm2(out), NEGATIVE_SLOPE))
    return model.out_fc(model.out_norm(h))


def plain_sample(model: ToyMLP, n: int, schedule: Schedule, generator: torch.Generator,
                 keep_trajectory: bool = True):
    """Ancestral sampling (fixed-large variance) of the whole batch at once; returns (x0, x0_hat (T, n, d)).

    Draws random numbers in the same order as :func:`mode_interp.diffusion.sample` with one chunk, so the
    two agree to float tolerance for the same generator state.
    """
    x = torch.randn(n, model.dim, generator=generator)
    trajectory = [] if keep_trajectory else None
    sigma2 = schedule.reverse_variance("fixed_large")
    with torch.no_grad():
        for t in range(schedule.T - 1, -1, -1):
            tt = torch.full((n,), t, dtype=torch.long)
            eps = plain_eps(model, x, tt)
            ab = float(schedule.alpha_bar[t])
            x0_hat = (x - (1 - ab) ** 0.5 * eps) / ab ** 0.5
            mean = float(schedule.posterior_mean_coef1[t]) * x0_hat + float(schedule.posterior_mean_coef2[t]) * x
            if t > 0:
                x = mean + float(sigma2[t]) ** 0.5 * torch.randn(x.shape, generator=generator)
            else:
                x = mean
            if keep_trajectory:
                trajectory.append(x0_hat)
    return x, (torch.stack(trajectory) if keep_trajectory else None)
