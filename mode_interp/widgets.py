"""Thin ipywidgets wrappers around :mod:`mode_interp.plots` (they need a live kernel to update)."""

from __future__ import annotations

import ipywidgets as widgets
from IPython.display import display

from ._validate import check_float, check_int
from .data import mixture_1d
from .plots import plot_denoiser
from .schedule import Schedule


def denoiser_explorer(schedule: Schedule, n_modes: int = 3, t: int = 9, gap: float = 1.0,
                      sigma: float = 0.05) -> widgets.Widget:
    """Sliders over t, the mode gap and sigma that redraw :func:`plot_denoiser` for modes 1, 1+gap, ..."""
    n_modes = check_int("n_modes", n_modes, 1, 20)
    t = check_int("t", t, 0, schedule.T - 1)
    gap = check_float("gap", gap, 0.2, 3.0)
    sigma = check_float("sigma", sigma, 0.01, 0.3)
    t_slider = widgets.IntSlider(value=t, min=0, max=min(schedule.T - 1, 300), description="t",
                                 continuous_update=False)
    gap_slider = widgets.FloatSlider(value=gap, min=0.2, max=3.0, step=0.1, description="mode gap",
                                     continuous_update=False)
    sigma_slider = widgets.FloatSlider(value=sigma, min=0.01, max=0.3, step=0.01, description="σ",
                                       continuous_update=False)

    def draw(t, gap, sigma):
        mixture = mixture_1d([1.0 + i * gap for i in range(n_modes)], sigma)
        display(plot_denoiser(mixture, schedule, [t], margin=0.6 * gap))

    out = widgets.interactive_output(draw, {"t": t_slider, "gap": gap_slider, "sigma": sigma_slider})
    return widgets.VBox([widgets.HBox([t_slider, gap_slider, sigma_slider]), out])
