"""The book's explorers respond without a kernel: each is embedded, with its widget state, in a static page
that loads only the book's own require.js and widget manager, opened offline in headless Chromium, and
every slider and dropdown is moved; the image shown must change each time. (tests/test_book.py does the
same on the built book's pages.)"""

from __future__ import annotations

import json
import shutil

import ipywidgets
import numpy as np
import pytest
import torch
from ipywidgets.embed import embed_data

import mode_interp as mi
from browser import WIDGET_ASSETS, browser_page, explorers, move_every_control, require_chromium, served
from mode_interp import detect, smoothing
from mode_interp.widgets import (denoiser_explorer, frame_explorer, learned_vs_optimal_explorer, threshold_explorer,
                                 x0_hat_explorer)


def _explorer_widgets():
    schedule = mi.linear_schedule(1000)
    mixture = mi.mixture_1d()
    yield "denoiser", denoiser_explorer(schedule, ts=(0, 9, 49), gaps=(1.0, 2.0), sigmas=(0.05, 0.1))
    model = lambda x, t: mi.optimal_eps(x.double(), t, mixture, schedule) * 0.9  # noqa: E731
    yield "learned_vs_optimal", learned_vs_optimal_explorer(
        smoothing.denoiser_curves(model, mixture, schedule, [0, 9, 49], n_points=51))
    small = mi.linear_schedule(20)
    g = mi.grid_25()
    result = mi.sample(mi.exact_eps_fn(g, small), 120, 2, small, torch.Generator().manual_seed(0), window=10)
    scores = detect.hal(result.x0_hat).numpy()
    labels = scores > float(np.median(scores))
    yield "threshold", threshold_explorer(result.x0, g, scores, labels, float(np.median(scores)), n_frames=5)
    images = torch.rand(3, 40, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1       # (k, n, 8 x 8)
    yield "x0_hat", x0_hat_explorer(images, (2, 1, 0), {"valid": [0, 1], "hallucinated": [2, 3]}, per_group=2)


def _page(widget, folder) -> str:
    data = embed_data(views=[widget], state=ipywidgets.Widget.get_manager_state()["state"])
    for name in ("require.js", "embed-amd.js"):
        shutil.copy(WIDGET_ASSETS / name, folder / name)
    (folder / "index.html").write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><script src="require.js"></script>'
        '<script src="embed-amd.js"></script><script type="application/vnd.jupyter.widget-state+json">'
        f'{json.dumps(data["manager_state"])}</script></head><body><script type="application/vnd.jupyter.widget-view+json">'
        f'{json.dumps(data["view_specs"][0])}</script></body></html>')
    return "index.html"


@pytest.mark.parametrize("name, widget", list(_explorer_widgets()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_control_moves_the_figure_offline(name, widget, tmp_path):
    require_chromium()
    page_name = _page(widget, tmp_path)
    with served(tmp_path) as url, browser_page() as page:
        page.goto(f"{url}/{page_name}")
        found = explorers(page)
        assert len(found) == 1, f"{name}: found {len(found)} explorers"
        results = move_every_control(page, found[0])
        assert results and all(changed for _, changed in results), f"{name}: {results}"
        assert not page.blocked and not page.errors, (page.blocked, page.errors)


def test_frame_explorer_links_each_control_to_its_stacks():
    w = frame_explorer(lambda a, b: _fig(a + b), {"a": ("a", [("1", 1), ("2", 2)]), "b": ("b", [("x", 10), ("y", 20), ("z", 30)])},
                       {"b": 20})
    controls, top = w.children[0].children, w.children[1]
    assert [c.description for c in controls] == ["a", "b"] and isinstance(top, ipywidgets.Stack)
    assert len(top.children) == 2 and all(len(s.children) == 3 for s in top.children)
    assert controls[1].index == 1 and all(s.selected_index == 1 for s in top.children)
    pairs = {(link.source[0].description, id(link.target[0])) for link in w.links}
    assert len(w.links) == 1 + 2 and ("a", id(top)) in pairs
    frames = [bytes(img.value) for s in top.children for img in s.children]
    assert all(f[:4] == b"\x89PNG" for f in frames) and len(set(frames)) == 6     # one frame per (a, b)
    for bad, match in [({}, "axes"), ({"a": ("a", [])}, "no values")]:
        with pytest.raises(ValueError, match=match):
            frame_explorer(lambda a: _fig(a), bad)
    with pytest.raises(ValueError, match="initial"):
        frame_explorer(lambda a: _fig(a), {"a": ("a", [("1", 1)])}, {"a": 5})


def _fig(value):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().set_title(str(value))
    return fig
