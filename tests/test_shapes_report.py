"""Chapter 3's measurement functions (``mode_interp.shapes_report``, ``mode_interp.shapes.hand_built``): the
values they return, checked against the counter, the sampler and the feature geometry they summarise, and
their input checks. Models here are tiny (a few training steps), except where the shipped one is read."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mode_interp import cache, shape_counter as sc, shapes_report as sr
from mode_interp.diffusion import SampleResult
from mode_interp.features import segment_coordinates
from mode_interp.image_train import ShapesConfig, load_or_train_shapes, train_shapes
from mode_interp.shapes import draw_panel, hand_built, simple_shapes, to_intensity, to_model_space
from mode_interp.train import SHIPPED_DIR

TINY = dict(n_images=64, channels=(8, 16), batch_size=16)


@pytest.fixture(scope="module")
def data():
    return simple_shapes(300, np.random.default_rng(0))


@pytest.fixture(scope="module")
def x_train(data):
    return to_model_space(data.images, 32)


@pytest.fixture(scope="module")
def tol(data, x_train):
    return sc.fit_tolerances(data, x_train)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return load_or_train_shapes(ShapesConfig(steps=3, **TINY), progress=False,
                                directory=tmp_path_factory.mktemp("tiny"), shipped=False)


def fake_generated(x, readings) -> sr.Generated:
    return sr.Generated(SampleResult(x.reshape(len(x), -1), None, ()), readings, 1.5)


def reading(label, counts, malformed=0):
    return {"label": label, "counts": counts, "malformed": malformed, "specks": 0}


# ---------------------------------------------------------------- hand_built

def test_hand_built_draws_each_part_in_its_column(tol):
    one = hand_built(("square", 3, 10))
    assert one.shape == (1, 1, 32, 32)
    assert to_intensity(one).sum() * 4 == pytest.approx(64)                 # 8 x 8 px, soft area kept
    image = np.zeros((64, 64), np.uint8)
    image[:63, 21:42] = draw_panel("square", 3, 10)
    torch.testing.assert_close(hand_built(("square", 3, 10), resolution=64), to_model_space(image[None], 64))
    two = hand_built(("square", 3, 4), ("square", 3, 40), ("triangle", 2, 2))
    assert sc.count_shapes(two, tol)[0]["counts"] == (1, 2, 0)
    assert sc.count_shapes(two, tol)[0]["label"] == "hallucinated"
    merged = hand_built(("square", 3, 10), ("square", 3, 17))               # overlapping copies: one blob
    assert sc.count_shapes(merged, tol)[0]["label"] == "malformed"
    noisy = hand_built(("square", 3, 10), noise=0.15, seed=2)
    torch.testing.assert_close(noisy, hand_built(("square", 3, 10), noise=0.15, seed=2))
    assert 0.1 < float((noisy - one).std()) < 0.2
    assert float(hand_built().max()) == -1.0                                 # no part: a black image


@pytest.mark.parametrize("kwargs, parts, name", [
    ({}, (("circle", 1, 1),), "kind"),
    ({}, (("square", 0, 10),), "x"),
    ({}, (("square", 3, 60),), "y"),
    ({}, (("square", 3),), "parts"),
    ({}, ("square",), "parts"),
    ({"noise": -0.1}, (("square", 3, 10),), "noise"),
    ({"seed": -1}, (("square", 3, 10),), "seed"),
    ({"resolution": 48}, (("square", 3, 10),), "resolution"),
])
def test_hand_built_bad_input(kwargs, parts, name):
    with pytest.raises(ValueError, match=name):
        hand_built(*parts, **kwargs)


# ---------------------------------------------------------------- tables and training-set numbers

def test_composition_and_tolerance_tables(data, tol):
    lines = sr.composition_table(data).splitlines()
    assert len(lines) == 2 + len(data.composition()) == 9
    share = data.composition()[("square",)]
    row = next(line for line in lines if line.startswith("| square |"))
    assert row == f"| square | {round(share * 300):,} | {share:.1%} | 14.3% |"
    lines = sr.tolerance_table(tol).splitlines()
    assert len(lines) == 5 and lines[3] == f"| 1 | square | {tol.area[1][0]:.1f} – {tol.area[1][1]:.1f} |"


def test_training_numbers_read_the_training_set_back(data, x_train, tol):
    out = sr.training_numbers(data, x_train, tol)
    assert out == {"n_images": 300, "n_combinations": 7, "train_valid": 300, "train_hallucinated": 0,
                   "train_malformed": 0, "train_noisy": 0, "train_exact": 300}
    swapped = x_train.clone()
    swapped[0] = hand_built(("square", 3, 4), ("square", 3, 40))[0]          # one image replaced
    out = sr.training_numbers(data, swapped, tol)
    assert out["train_hallucinated"] == 1 and out["train_exact"] <= 299
    with pytest.raises(ValueError, match="x"):
        sr.training_numbers(data, x_train[:10], tol)
    with pytest.raises(TypeError, match="tol"):
        sr.training_numbers(data, x_train, None)


# ---------------------------------------------------------------- generated images: numbers and tables

def test_generated_numbers_and_tables():
    readings = ([reading("valid", (1, 0, 1))] * 6 + [reading("hallucinated", (0, 2, 0)),
                reading("hallucinated", (2, 2, 0)), reading("hallucinated", (1, 1, 1)),
                reading("malformed", (0, 0, 0)), reading("malformed", (1, 0, 0), malformed=1),
                reading("noisy", (0, 1, 0))])
    g = fake_generated(torch.zeros(12, 1, 32, 32), readings)
    out = g.numbers(1.96)
    assert out["n_generated"] == 12 and out["valid_count"] == 6 and out["valid_rate"] == 0.5
    assert (out["hallucinated_lo"], out["hallucinated_hi"]) == pytest.approx(sr.wilson_interval(3, 12, 1.96))
    assert (out["multi_triangle"], out["multi_square"], out["multi_pentagon"], out["multi_total"]) == (1, 2, 0, 3)
    assert out["unseen_combination"] == 1 and out["blank"] == 1 and out["noisy_count"] == 1
    assert list(g.indices("hallucinated")["hallucinated"]) == [6, 7, 8]
    training = {"n_images": 300, **{f"train_{name}": 0 for name in sc.LABELS}, "train_valid": 300}
    lines = sr.label_table(out, training).splitlines()
    assert lines[2] == f"| valid | 6 | 50.0% | [{out['valid_lo']:.1%}, {out['valid_hi']:.1%}] | 300 of 300 |"
    lines = sr.hallucination_table(out).splitlines()
    assert lines[3] == "| ≥ 2 squares in one column | 2 |" and lines[-1].endswith("| 1 |")
    figures = sr.label_grids(g, most=(("valid", 4), ("hallucinated", 8)))
    assert len(figures) == 2 and "hallucinated: 3 of 12 (first 3 shown)" in figures[1].texts[0].get_text()
    with pytest.raises(ValueError, match="names"):
        g.indices("odd")
    with pytest.raises(ValueError, match="z"):
        g.numbers(0)
    with pytest.raises(ValueError, match="readings"):
        fake_generated(torch.zeros(1, 1, 32, 32), []).numbers()
    with pytest.raises(TypeError, match="generated"):
        sr.label_grids(readings)


def test_plot_readings_titles(tol):
    fig = sr.plot_readings({"two squares": hand_built(("square", 3, 4), ("square", 3, 40)),
                            "one square": hand_built(("square", 3, 10))}, tol)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "two squares\n→ hallucinated (0, 2, 0)" and titles[1] == "one square\n→ valid (0, 1, 0)"
    with pytest.raises(ValueError, match="examples"):
        sr.plot_readings({}, tol)


# ---------------------------------------------------------------- with a (tiny) model

def test_generate_reads_the_seeded_samples(tiny, tol):
    g = sr.generate(tiny, tol, 6, seed=1, steps=5, window=2)
    again = tiny.sample(6, 1, steps=5)
    torch.testing.assert_close(g.result.x0, again.x0)
    assert g.readings == sc.count_shapes(again.x0, tol) and g.seconds > 0
    assert g.result.x0_hat.shape == (2, 6, 32 * 32)
    with pytest.raises(TypeError, match="trained"):
        sr.generate(tiny.model, tol, 6, seed=1)


def test_model_numbers_of_a_model_trained_here(tiny):
    out = sr.model_numbers(tiny)
    assert out["n_params"] == sum(p.numel() for p in tiny.model.parameters())
    assert out["steps"] == 3 and out["source"] == "trained in this run" and "command:" not in out["model_summary"]


def test_model_numbers_of_the_shipped_model(tmp_path):
    config = ShapesConfig()
    if not (SHIPPED_DIR / cache.file_name(config.to_dict(), "shapes-unet")).exists():
        pytest.skip("the shipped SIMPLE SHAPES checkpoint is not in this checkout")
    out = sr.model_numbers(load_or_train_shapes(config, progress=False, directory=tmp_path))
    assert out["n_params"] == 402_929 and out["steps"] == 3_000 and out["source"] == "shipped checkpoint"
    assert "command: python -m mode_interp.image_train" in out["model_summary"]


def test_smoke_training_reports_the_losses_of_train_shapes(tmp_path):
    config = ShapesConfig(steps=7, **TINY)
    out = sr.smoke_training(config, 100)
    straight = train_shapes(replace(config, steps=100), progress=False, directory=tmp_path)
    assert (out["smoke_first"], out["smoke_last"]) == pytest.approx((straight.losses[0], straight.losses[1]))
    assert out["steps_smoke"] == 100 and out["smoke_step_seconds"] == pytest.approx(out["smoke_seconds"] / 100)
    assert out["smoke_last"] < out["smoke_first"]
    with pytest.raises(ValueError, match="steps"):
        sr.smoke_training(config, 10)


def test_square_positions_geometry(tiny, data, x_train):
    two = torch.cat([hand_built(("square", 2, 5), ("square", 4, 40)), hand_built(("square", 3, 8))])
    g = fake_generated(two, [reading("hallucinated", (0, 2, 0)), reading("valid", (0, 1, 0))])
    pos = sr.square_positions(tiny.model, data, x_train, g, seed=4, n_hand=5)
    top, bottom, hand, gen = sr.GROUPS
    assert float(pos.lam[top].mean()) == pytest.approx(0.0, abs=1e-9)       # the centroids: 0 and 1
    assert float(pos.lam[bottom].mean()) == pytest.approx(1.0, abs=1e-9)
    assert len(pos.features[hand]) == 5 and len(pos.features[gen]) == 1
    lam, d = segment_coordinates(pos.features[gen], pos.features[top], pos.features[bottom])
    torch.testing.assert_close(pos.lam[gen], lam)
    again = sr.square_positions(tiny.model, data, x_train, g, seed=4, n_hand=5)
    torch.testing.assert_close(again.features[hand], pos.features[hand])    # the hand-built set is seeded
    out = pos.numbers()
    assert out["n_generated_two"] == 1 and out["gen_lambda"] == f"{float(lam.median()):.2f}"
    assert out["hand_lambda"] == pytest.approx(float(pos.lam[hand].median()))
    assert len(pos.table().splitlines()) == 6
    proj = pos.projection()
    assert list(proj) == ["one square, top", "one square, bottom", "hand-built two squares",
                          "generated two squares"]
    none = sr.square_positions(tiny.model, data, x_train, fake_generated(two[1:], g.readings[1:]), n_hand=3)
    assert none.numbers()["gen_lambda"] == "(none generated)" and none.numbers()["n_generated_two"] == 0
    assert none.table().splitlines()[-1] == "| generated: two squares | 0 | – | – | – |"
    assert "not clearly between" in none.numbers()["between_verdict"] and len(none.projection()) == 3
    with pytest.raises(ValueError, match="x_train"):
        sr.square_positions(tiny.model, data, x_train[:5], g)
    with pytest.raises(ValueError, match="n_hand"):
        sr.square_positions(tiny.model, data, x_train, g, n_hand=0)


def test_square_positions_verdict():
    f = torch.zeros(3, 2)
    groups = dict(zip(sr.GROUPS, (f, f, f, f)))
    between = sr.SquarePositions(groups, dict(zip(sr.GROUPS, (None, None, torch.tensor([0.4, 0.5, 0.6]),
                                                               torch.tensor([0.3, 0.7, 0.75])))), {})
    assert between.numbers()["between_verdict"].startswith("between the two")
    assert between.numbers()["gen_lambda"] == "0.70" and between.numbers()["hand_lambda"] == pytest.approx(0.5)
    outside = sr.SquarePositions(groups, dict(zip(sr.GROUPS, (None, None, torch.tensor([0.4, 0.5, 0.6]),
                                                               torch.tensor([0.9, 0.95, 1.0])))), {})
    assert outside.numbers()["between_verdict"].startswith("not clearly between")


def test_the_chapters_dicts_glue_under_distinct_keys(tiny, data, x_train, tol):
    """Chapter 3 glues these dicts under one prefix: a key in two of them is a duplicate glue key, which
    fails the -W book build."""
    f = torch.zeros(3, 2)
    positions = sr.SquarePositions(dict(zip(sr.GROUPS, (f, f, f, f))),
                                   dict(zip(sr.GROUPS, (None, None, torch.ones(3), None))), {})
    dicts = [sr.training_numbers(data, x_train, tol), sr.model_numbers(tiny),
             sr.smoke_training(ShapesConfig(steps=3, **TINY), 50),
             fake_generated(torch.zeros(1, 1, 32, 32), [reading("valid", (0, 1, 0))]).numbers(),
             positions.numbers(),
             {"mode": "", "resolution": 0, "n_samples": 0, "sample_steps": 0, "window": 0, "engine": "",
              "sample_seconds": 0.0}]                                   # glued by the chapter itself
    keys = [k for d in dicts for k in d]
    assert len(keys) == len(set(keys)), sorted(k for k in set(keys) if keys.count(k) > 1)


@pytest.mark.parametrize("call, exc, name", [
    (lambda d, x, t: sr.training_numbers(d, torch.zeros(0, 1, 32, 32), t), ValueError, "x"),
    (lambda d, x, t: sr.training_numbers(d, x.numpy(), t), TypeError, "x"),
    (lambda d, x, t: sr.training_numbers(d, torch.full_like(x, float("nan")), t), ValueError, "x"),
    (lambda d, x, t: sr.training_numbers(None, x, t), TypeError, "data"),
    (lambda d, x, t: sr.composition_table(x), TypeError, "data"),
    (lambda d, x, t: sr.tolerance_table({}), TypeError, "tol"),
    (lambda d, x, t: sr.plot_readings({"a": "image"}, t), TypeError, "examples"),
    (lambda d, x, t: sr.plot_readings([x[:1]], t), TypeError, "examples"),
    (lambda d, x, t: sr.label_table([], {}), TypeError, "numbers"),
    (lambda d, x, t: sr.label_table({}, []), TypeError, "training"),
    (lambda d, x, t: sr.hallucination_table(None), TypeError, "numbers"),
    (lambda d, x, t: sr.smoke_training(None, 100), TypeError, "config"),
    (lambda d, x, t: sr.model_numbers(None), TypeError, "trained"),
])
def test_bad_input_names_the_parameter(data, x_train, tol, call, exc, name):
    with pytest.raises(exc, match=name):
        call(data, x_train, tol)
