from pathlib import Path

import ipywidgets
import pytest
import torch
from matplotlib.figure import Figure

import mode_interp as mi
from mode_interp import plots
from mode_interp.widgets import denoiser_explorer


def test_plots_return_figures(schedule, mixture):
    assert isinstance(plots.plot_denoiser(mixture, schedule, [0, 9]), Figure)
    assert isinstance(plots.plot_transition_width(schedule, 1.0, 0.05), Figure)
    x = mixture.sample(1000, torch.Generator().manual_seed(0))
    fig = plots.plot_density(x, mixture, title="t")
    assert isinstance(fig, Figure) and fig.axes[0].get_yscale() == "log"


@pytest.mark.parametrize("call, name", [
    (lambda s, m: plots.plot_denoiser(mi.grid_25(), s, [0]), "mixture"),
    (lambda s, m: plots.plot_denoiser(m, s, [1000]), "ts"),
    (lambda s, m: plots.plot_transition_width(s, 0.0, 0.05), "gap"),
    (lambda s, m: plots.plot_density(torch.zeros(5, 2), m), "samples"),
])
def test_plot_bad_input(schedule, mixture, call, name):
    with pytest.raises(ValueError, match=name):
        call(schedule, mixture)


def _frames(stack) -> list:
    """The Images at the leaves of a frame explorer's nested Stacks."""
    if isinstance(stack, ipywidgets.Image):
        return [stack]
    return [img for child in stack.children for img in _frames(child)]


def _shown(w):
    """The Image a frame explorer shows for its controls' current indices (what the browser links do)."""
    node = w.children[1]
    for control in w.children[0].children:
        node = node.children[control.index]
    return node


def test_denoiser_explorer_builds(schedule):
    w = denoiser_explorer(schedule, ts=(0, 9), gaps=(1.0, 2.0), sigmas=(0.05,))
    assert isinstance(w, ipywidgets.VBox)
    sliders = w.children[0].children
    assert [s.description for s in sliders] == ["σ", "mode gap", "t"]
    frames = _frames(w.children[1])
    assert len(frames) == 4 and all(len(f.value) > 1000 for f in frames)
    assert _shown(w) is frames[1]                      # sigma 0.05, gap 1.0, t 9: the defaults


@pytest.mark.parametrize("kwargs, name", [(dict(n_modes=0), "n_modes"), (dict(t=1000), "t"),
                                          (dict(gap=50.0), "gap"), (dict(sigma=0.0), "sigma"),
                                          (dict(ts=(1000,)), "ts"), (dict(gaps=(0.0,)), "gaps")])
def test_denoiser_explorer_bad_input(schedule, kwargs, name):
    with pytest.raises(ValueError, match=name):
        denoiser_explorer(schedule, **kwargs)


def test_fast_mode(monkeypatch):
    monkeypatch.setenv("MODE_INTERP_FAST", "1")
    assert mi.fast_mode()
    monkeypatch.setenv("MODE_INTERP_FAST", "0")
    assert not mi.fast_mode()
    monkeypatch.setenv("MODE_INTERP_FAST", "yes")
    with pytest.raises(ValueError, match="MODE_INTERP_FAST"):
        mi.fast_mode()


def test_configure_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("MODE_INTERP_THREADS", "1")
        assert mi.configure_threads() == 1
        monkeypatch.setenv("MODE_INTERP_THREADS", "zero")
        with pytest.raises(ValueError, match="MODE_INTERP_THREADS"):
            mi.configure_threads()
    finally:
        torch.set_num_threads(before)


def test_markdown_table():
    from mode_interp.report import markdown_table
    assert markdown_table(["a", "b"], [[1, 2.5]]) == "| a | b |\n|---|---|\n| 1 | 2.5 |"
    with pytest.raises(ValueError, match="rows"):
        markdown_table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="headers"):
        markdown_table([], [])


def test_chapter2_plots_and_widget(schedule, mixture):
    from mode_interp import smoothing
    from mode_interp.widgets import learned_vs_optimal_explorer
    model = lambda x, t: mi.optimal_eps(x.double(), t, mixture, schedule)  # noqa: E731
    curves = smoothing.denoiser_curves(model, mixture, schedule, [0, 9, 49], n_points=51)
    assert isinstance(plots.plot_learned_vs_optimal(curves, [0, 2]), Figure)
    assert isinstance(plots.plot_width_comparison([0, 1], [0.1, 0.2], [0.3, 0.4], 1.0), Figure)
    x = mixture.sample(500, torch.Generator().manual_seed(0))
    assert len(plots.plot_density({"a": x, "b": x[:100]}, mixture).axes[0].patches) >= 2
    g = mi.grid_25()
    xg = g.sample(300, torch.Generator().manual_seed(0))
    assert isinstance(plots.plot_scatter_2d([("g", xg, g, mi.is_hallucinated(xg, g))]), Figure)
    w = learned_vs_optimal_explorer(curves)
    slider, frames = w.children[0].children[0], _frames(w.children[1])
    assert len(slider.options) == 3 and len(frames) == 3 and all(f.value[:4] == b"\x89PNG" for f in frames)
    assert len({bytes(f.value) for f in frames}) == 3            # one frame per t, drawn from the curves
    with pytest.raises(ValueError, match="curves"):
        learned_vs_optimal_explorer({"ts": []})


def test_chapter4_plots_and_threshold_widget(schedule):
    from mode_interp import detect
    from mode_interp.widgets import threshold_explorer
    g = mi.grid_25()
    result = mi.sample(mi.exact_eps_fn(g, schedule), 200, 2, schedule, torch.Generator().manual_seed(0), window=12)
    scores = detect.hal(result.x0_hat, 10).numpy()
    labels = scores > float(torch.as_tensor(scores).median())        # any two classes will do for the plots
    panels = [("2-D", result.x0_hat, result.timesteps, {"a": [0, 1], "b": [2]}, g)]
    m1 = mi.mixture_1d()
    r1 = mi.sample(mi.exact_eps_fn(m1, schedule), 10, 1, schedule, torch.Generator().manual_seed(1), window=5)
    panels.append(("1-D", r1.x0_hat, r1.timesteps, {"a": [0], "b": [1, 2]}, m1))
    assert len(plots.plot_x0_hat_trajectories(panels).axes) == 2
    assert isinstance(plots.plot_score_histograms([("h", scores, labels, float(scores.mean()))]), Figure)
    roc = {**detect.roc_curve(scores, labels), "auroc": detect.auroc(scores, labels)}
    assert isinstance(plots.plot_roc({"x": roc}, {"x": (0.1, 0.9)}), Figure)
    assert isinstance(plots.plot_window_sensitivity([("L", [2, 5], {"x": [0.6, 0.9]})]), Figure)
    w = threshold_explorer(result.x0, g, scores, labels, float(scores.mean()), n_frames=4)
    slider, frames = w.children[0].children[0], _frames(w.children[1])
    assert len(frames) == len(slider.options) == 5               # 4 log-spaced thresholds and the given one
    assert _shown(w) is frames[[label for label, _ in slider.options].index(f"{float(scores.mean()):.2e}")]
    assert bytes(frames[0].value) != bytes(frames[-1].value)    # nothing removed at the top: another picture
    with pytest.raises(ValueError, match="threshold"):
        threshold_explorer(result.x0, g, scores, labels, float(scores.max()) * 10)
    with pytest.raises(ValueError, match="scores"):
        threshold_explorer(result.x0, g, scores[:5], labels, float(scores.mean()))


def test_chapter5_plots(tmp_path):
    import numpy as np

    from mode_interp import recursive as rec
    from mode_interp.train import ToyConfig

    for data in ("mixture_1d", "grid_25"):
        config = rec.LoopConfig(ToyConfig(data=data, n_train=64, steps=3, batch_size=32, width=8, T=20), generations=2,
                                window=5)
        loop = rec.run_loop(config, progress=False, directory=tmp_path)
        mixture = config.base.mixture()
        from mode_interp.experiments.loops import loop_rows
        rows = loop_rows(config, loop)
        assert isinstance(plots.plot_generation_curves([("hallucinated", rows, "hallucinated", False)]), Figure)
        label = lambda x: mi.is_hallucinated(x, mixture).numpy()      # noqa: E731
        fig = (plots.plot_generations_1d(loop, mixture) if data == "mixture_1d"
               else plots.plot_generations_2d(loop, mixture, label))
        assert isinstance(fig, Figure)
    curves, scatter = plots.plot_grid_loop(loop, rows, mixture, 5.0)       # the 2-D loop's two figures
    assert len(curves.axes) == 2 and [ax.get_ylabel() for ax in curves.axes][1].startswith("KL")
    assert len(scatter.axes) == len(plots.plot_generations_2d(loop, mixture, label).axes)
    partial = {"none": loop["none"], "variance": loop["variance"][:1], "random": []}    # a partly finished run
    fig = plots.plot_generations_2d(partial, mixture, label)
    assert sum(ax.axison for ax in fig.axes) == 3 and len(fig.axes) == 4   # the empty arm gets no row
    with pytest.raises(ValueError, match="no generation"):
        plots.plot_generations_2d({"none": []}, mixture, label)
    fig = plots.plot_digit_generations({"a": np.zeros((3, 28, 28)), "b": np.ones((12, 28, 28))})
    assert isinstance(fig, Figure) and len(fig.axes) == 20


def test_plot_loop_replicates_draws_both_panels_of_a_shipped_sweep():
    from mode_interp import loop_report as lr
    s = lr.load_sweep(Path(__file__).resolve().parents[1] / "sweeps" / "loop_1d.json")
    fig = plots.plot_loop_replicates(s, "1-D")
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and fig.get_suptitle() == "1-D"
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_ylabel() == "mode spread / σ"
    # each arm: one thin line per seed and the mean
    assert len(fig.axes[0].lines) == len(s.arms) * (len(s.seeds) + 1)
    # a seed whose pool holds no hallucination (loop_1d_long, seed 1, generation 0) stays on the panel at 0
    long = lr.load_sweep(Path(__file__).resolve().parents[1] / "sweeps" / "loop_1d_long.json")
    ax = plots.plot_loop_replicates(long).axes[0]
    assert min(long.by_arm("hallucinated")["none"][1][:, 0]) == 0
    assert ax.get_yscale() == "symlog" and ax.get_ylim()[0] == 0
    with pytest.raises(TypeError, match="load_sweep"):
        plots.plot_loop_replicates(s.records)
    with pytest.raises(TypeError, match="title"):
        plots.plot_loop_replicates(s, 3)


def test_sampler_grid_panels_share_a_y_axis_that_holds_every_panel():
    """Regression: the shared y-limit was fixed after the first panel, cutting the second panel's rates."""
    row = lambda name, steps, mean: {"sampler": name, "steps": steps, "mean": mean, "lo": mean, "hi": mean}  # noqa: E731
    low = [row("DDPM", 10, 0.05), row("DDPM", 1000, 0.0)]
    high = [row("DDPM", 10, 0.7), row("DDPM", 1000, 0.001)]
    fig = plots.plot_sampler_grid({"low": low, "high": high})
    for ax in fig.axes:
        assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= 0.7
