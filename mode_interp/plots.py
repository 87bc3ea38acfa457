"""Pure plotting functions: each takes data or models and returns a new ``matplotlib.figure.Figure``.

Figures are built without pyplot, so they hold no global state; a notebook shows one by making it the
last expression of a cell (or with ``IPython.display.display``).
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from .data import GaussianMixture
from .optimal import posterior_mean, score, transition_width
from .schedule import Schedule

TRUE_COLOR, MODEL_COLOR = "tab:red", "tab:blue"


def _x_grid(mixture: GaussianMixture, margin: float, n: int) -> torch.Tensor:
    lo, hi = mixture.means.min() - margin, mixture.means.max() + margin
    return torch.linspace(lo, hi, n, dtype=torch.float64)[:, None]


def plot_denoiser(mixture: GaussianMixture, schedule: Schedule, ts, margin: float = 0.6,
                  n_points: int = 2001) -> Figure:
    """Optimal denoiser E[x0 | x_t] and true score grad log p_t(x_t) against x_t, one curve per t.

    The x axis is x_t / sqrt(alpha_bar_t), so the modes sit at the same place for every t.
    """
    if mixture.dim != 1:
        raise ValueError(f"mixture must be 1-D for plot_denoiser, got dim={mixture.dim}")
    ts = [schedule.check_t(int(t), "ts") for t in ts]
    u = _x_grid(mixture, margin, n_points)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_d, ax_s = fig.subplots(1, 2)
    colors = [f"C{i}" for i in range(len(ts))]
    for t, c in zip(ts, colors):
        x_t = u * float(schedule.alpha_bar[t]) ** 0.5
        ax_d.plot(u[:, 0], posterior_mean(x_t, t, mixture, schedule)[:, 0], color=c, label=f"t = {t}")
        ax_s.plot(u[:, 0], score(x_t, t, mixture, schedule)[:, 0], color=c, label=f"t = {t}")
    for ax in (ax_d, ax_s):
        for mu in mixture.means[:, 0]:
            ax.axvline(mu, color="0.8", lw=0.8, zorder=0)
        ax.set_xlabel(r"$x_t / \sqrt{\bar\alpha_t}$")
    ax_d.set_ylabel(r"$D^*(x_t, t) = \mathbb{E}[x_0 \mid x_t]$")
    ax_d.set_title("optimal denoiser")
    ax_s.set_yscale("symlog", linthresh=1.0)
    ax_s.set_ylabel(r"$\nabla_{x} \log p_t(x_t)$ (symlog)")
    ax_s.set_title("true score")
    ax_d.legend(fontsize=8, loc="upper left")
    return fig


def plot_transition_width(schedule: Schedule, gap: float, sigma: float, t_max: int = 200) -> Figure:
    """Width of D*'s switch between two modes (10%-90%, x_t units) against t, beside the mode gap."""
    width = transition_width(schedule, gap, sigma)[:t_max]
    t = np.arange(width.size)
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.loglog(t + 1, width, color=MODEL_COLOR, label="transition width of $D^*$")
    ax.loglog(t + 1, np.sqrt(schedule.betas[:t_max]), color="0.5", ls=":",
              label=r"per-step noise $\sqrt{\beta_t}$")
    ax.axhline(gap * np.sqrt(schedule.alpha_bar[0]), color=TRUE_COLOR, ls="--", label=f"mode gap ({gap:g})")
    ax.set_xlabel("t + 1 (reverse time runs right to left)")
    ax.set_ylabel("width in $x_t$ units")
    ax.legend(fontsize=8)
    return fig


def plot_density(samples: torch.Tensor, mixture: GaussianMixture, bins: int = 200, margin: float = 0.5,
                 title: str = "", k: float | None = 5.0) -> Figure:
    """Histogram of 1-D samples (density, log y) against the true mixture pdf.

    With ``k``, shades the hallucination region (farther than k sigma from every mode).
    """
    if mixture.dim != 1 or samples.ndim != 2 or samples.shape[1] != 1:
        raise ValueError("plot_density needs a 1-D mixture and samples of shape (n, 1)")
    grid = _x_grid(mixture, margin, 4001)
    lo, hi = float(grid[0]), float(grid[-1])
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    x = samples[:, 0].double().numpy()
    ax.hist(x, bins=bins, range=(lo, hi), density=True, histtype="stepfilled", alpha=0.6,
            color=MODEL_COLOR, label=f"samples (n = {x.size:,})")
    ax.plot(grid[:, 0], mixture.log_prob(grid).exp(), color=TRUE_COLOR, lw=1, label="true density")
    if k is not None:
        near = (grid - torch.as_tensor(mixture.means[:, 0])).abs().min(dim=1).values <= k * mixture.sigma
        ax.fill_between(grid[:, 0], 0, 1, where=~near.numpy(), color="0.9", zorder=0,
                        transform=ax.get_xaxis_transform(), label=f"> {k:g}σ from every mode")
    ax.set_yscale("log")
    ax.set_ylim(1.0 / (x.size * (hi - lo) / bins) / 3, None)
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("density (log scale)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    return fig
