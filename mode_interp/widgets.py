"""Thin ipywidgets wrappers around :mod:`mode_interp.plots` (they need a live kernel to update).

Each widget shows its figure as a PNG in an ``ipywidgets.Image`` and swaps the bytes when a control
changes. There is deliberately no ``Output`` widget: headless executors (nbclient, so papermill, nbmake and
Jupyter Book) capture Output-widget messages through a path that intermittently hangs a cell forever
(jupyter/nbclient#312; seen here on chapter 2's widget cell). An Image widget is plain widget state: it
executes headless without that path, and the built HTML shows the first figure inside the widget.
"""

from __future__ import annotations

import io

import ipywidgets as widgets

from ._validate import check_float, check_int
from .data import mixture_1d
from .plots import plot_denoiser, plot_learned_vs_optimal
from .schedule import Schedule


def figure_png(fig, dpi: int = 80) -> bytes:
    """The PNG bytes of a matplotlib Figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_widget(draw, controls: dict) -> widgets.Widget:
    """Controls above an Image that shows ``draw(**values)`` (a Figure) and redraws on every change."""
    image = widgets.Image(format="png")

    def redraw(_change=None):
        image.value = figure_png(draw(**{name: c.value for name, c in controls.items()}))

    for c in controls.values():
        c.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(list(controls.values())), image])


def denoiser_explorer(schedule: Schedule, n_modes: int = 3, t: int = 9, gap: float = 1.0,
                      sigma: float = 0.05) -> widgets.Widget:
    """Sliders over t, the mode gap and sigma that redraw :func:`plot_denoiser` for modes 1, 1+gap, ..."""
    n_modes = check_int("n_modes", n_modes, 1, 20)
    t = check_int("t", t, 0, schedule.T - 1)
    gap = check_float("gap", gap, 0.2, 3.0)
    sigma = check_float("sigma", sigma, 0.01, 0.3)
    controls = {
        "t": widgets.IntSlider(value=t, min=0, max=min(schedule.T - 1, 300), description="t",
                               continuous_update=False),
        "gap": widgets.FloatSlider(value=gap, min=0.2, max=3.0, step=0.1, description="mode gap",
                                   continuous_update=False),
        "sigma": widgets.FloatSlider(value=sigma, min=0.01, max=0.3, step=0.01, description="σ",
                                     continuous_update=False),
    }

    def draw(t, gap, sigma):
        mixture = mixture_1d([1.0 + i * gap for i in range(n_modes)], sigma)
        return plot_denoiser(mixture, schedule, [t], margin=0.6 * gap)

    return figure_widget(draw, controls)


def learned_vs_optimal_explorer(curves: dict) -> widgets.Widget:
    """A slider over the precomputed t's of ``curves`` (:func:`mode_interp.smoothing.denoiser_curves`)
    that redraws :func:`plot_learned_vs_optimal` for one t: no network is evaluated while scrubbing."""
    ts = [int(t) for t in curves.get("ts", [])]
    if not ts:
        raise ValueError("curves must hold at least one t (from mode_interp.smoothing.denoiser_curves)")
    slider = widgets.SelectionSlider(options=[(str(t), i) for i, t in enumerate(ts)], value=0,
                                     description="t", continuous_update=False)
    return figure_widget(lambda i: plot_learned_vs_optimal(curves, [i]), {"i": slider})


def x0_hat_explorer(x0_hat, timesteps, groups: dict, per_group: int = 8) -> widgets.Widget:
    """Scrub the recorded predictions x0_hat (k, n, r*r) of a sample over its last k steps, for a few
    images of each group ``{name: indices}`` (e.g. valid / hallucinated), drawn with
    :func:`mode_interp.plots.plot_image_grid`. Everything is precomputed: no network runs while scrubbing."""
    from .plots import plot_image_grid
    from .shapes import to_intensity

    groups = {name: list(map(int, idx))[:per_group] for name, idx in groups.items() if len(idx)}
    if x0_hat is None or not groups or len(timesteps) != len(x0_hat):
        raise ValueError("x0_hat (k, n, d) with k = len(timesteps) and at least one non-empty group are needed")
    step = widgets.SelectionSlider(options=[(str(int(t)), i) for i, t in enumerate(timesteps)], value=0,
                                   description="step", continuous_update=False)
    group = widgets.Dropdown(options=list(groups), description="images")

    def draw(i, name):
        idx = groups[name]
        return plot_image_grid(to_intensity(x0_hat[i, idx]), titles=[f"#{j}" for j in idx], ncols=len(idx),
                               title=f"x0_hat, {name}, chain step {timesteps[i]}")

    return figure_widget(draw, {"i": step, "name": group})


def threshold_explorer(x, mixture, scores, labels, threshold: float) -> widgets.Widget:
    """A log-scale slider over the Hal threshold that redraws :func:`mode_interp.plots.plot_filter_2d`:
    the removed / retained shares in its title and the samples the filter would remove marked. Scores are
    precomputed: nothing is sampled while sliding."""
    import numpy as np

    from .plots import plot_filter_2d

    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or len(s) != len(x) or not (s > 0).any():
        raise ValueError("scores must be 1-D, one per sample of x, with at least one positive value")
    lo, hi = np.log10(s[s > 0].min()), np.log10(s.max())
    threshold = check_float("threshold", threshold, 10 ** lo, 10 ** hi)
    slider = widgets.FloatLogSlider(value=threshold, base=10, min=lo, max=hi, step=(hi - lo) / 200,
                                    description="threshold", readout_format=".2e", continuous_update=False)
    return figure_widget(lambda threshold: plot_filter_2d(x, mixture, s, labels, threshold), {"threshold": slider})
