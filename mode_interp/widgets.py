"""Thin ipywidgets wrappers around :mod:`mode_interp.plots` that respond without a kernel.

Every explorer is a :func:`frame_explorer`: the figure is drawn in advance for every combination of the
controls' values (the frames), each frame is a PNG in an ``ipywidgets.Image``, and the images sit in nested
``ipywidgets.Stack`` s whose ``selected_index`` each control drives through ``widgets.jslink``, a link
that runs in the browser. So a slider moves the figure in the static HTML of the book (served offline: the
widget state, the frames and the links are embedded in the page) exactly as in a live Jupyter session,
and no Python runs while the reader drags it. The price is that the controls take a finite list of values.

There is deliberately no ``Output`` widget: headless executors (nbclient, so papermill, nbmake and Jupyter
Book) capture Output-widget messages through a path that intermittently hangs a cell forever
(jupyter/nbclient#312; seen here on chapter 2's widget cell). Images in Stacks are plain widget state.
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib.pyplot as plt

from ._validate import check_float, check_int
from .data import mixture_1d
from .plots import plot_denoiser, plot_learned_vs_optimal
from .schedule import Schedule


def figure_png(fig, dpi: int = 80) -> bytes:
    """The PNG bytes of a matplotlib Figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def frame_explorer(draw, axes: dict, initial: dict | None = None, dpi: int = 72) -> widgets.Widget:
    """Controls over the precomputed frames ``draw(**values)`` (a Figure) for every combination of values.

    ``axes``: ``{name: (description, [(label, value), ...])}`` in order, outermost first; an axis of
    strings becomes a Dropdown, any other a SelectionSlider. ``initial``: the value shown first on each
    axis (default: the first). Returns ``VBox([controls, stack])``; the nested Stacks' ``selected_index``
    follow the controls' ``index`` through browser-side ``jslink`` s (module docstring).
    """
    if not isinstance(axes, dict) or not axes:
        raise ValueError("axes must be a non-empty {name: (description, [(label, value), ...])} dict")
    names = list(axes)
    options = {}
    for name in names:
        description, values = axes[name]
        values = list(values)
        if not values:
            raise ValueError(f"axes[{name!r}] holds no values")
        options[name] = (description, [(str(label), i) for i, (label, _) in enumerate(values)],
                         [v for _, v in values])
    initial = dict(initial or {})
    unknown = set(initial) - set(names)
    if unknown:
        raise ValueError(f"initial names axes that do not exist: {sorted(unknown)}")
    start = {}
    for name in names:
        vals = options[name][2]
        if name in initial:
            if initial[name] not in vals:
                raise ValueError(f"initial[{name!r}] = {initial[name]!r} is not one of the axis values {vals}")
            start[name] = vals.index(initial[name])
        else:
            start[name] = 0

    def frame(index: tuple) -> widgets.Image:
        fig = draw(**{n: options[n][2][i] for n, i in zip(names, index)})
        png = figure_png(fig, dpi)
        plt.close(fig)
        return widgets.Image(value=png, format="png")

    def level(depth: int, prefix: tuple):
        """The Stack over axis ``depth`` (its children: the next level, or frames at the last axis)."""
        name = names[depth]
        n = len(options[name][2])
        if depth == len(names) - 1:
            children = [frame(prefix + (i,)) for i in range(n)]
        else:
            children = [level(depth + 1, prefix + (i,)) for i in range(n)]
        stack = widgets.Stack(children=children, selected_index=start[name])
        stacks[name].append(stack)
        return stack

    stacks = {name: [] for name in names}
    top = level(0, ())
    controls, links = [], []
    for name in names:
        description, labelled, values = options[name]
        if all(isinstance(v, str) for v in values):
            control = widgets.Dropdown(options=labelled, value=start[name], description=description)
        else:
            control = widgets.SelectionSlider(options=labelled, value=start[name], description=description,
                                              continuous_update=True)
        controls.append(control)
        links += [widgets.jslink((control, "index"), (stack, "selected_index")) for stack in stacks[name]]
    box = widgets.VBox([widgets.HBox(controls), top])
    box.links = links            # keep the links alive with the widget
    return box


def denoiser_explorer(schedule: Schedule, n_modes: int = 3, ts=(0, 2, 5, 9, 19, 49, 99, 199),
                      gaps=(0.5, 1.0, 2.0), sigmas=(0.05, 0.1), t: int = 9, gap: float = 1.0,
                      sigma: float = 0.05) -> widgets.Widget:
    """Sliders over t, the mode gap and sigma, showing :func:`plot_denoiser` for modes 1, 1 + gap, ...:
    a :func:`frame_explorer` over every combination of ``ts`` x ``gaps`` x ``sigmas``, each with ``t``,
    ``gap``, ``sigma`` added (the setting shown first)."""
    n_modes = check_int("n_modes", n_modes, 1, 20)
    t = check_int("t", t, 0, schedule.T - 1)
    gap, sigma = check_float("gap", gap, 0.05, 10.0), check_float("sigma", sigma, 1e-3, 1.0)
    ts = sorted({check_int("ts", v, 0, schedule.T - 1) for v in ts} | {t})
    gaps = sorted({check_float("gaps", v, 0.05, 10.0) for v in gaps} | {gap})
    sigmas = sorted({check_float("sigmas", v, 1e-3, 1.0) for v in sigmas} | {sigma})

    def draw(sigma, gap, t):
        mixture = mixture_1d([1.0 + i * gap for i in range(n_modes)], sigma)
        return plot_denoiser(mixture, schedule, [t], margin=0.6 * gap)

    axes = {"sigma": ("σ", [(f"{v:g}", v) for v in sigmas]), "gap": ("mode gap", [(f"{v:g}", v) for v in gaps]),
            "t": ("t", [(str(v), v) for v in ts])}
    return frame_explorer(draw, axes, {"sigma": sigma, "gap": gap, "t": t})


def learned_vs_optimal_explorer(curves: dict) -> widgets.Widget:
    """A slider over the precomputed t's of ``curves`` (:func:`mode_interp.smoothing.denoiser_curves`)
    that redraws :func:`plot_learned_vs_optimal` for one t: no network is evaluated while scrubbing."""
    ts = [int(t) for t in curves.get("ts", [])]
    if not ts:
        raise ValueError("curves must hold at least one t (from mode_interp.smoothing.denoiser_curves)")
    return frame_explorer(lambda i: plot_learned_vs_optimal(curves, [i]),
                          {"i": ("t", [(str(t), i) for i, t in enumerate(ts)])})


def x0_hat_explorer(x0_hat, timesteps, groups: dict, per_group: int = 8) -> widgets.Widget:
    """Scrub the recorded predictions x0_hat (k, n, r*r) of a sample over its last k steps, for a few
    images of each group ``{name: indices}`` (e.g. valid / hallucinated), drawn with
    :func:`mode_interp.plots.plot_image_grid`. Everything is precomputed: no network runs while scrubbing."""
    from .plots import plot_image_grid
    from .shapes import to_intensity

    groups = {name: list(map(int, idx))[:per_group] for name, idx in groups.items() if len(idx)}
    if x0_hat is None or not groups or len(timesteps) != len(x0_hat):
        raise ValueError("x0_hat (k, n, d) with k = len(timesteps) and at least one non-empty group are needed")
    def draw(name, i):
        idx = groups[name]
        return plot_image_grid(to_intensity(x0_hat[i, idx]), titles=[f"#{j}" for j in idx], ncols=len(idx),
                               title=f"x0_hat, {name}, chain step {timesteps[i]}")

    return frame_explorer(draw, {"name": ("images", [(name, name) for name in groups]),
                                 "i": ("step", [(str(int(t)), i) for i, t in enumerate(timesteps)])})


def threshold_explorer(x, mixture, scores, labels, threshold: float, n_frames: int = 21) -> widgets.Widget:
    """A slider over ``n_frames`` Hal thresholds, log-spaced from the smallest positive score to the
    largest and including ``threshold`` (shown first), over :func:`mode_interp.plots.plot_filter_2d`: the
    removed / retained shares in its title and the samples the filter would remove marked."""
    import numpy as np

    from .plots import plot_filter_2d

    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or len(s) != len(x) or not (s > 0).any():
        raise ValueError("scores must be 1-D, one per sample of x, with at least one positive value")
    lo, hi = np.log10(s[s > 0].min()), np.log10(s.max())
    threshold = check_float("threshold", threshold, 10 ** lo, 10 ** hi)
    n_frames = check_int("n_frames", n_frames, 2, 200)
    values = sorted(set(np.logspace(lo, hi, n_frames).tolist()) | {threshold})
    return frame_explorer(lambda threshold: plot_filter_2d(x, mixture, s, labels, threshold),
                          {"threshold": ("threshold", [(f"{v:.2e}", v) for v in values])}, {"threshold": threshold})
