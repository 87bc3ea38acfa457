"""Pure plotting functions: each takes data or models and returns a new ``matplotlib.figure.Figure``.

Figures are built without pyplot, so they hold no global state; a notebook shows one by making it the
last expression of a cell (or with ``IPython.display.display``).
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from ._validate import check_instance
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


def plot_density(samples, mixture: GaussianMixture, bins: int = 200, margin: float = 0.5,
                 title: str = "", k: float | None = 5.0) -> Figure:
    """Histograms of 1-D samples (density, log y) against the true mixture pdf.

    ``samples``: a tensor (n, 1), or a dict {label: tensor} drawn as overlaid step histograms. With
    ``k``, shades the hallucination region (farther than k sigma from every mode).
    """
    sets = samples if isinstance(samples, dict) else {"samples": samples}
    if mixture.dim != 1 or any(s.ndim != 2 or s.shape[1] != 1 for s in sets.values()):
        raise ValueError("plot_density needs a 1-D mixture and samples of shape (n, 1)")
    grid = _x_grid(mixture, margin, 4001)
    lo, hi = float(grid[0]), float(grid[-1])
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    for i, (label, s) in enumerate(sets.items()):
        x = s[:, 0].double().numpy()
        ax.hist(x, bins=bins, range=(lo, hi), density=True, histtype="stepfilled" if i == 0 else "step",
                alpha=0.6 if i == 0 else 1.0, color=MODEL_COLOR if i == 0 else f"C{i + 1}",
                label=f"{label} (n = {x.size:,})")
    ax.plot(grid[:, 0], mixture.log_prob(grid).exp(), color=TRUE_COLOR, lw=1, label="true density")
    if k is not None:
        near = (grid - torch.as_tensor(mixture.means[:, 0])).abs().min(dim=1).values <= k * mixture.sigma
        ax.fill_between(grid[:, 0], 0, 1, where=~near.numpy(), color="0.9", zorder=0,
                        transform=ax.get_xaxis_transform(), label=f"> {k:g}σ from every mode")
    ax.set_yscale("log")
    n_max = max(s.shape[0] for s in sets.values())
    ax.set_ylim(1.0 / (n_max * (hi - lo) / bins) / 3, None)
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("density (log scale)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_learned_vs_optimal(curves: dict, indices=None) -> Figure:
    """x0_hat and score of the network (solid) and the optimum (dashed) against x_t / sqrt(ab), for the
    t's of :func:`mode_interp.smoothing.denoiser_curves` picked by ``indices`` (default: all)."""
    indices = range(len(curves["ts"])) if indices is None else indices
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_d, ax_s = fig.subplots(1, 2)
    u = curves["u"]
    for c, i in enumerate(indices):
        t = int(curves["ts"][i])
        for ax, q in ((ax_d, "x0_hat"), (ax_s, "score")):
            ax.plot(u, curves[q]["optimal"][i], color=f"C{c}", ls="--", lw=1)
            ax.plot(u, curves[q]["learned"][i], color=f"C{c}", lw=1.5, label=f"t = {t}")
    ax_d.set_ylabel(r"$\hat x_0(x_t, t)$")
    ax_d.set_title("denoiser: learned (solid) vs optimal $D^*$ (dashed)")
    ax_s.set_yscale("symlog", linthresh=1.0)
    ax_s.set_ylabel(r"score $-\epsilon/\sqrt{1-\bar\alpha_t}$ (symlog)")
    ax_s.set_title("score: learned (solid) vs true (dashed)")
    for ax in (ax_d, ax_s):
        ax.set_xlabel(r"$x_t / \sqrt{\bar\alpha_t}$")
    ax_d.legend(fontsize=8, loc="upper left")
    return fig


def plot_width_comparison(ts, width_optimal, width_learned, gap: float, sigma_steps=None) -> Figure:
    """Transition width (x_t units) of D* and of the network against t, log-log, beside the mode gap."""
    ts = np.asarray(ts)
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.loglog(ts + 1, width_optimal, color=TRUE_COLOR, ls="--", label="optimal $D^*$")
    ax.loglog(ts + 1, width_learned, "o-", color=MODEL_COLOR, ms=3, label="learned network")
    if sigma_steps is not None:
        ax.loglog(ts + 1, sigma_steps, color="0.5", ls=":", label=r"per-step noise $\sqrt{\beta_t}$")
    ax.axhline(gap, color="0.3", lw=0.8, label=f"mode gap ({gap:g})")
    ax.set_xlabel("t + 1")
    ax.set_ylabel("10%–90% width ($x_t$ units)")
    ax.legend(fontsize=8)
    return fig


def plot_scatter_2d(panels, s: float = 0.5) -> Figure:
    """One scatter panel per ``(title, samples, mixture, hallucinated_mask)``: samples in blue,
    hallucinated ones in orange, modes as red crosses."""
    fig = Figure(figsize=(5 * len(panels), 5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, x, mixture, hal) in zip(axes, panels):
        x = x.double().numpy()
        hal = np.asarray(hal, dtype=bool)
        ax.scatter(x[~hal, 0], x[~hal, 1], s=s, color=MODEL_COLOR, alpha=0.3, lw=0,
                   label=f"in support ({(~hal).sum():,})")
        ax.scatter(x[hal, 0], x[hal, 1], s=4 * s, color="tab:orange", lw=0, label=f"hallucinated ({hal.sum():,})")
        ax.scatter(mixture.means[:, 0], mixture.means[:, 1], marker="x", color=TRUE_COLOR, s=20, label="modes")
        ax.set_aspect("equal")
        lim = np.abs(mixture.means).max() * 1.25
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(title)
        ax.legend(fontsize=7, loc="upper right", markerscale=4)
    return fig


def plot_image_grid(images, titles=None, ncols: int = 8, title: str | None = None, size: float = 1.1) -> Figure:
    """Grayscale images (n, r, r) in [0, 1] (see :func:`mode_interp.shapes.to_intensity`) on a grid,
    with the two panel borders of SIMPLE SHAPES drawn as thin lines; an empty list gives a note."""
    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n)) if n else 1
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(size * ncols, size * nrows + (0.3 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        r = images[i].shape[-1]
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        for border in (21, 42):
            ax.axvline(border * r / 64 - 0.5, color="tab:orange", lw=0.4, alpha=0.6)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    if not n:
        axes[0].text(0.5, 0.5, "none", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_loss(losses, every: int, title: str = "training loss") -> Figure:
    """Mean loss per block of ``every`` steps against the step count (log y axis)."""
    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.subplots()
    ax.plot(np.arange(1, len(losses) + 1) * every, losses)
    ax.set_yscale("log")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("eps-MSE")
    ax.set_title(title)
    return fig


def plot_projection(groups: dict, xlabel: str = "PC 1", ylabel: str = "PC 2") -> Figure:
    """2-D scatter of labelled point groups ``{label: array (n, 2)}`` (e.g. a PCA of network features)."""
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    for i, (label, pts) in enumerate(groups.items()):
        pts = np.asarray(pts)
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=12 if i < 2 else 40, alpha=0.5 if i < 2 else 0.9,
                       marker="o" if i < 2 else "*", label=f"{label} ({len(pts)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------- chapter 4: the trajectory-variance detector

HAL_COLOR, IN_COLOR = "tab:orange", MODEL_COLOR


def plot_x0_hat_trajectories(panels) -> Figure:
    """One panel per ``(title, x0_hat (k, n, d), timesteps, groups {"hallucinated": idx, "in support": idx},
    mixture)``. 1-D: x0_hat against t (reverse time runs left to right), modes dashed. 2-D: the path of
    x0_hat in the plane over the k steps (a dot at its end), modes as red crosses."""
    fig = Figure(figsize=(5.2 * len(panels), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, x0_hat, timesteps, groups, mixture) in zip(axes, panels):
        x0_hat = torch.as_tensor(x0_hat).double().numpy()
        ts = np.asarray(timesteps)
        for (name, idx), color in zip(groups.items(), (HAL_COLOR, IN_COLOR, "tab:green")):
            for j, i in enumerate(idx):
                label = f"{name} ({len(idx)})" if j == 0 else None
                if mixture.dim == 1:
                    ax.plot(ts, x0_hat[:, i, 0], color=color, lw=0.9, alpha=0.8, label=label)
                else:
                    ax.plot(x0_hat[:, i, 0], x0_hat[:, i, 1], color=color, lw=0.8, alpha=0.8, label=label)
                    ax.plot(x0_hat[-1, i, 0], x0_hat[-1, i, 1], "o", color=color, ms=2.5)
        if mixture.dim == 1:
            for mu in mixture.means[:, 0]:
                ax.axhline(mu, color=TRUE_COLOR, ls="--", lw=0.7)
            ax.set_xlim(ts.max(), ts.min())
            ax.set_xlabel("reverse step t (→ t = 0)")
            ax.set_ylabel(r"$\hat x_0^{(t)}$")
        else:
            ax.scatter(mixture.means[:, 0], mixture.means[:, 1], marker="x", color=TRUE_COLOR, s=20)
            ax.set_aspect("equal")
            ax.set_xlabel(f"x̂0 over t = {int(ts.max())} … {int(ts.min())}")
        ax.set_title(title)
        ax.legend(fontsize=7, loc="best")
    return fig


def plot_score_histograms(panels, bins: int = 60) -> Figure:
    """One panel per ``(title, scores, labels, threshold)``: histograms (each class normalised to its own
    total, log-spaced bins) of the score for in-support (blue) and hallucinated (orange) samples, and the
    filter's threshold (dashed)."""
    fig = Figure(figsize=(4.8 * len(panels), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, scores, labels, threshold) in zip(axes, panels):
        s = np.asarray(scores, dtype=np.float64)
        y = np.asarray(labels, dtype=bool)
        floor = max(s[s > 0].min() if (s > 0).any() else 1e-12, 1e-12)
        s = np.maximum(s, floor)
        edges = np.geomspace(s.min(), s.max() * 1.0001, bins)
        for mask, color, name in ((~y, IN_COLOR, "in support"), (y, HAL_COLOR, "hallucinated")):
            ax.hist(s[mask], bins=edges, color=color, alpha=0.55, weights=np.full(mask.sum(), 1 / max(mask.sum(), 1)),
                    label=f"{name} ({mask.sum():,})")
        if threshold is not None:
            ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
        ax.set_xscale("log")
        ax.set_xlabel("score (log scale)")
        ax.set_ylabel("share of its class")
        ax.set_title(title)
        ax.legend(fontsize=7)
    return fig


def plot_roc(curves: dict, points: dict | None = None) -> Figure:
    """ROC curves ``{name: roc_curve(...) dict with an added "auroc"}``; ``points`` marks an operating point
    per name as (share of in-support removed, share of hallucinations removed)."""
    fig = Figure(figsize=(4.6, 4.4), layout="constrained")
    ax = fig.subplots()
    for i, (name, roc) in enumerate(curves.items()):
        ax.plot(roc["fpr"], roc["tpr"], color=f"C{i}", label=f"{name} (AUROC {roc['auroc']:.3f})")
        if points and name in points:
            ax.plot(*points[name], "o", color=f"C{i}", ms=5)
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
    ax.set_xlabel("in-support samples removed (1 − retained)")
    ax.set_ylabel("hallucinations removed")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def plot_window_sensitivity(panels) -> Figure:
    """One panel per ``(x_label, xs, {data set: AUROCs})``: AUROC of Hal against a window parameter."""
    fig = Figure(figsize=(4.8 * len(panels), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (x_label, xs, series) in zip(axes, panels):
        for name, values in series.items():
            ax.plot(xs, values, "o-", label=name)
        ax.axhline(0.5, color="0.6", ls=":", lw=1)
        ax.set_xlabel(x_label)
        ax.set_ylabel("AUROC")
        ax.legend(fontsize=7)
    return fig


def plot_filter_2d(x: torch.Tensor, mixture: GaussianMixture, scores, labels, threshold: float,
                   s: float = 0.6) -> Figure:
    """2-D samples with the filter "remove Hal > threshold" applied: kept in-support (blue), kept
    hallucinations (orange), removed samples (grey crosses); the title gives removed / retained."""
    x = torch.as_tensor(x).double().numpy()
    sc, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    removed = sc > threshold
    fig = Figure(figsize=(5.6, 5.4), layout="constrained")
    ax = fig.subplots()
    ax.scatter(x[~removed & ~y, 0], x[~removed & ~y, 1], s=s, color=IN_COLOR, alpha=0.3, lw=0, label="kept, in support")
    ax.scatter(x[removed, 0], x[removed, 1], s=6 * s, color="0.45", marker="x", lw=0.5, label="removed by the filter")
    ax.scatter(x[~removed & y, 0], x[~removed & y, 1], s=8 * s, color=HAL_COLOR, lw=0, label="kept, hallucinated")
    ax.scatter(mixture.means[:, 0], mixture.means[:, 1], marker="x", color=TRUE_COLOR, s=20)
    lim = np.abs(mixture.means).max() * 1.25
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(f"threshold {threshold:.2e}: {(removed & y).sum() / max(y.sum(), 1):.1%} of {y.sum():,} "
                 f"hallucinations removed,\n{(~removed & ~y).sum() / max((~y).sum(), 1):.1%} of {(~y).sum():,} "
                 "in-support samples kept", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", markerscale=3)
    return fig


ARM_COLORS = {"none": "tab:red", "variance": "tab:green", "random": "tab:blue"}
ARM_NAMES = {"none": "no filter", "variance": "variance filter (Hal)", "random": "random filter"}


def plot_generation_curves(panels) -> Figure:
    """One panel per ``(y_label, rows, key, log_y)``: ``row[key]`` against generation, one line per arm
    (rows as from :func:`mode_interp.experiments.loops.loop_rows`); error bars where ``key + "_lo"`` / ``"_hi"`` exist."""
    fig = Figure(figsize=(5 * len(panels), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (label, rows, key, log_y) in zip(axes, panels):
        for arm in dict.fromkeys(r["arm"] for r in rows):
            mine = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["generation"])
            g = np.array([r["generation"] for r in mine])
            y = np.array([r[key] for r in mine])
            err = None
            if f"{key}_lo" in mine[0]:
                err = np.array([y - [r[f"{key}_lo"] for r in mine], [r[f"{key}_hi"] for r in mine] - y])
            ax.errorbar(g + 0.04 * (list(ARM_COLORS).index(arm) - 1), y, yerr=err, fmt="o-", capsize=3,
                        color=ARM_COLORS[arm], label=ARM_NAMES[arm])
        if log_y:
            ax.set_yscale("log")
        ax.set_xticks(sorted({r["generation"] for r in rows}))
        ax.set_xlabel("generation")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    return fig


def plot_replicate_curves(panels) -> Figure:
    """One panel per ``(y_label, table, log_y)`` with ``table = {arm: (seeds, values[seed, generation])}``
    (:func:`mode_interp.experiments.loops.by_arm`): each seed as a thin line, the mean over seeds as a thick
    one, and the band between the lowest and highest seed. ``log_y``: a log scale, or, where some seed's value
    is 0 (a pool without a hallucination), a symmetric-log scale that is linear below the panel's smallest
    positive value, so that a zero stays on the panel at 0."""
    fig = Figure(figsize=(5 * len(panels), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (label, table, log_y) in zip(axes, panels):
        for arm, (seeds, values) in table.items():
            g = np.arange(values.shape[1])
            color = ARM_COLORS[arm]
            for row in values:
                ax.plot(g, row, color=color, lw=0.6, alpha=0.45)
            ax.fill_between(g, values.min(0), values.max(0), color=color, alpha=0.12, lw=0)
            ax.plot(g, values.mean(0), "o-", color=color, lw=2, label=f"{ARM_NAMES[arm]} (mean of {len(seeds)})")
        if log_y:
            every = np.concatenate([values.ravel() for _, values in table.values()])
            if (every > 0).all():
                ax.set_yscale("log")
            else:
                ax.set_yscale("symlog", linthresh=float(every[every > 0].min()) if (every > 0).any() else 1.0)
                ax.set_ylim(bottom=0)
        ax.set_xticks(g)
        ax.set_xlabel("generation")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    return fig


def plot_loop_replicates(s, title: str = "") -> Figure:
    """A Gaussian-mixture loop across seeds (``s``, a :class:`mode_interp.loop_report.LoopSweep`): its
    hallucinated share (log scale) and mean mode spread / sigma per generation, by
    :func:`plot_replicate_curves`, under ``title``."""
    from .loop_report import LoopSweep

    check_instance("s", s, LoopSweep, " (from loop_report.load_sweep)")
    check_instance("title", title, str)
    fig = plot_replicate_curves([("hallucinated share", s.by_arm("hallucinated"), True),
                                 ("mode spread / σ", s.by_arm("spread"), False)])
    if title:
        fig.suptitle(title)
    return fig


def plot_generations_1d(loop: dict, mixture: GaussianMixture, bins: int = 240, margin: float = 0.5,
                        k: float = 5.0) -> Figure:
    """1-D: one panel per arm, the density (log scale) of each generation's samples (``loop`` from
    :func:`mode_interp.recursive.run_loop`), with the hallucination region shaded."""
    fig = Figure(figsize=(5 * len(loop), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(loop), sharey=True))
    grid = _x_grid(mixture, margin, 2001)
    lo, hi = float(grid[0]), float(grid[-1])
    near = (grid - torch.as_tensor(mixture.means[:, 0])).abs().min(dim=1).values <= k * mixture.sigma
    for ax, (arm, gens) in zip(axes, loop.items()):
        colors = colormaps["viridis"](np.linspace(0, 0.9, len(gens)))
        for gen, color in zip(gens, colors):
            ax.hist(gen.pool[:, 0].double().numpy(), bins=bins, range=(lo, hi), density=True, histtype="step",
                    color=color, lw=1, label=f"generation {gen.generation}")
        ax.fill_between(grid[:, 0], 0, 1, where=~near.numpy(), color="0.92", zorder=0,
                        transform=ax.get_xaxis_transform())
        ax.set_yscale("log")
        ax.set_title(ARM_NAMES[arm])
        ax.set_xlabel("$x_0$")
    axes[0].set_ylabel("density (log); shaded: hallucination region")
    axes[-1].legend(fontsize=7, loc="upper right")
    return fig


def plot_grid_loop(loop: dict, rows: list, mixture: GaussianMixture, k: float = 5.0) -> tuple:
    """A 2-D loop's two figures: the hallucinated share and KL(true ‖ samples) per generation and arm
    (:func:`plot_generation_curves` of ``rows``), and every generation's samples with those more than ``k``
    sigma from every mode in orange (:func:`plot_generations_2d`)."""
    from .hallucination import is_hallucinated

    curves = plot_generation_curves([("hallucinated share of the model's samples", rows, "hallucinated", True),
                                     ("KL(true ‖ samples)", rows, "kl", True)])
    return curves, plot_generations_2d(loop, mixture, lambda x: is_hallucinated(x, mixture, k).numpy())


def plot_generations_2d(loop: dict, mixture: GaussianMixture, hallucinated, s: float = 0.4,
                        max_points: int = 20_000) -> Figure:
    """2-D: a grid of scatter panels, one row per arm and one column per generation; ``hallucinated(x)``
    gives the boolean mask drawn in orange. At most ``max_points`` points per panel (the first ones). Arms
    may hold different numbers of generations (a partly finished run): missing panels are left blank."""
    arms = [arm for arm in loop if loop[arm]]
    if not arms:
        raise ValueError("loop holds no generation to plot")
    n_gen = max(len(loop[arm]) for arm in arms)
    fig = Figure(figsize=(2.6 * n_gen, 2.7 * len(arms)), layout="constrained")
    axes = np.asarray(fig.subplots(len(arms), n_gen, squeeze=False))
    lim = np.abs(mixture.means).max() * 1.3
    for i, arm in enumerate(arms):
        for j, gen in enumerate(loop[arm]):
            ax = axes[i, j]
            x = gen.pool[:max_points]
            bad = np.asarray(hallucinated(x), dtype=bool)
            x = x.double().numpy()
            ax.scatter(x[~bad, 0], x[~bad, 1], s=s, color=MODEL_COLOR, alpha=0.3, lw=0)
            ax.scatter(x[bad, 0], x[bad, 1], s=3 * s, color="tab:orange", lw=0)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{ARM_NAMES[arm]}, gen {gen.generation}\n{bad.mean():.1%} hallucinated", fontsize=8)
        for ax in axes[i, len(loop[arm]):]:
            ax.axis("off")
    return fig


def plot_digit_generations(rows: dict, ncols: int = 10, size: float = 0.7) -> Figure:
    """Digit images (n, 28, 28) in [0, 1] for each labelled row ``{label: images}``: ``ncols`` per row."""
    fig = Figure(figsize=(size * ncols + 1.6, size * len(rows)), layout="constrained")
    axes = np.asarray(fig.subplots(len(rows), ncols, squeeze=False))
    for i, (label, images) in enumerate(rows.items()):
        images = np.asarray(images)
        for j in range(ncols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(images):
                ax.imshow(images[j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.axis("off")
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return fig


def plot_steps_curve(curve: dict) -> Figure:
    """Three panels against training steps (log scale), one line per data set of a
    :func:`mode_interp.toy_report.steps_curve`: the hallucinated fraction (Wilson interval as error bars),
    the share within 3 sigma of a mode (dotted: the true mixture's) and the median mode spread over the
    exact chain's (dotted: 1, the band: the gate's 15%)."""
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    for i, (data, rows) in enumerate(curve.items()):
        color = f"C{i}"
        steps = np.array([r["step"] for r in rows])
        h = [r["hallucination"] for r in rows]
        rate = np.array([v["rate"] for v in h])
        err = np.array([[v["rate"] - v["lo"] for v in h], [v["hi"] - v["rate"] for v in h]])
        axes[0].errorbar(steps, rate, yerr=err, fmt="o-", color=color, capsize=3, label=data)
        axes[1].plot(steps, [r["gate"]["within"] for r in rows], "o-", color=color, label=data)
        axes[1].axhline(rows[0]["gate"]["true_within"], color="k", ls=":", lw=1)
        axes[2].plot(steps, [r["gate"]["median_spread_ratio"] for r in rows], "o-", color=color, label=data)
    axes[1].axhline(0.95, color="tab:red", ls="--", lw=1, label="gate: 95%")
    axes[2].axhspan(0.85, 1.15, color="tab:green", alpha=0.15, label="gate: ±15%")
    axes[2].axhline(1.0, color="k", ls=":", lw=1)
    for ax, label in zip(axes, ("hallucinated fraction (> 5σ)", "share within 3σ of a mode",
                                "median mode spread / exact chain's")):
        ax.set_xscale("log")
        ax.set_xlabel("training steps")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    return fig


def _seed_errorbar(ax, x, rows, **kw) -> None:
    """Means over seeds (``rows`` of :func:`mode_interp.sampler_study.summarise`) with their between-seed
    interval as error bars (none where one seed gave no interval)."""
    mean = np.array([r["mean"] for r in rows])
    lo = np.array([r["lo"] if np.isfinite(r["lo"]) else r["mean"] for r in rows])
    hi = np.array([r["hi"] if np.isfinite(r["hi"]) else r["mean"] for r in rows])
    ax.errorbar(np.asarray(x), mean, yerr=[np.maximum(mean - lo, 0), np.maximum(hi - mean, 0)], fmt="o-",
                capsize=3, **kw)


def plot_sampler_grid(panels: dict, key: str = "rate") -> Figure:
    """One panel per entry of ``panels`` (title -> :func:`mode_interp.sampler_study.summarise` rows), one
    line per sampler against the number of sampling steps T' (log scale): the mean over seeds with its
    between-seed interval as error bars (the hallucinated fraction on a symlog axis, or the AUROC)."""
    fig = Figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    for ax, (title, summary) in zip(axes, panels.items()):
        for i, name in enumerate(dict.fromkeys(r["sampler"] for r in summary)):
            rows = sorted((r for r in summary if r["sampler"] == name and np.isfinite(r["mean"])), key=lambda r: r["steps"])
            _seed_errorbar(ax, [r["steps"] for r in rows], rows, color=f"C{i}", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("sampling steps T'")
        ax.set_title(title)
        if key == "rate":
            ax.set_yscale("symlog", linthresh=1e-3)
        else:
            ax.axhline(0.5, color="k", ls=":", lw=1)
        ax.legend(fontsize=8)
    if key == "rate":                          # after every panel: the shared axis spans all of them
        axes[0].set_ylim(bottom=0)             # a rate is >= 0 (a t-interval over few seeds can reach below)
    axes[0].set_ylabel("hallucinated fraction (> 5σ)" if key == "rate" else "Hal AUROC (last steps)")
    return fig


def plot_temperature_curve(summary: list, matched: dict | None = None) -> Figure:
    """The hallucinated fraction of the tempered exact denoiser against its temperature tau (log-log;
    mean over seeds with its between-seed interval), with ``matched`` = {label: (rate, lo, hi)}
    drawn as horizontal bands (e.g. the learned model's rate and the width-matched tempered one's)."""
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    rows = sorted(summary, key=lambda r: r["tau"])
    _seed_errorbar(ax, [r["tau"] for r in rows], rows, color="k", label="tempered exact denoiser, constant τ")
    for i, (label, (rate, r_lo, r_hi)) in enumerate((matched or {}).items()):
        ax.axhspan(r_lo, r_hi, color=f"C{i}", alpha=0.2)
        ax.axhline(rate, color=f"C{i}", lw=1.5, label=label)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("temperature τ (transition width × τ)")
    ax.set_ylabel("hallucinated fraction (> 5σ)")
    ax.legend(fontsize=8)
    return fig


def plot_replicated_sweep(panels) -> Figure:
    """One panel per ``(x_label, points, trend)`` of :mod:`mode_interp.sweep_trend`: each replicate's
    hallucinated fraction (open marks: models that fail the gate), the mean over replicates with its 95%
    interval across them, and the fitted trend (the replicates' mean slope and intercept; none where
    ``trend`` is None) on log axes."""
    from .sweep_trend import by_value

    fig = Figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (label, pts, trend) in zip(axes, panels):
        for i, s in enumerate(sorted({p["seed"] for p in pts})):
            mine = [p for p in pts if p["seed"] == s]
            ax.scatter([p["x"] for p in mine], [p["rate"] for p in mine], s=18, edgecolors=f"C{i + 1}", alpha=0.7,
                       facecolors=[f"C{i + 1}" if p["passed"] else "none" for p in mine], label=f"replicate {s}")
        rows = by_value(pts)
        _seed_errorbar(ax, [r["x"] for r in rows], rows, color=MODEL_COLOR, label="mean (95% across replicates)")
        if trend is not None:
            u = np.linspace(trend["x_min"], trend["x_max"], 50)
            a, b = np.mean(trend["intercepts"]), trend["mean"]
            ax.plot(u, 10 ** (a + b * (np.log10(u) if trend["log_x"] else u)), "--", color="k", lw=1,
                    label=f"fit: slope {b:+.2f} [{trend['lo']:+.2f}, {trend['hi']:+.2f}]")
        ax.set_yscale("log")
        if trend is None or trend["log_x"]:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("hallucinated fraction (> 5σ)")
        ax.legend(fontsize=7)
    return fig


def plot_gap_profiles(rows, boundaries: dict | None = None) -> Figure:
    """Where in each gap between neighbouring 1-D modes the hallucinations lie, one panel per gap:
    the samples of each arm of :func:`mode_interp.imbalance.record_rows` (summed over replicates) as a
    density over the open gap (0 = left mode, 1 = right mode; the record's 10 bins), with ``boundaries``
    = {label: {gap index: position}} drawn as vertical lines (e.g. the exact boundary at some t)."""
    arms = sorted({r["arm"] for r in rows}, key=lambda a: a == "equal")
    n_gaps = len(rows[0]["gaps"])
    fig = Figure(figsize=(5.0 * n_gaps, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n_gaps, sharey=True))
    for g, ax in enumerate(axes):
        a, b = rows[0]["gaps"][g]["between"]
        for i, arm in enumerate(arms):
            counts = np.sum([r["gaps"][g]["counts"] for r in rows if r["arm"] == arm], axis=0)
            n = sum(r["n"] for r in rows if r["arm"] == arm)
            half = rows[0]["half"] / (b - a)      # the open gap starts k_label sigma from each mode
            edges = np.linspace(half, 1 - half, len(counts) + 1)
            ax.stairs(counts / n / np.diff(edges), edges, color=f"C{i}", lw=1.8,
                      label=f"weights {arm} ({int(counts.sum()):,} samples)")
        for j, (label, where) in enumerate((boundaries or {}).items()):
            ax.axvline(where[g], color="k", ls=["--", ":", "-."][j % 3], lw=1, label=label)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"position in the gap {a:g}–{b:g} (0: mode {a:g}, 1: mode {b:g})")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("share of all samples per unit position")
    return fig


def plot_segment_counts(rows) -> Figure:
    """Where a 2-D grid's hallucinations lie, one panel per arm of :func:`mode_interp.imbalance.grid_rows`:
    each segment between nearest-neighbour modes drawn with a width proportional to its samples (summed
    over the arm's replicates, the number written at its middle), each mode as a disc whose area is
    proportional to its weight."""
    arms = sorted({r["arm"] for r in rows}, key=lambda a: a == "equal")
    fig = Figure(figsize=(4.6 * len(arms), 4.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(arms)))
    top = max(max(sum(r["segments"][m]["count"] for r in rows if r["arm"] == arm)
                  for m in range(len(rows[0]["segments"]))) for arm in arms) or 1
    for ax, arm in zip(axes, arms):
        mine = [r for r in rows if r["arm"] == arm]
        mixture = mine[0]["config"].mixture()
        mu = mixture.means
        for m, seg in enumerate(mine[0]["segments"]):
            a, b = seg["between"]
            count = sum(r["segments"][m]["count"] for r in mine)
            ax.plot(*zip(mu[a], mu[b]), color="tab:orange", lw=0.5 + 12 * count / top, solid_capstyle="butt")
            mid = (mu[a] + mu[b]) / 2
            ax.text(*mid, f"{count:,}", ha="center", va="center", fontsize=8,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        ax.scatter(mu[:, 0], mu[:, 1], s=1500 * mixture.weights, color=TRUE_COLOR, zorder=3)
        ax.set_aspect("equal")
        pad = 0.25 * np.ptp(mu[:, 0])
        ax.set_xlim(mu[:, 0].min() - pad, mu[:, 0].max() + pad)
        ax.set_ylim(mu[:, 1].min() - pad, mu[:, 1].max() + pad)
        w = mixture.weights
        name = "equal weights" if arm == "equal" else f"weights {w.max():g} (heavy) / {w.min():g}"
        ax.set_title(f"{name}: hallucinations by segment\n({len(mine)} replicates, "
                     f"{sum(r['n'] for r in mine):,} samples)", fontsize=10)
    return fig


def plot_lipschitz(rows, t: int, same_mixture) -> Figure:
    """The denoiser's steepness at the boundaries against the hallucinations, one point per trained 1-D model
    (:mod:`mode_interp.lipschitz`) at timestep ``t``: left, within each model, the log ratio of its two
    gaps' counts against the log ratio of their Lipschitz constants, with the fit; right, each model's log
    rate against its mean log L, with the pooled fit over the groups ``same_mixture``."""
    from .lipschitz import across_models, within_model

    w, a = within_model(rows, t), across_models(rows, t)
    fit = across_models(rows, t, same_mixture)
    groups = list(dict.fromkeys(r["group"] for r in rows))
    pair_rows = [r for r in rows if len(r["gap_counts"]) == 2]
    fig = Figure(figsize=(10.5, 4.0), layout="constrained")
    ax_w, ax_a = fig.subplots(1, 2)
    for i, g in enumerate(groups):
        mine = [k for k, r in enumerate(pair_rows) if r["group"] == g]
        ax_w.scatter(np.array(w["x"])[mine], np.array(w["y"])[mine], color=f"C{i}", s=22, label=g)
        mine = [k for k, r in enumerate(rows) if r["group"] == g]
        ax_a.scatter(np.array(a["x"])[mine], np.array(a["y"])[mine], color=f"C{i}", s=22, label=g)
    for ax, f, xs, label in ((ax_w, w, w["x"], "fit"),
                             (ax_a, fit, fit["x"], f"pooled fit on {', '.join(same_mixture)}")):
        u = np.linspace(min(xs), max(xs), 2)
        ax.plot(u, f["intercept"] + f["slope"] * u, "k--", lw=1,
                label=f"{label}: slope {f['slope']:.1f} [{f['lo']:.1f}, {f['hi']:.1f}]")
    ax_w.axhline(0, color="0.7", lw=0.8)
    ax_w.axvline(0, color="0.7", lw=0.8)
    ax_w.set_xlabel(f"log10(L_a / L_b), t = {t} (a: the left gap, b: the right one)")
    ax_w.set_ylabel("log10(c_a / c_b), samples in the two gaps")
    ax_w.set_title("within a model: gap against gap", fontsize=10)
    ax_a.set_xlabel(f"mean over gaps of log10 L, t = {t}")
    ax_a.set_ylabel("log10(hallucinated fraction)")
    ax_a.set_title("across models", fontsize=10)
    for ax in (ax_w, ax_a):
        ax.legend(fontsize=7)
    return fig
