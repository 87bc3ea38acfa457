"""Chapter 4's study functions (mode_interp.detector_study) on hand-made inputs whose numbers are known."""
import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from mode_interp import detect, detector_study as ds
from mode_interp.image_train import ShapesConfig, TrainedUNet, _new_model
from mode_interp.shape_counter import LABELS as SHAPE_LABELS, fit_tolerances
from mode_interp.shapes import column_regions, to_model_space
from mode_interp.shapes_report import generate
from mode_interp.stats import wilson_interval
from mode_interp.train import ToyConfig, TrainedModel

# ---------------------------------------------------------------- hand-made inputs

# 4 hallucinated scores (10, 9, 8, 3) and 6 in-support ones (1, 2, 4, 5, 6, 9.5)
SCORES = np.array([10, 9, 8, 3, 1, 2, 4, 5, 6, 9.5])
LABELS = np.array([True] * 4 + [False] * 6)


def _record(name="1-D", n=40, seed=0, k=12):
    """A toy record by hand: 1-D mixture {1, 2, 3}; every 4th sample hallucinated, its x0_hat swinging."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4 == 0
    x0 = torch.as_tensor(np.where(labels, 1.5, 2.0 + 0.01 * rng.standard_normal(n)))[:, None]
    swing = np.where(labels, 0.3, 0.01)[None, :] * rng.standard_normal((k, n))
    x0_hat = (x0.T + torch.as_tensor(swing))[:, :, None]
    cfg = ToyConfig()
    return {"name": name, "config": cfg, "mixture": cfg.mixture(), "n": n, "x0": x0, "x0_hat": x0_hat,
            "timesteps": tuple(range(k - 1, -1, -1)), "labels": labels, "hal": detect.hal(x0_hat, 10).numpy(),
            "x_t_var": rng.random(n), "source": "by hand", "seconds": 1.5, "stream_error": 1e-9, "gap": 1.0}


@pytest.fixture(scope="module")
def toy():
    return {"1d": _record("1-D", 40, 0), "2d": _record("other", 48, 1)}


# ---------------------------------------------------------------- the filter and its readings

def test_filter_at_removal_by_hand():
    s = ds.filter_at_removal(SCORES, LABELS, target=0.75, z=3.29)
    # remove 3 of 4 hallucinations: threshold just below 8; removes 10, 9, 8 and the in-support 9.5
    assert s["threshold"] == np.nextafter(8.0, -np.inf)
    assert (s["n_removed"], s["removed"]) == (3, 0.75)
    assert (s["n_retained"], s["retained"]) == (5, 5 / 6)
    assert (s["retained_lo"], s["retained_hi"]) == wilson_interval(5, 6, 3.29)
    # AUROC: pairs (hal > in): 10, 9, 8 beat all 6 but 10 > 9.5 only for 10: 6 + 5 + 5 + 2 = 18 of 24
    assert s["auroc"] == pytest.approx(18 / 24)
    # the removal-safe threshold: 4 hallucinations cannot place the 25% quantile at 95% (0.75^4 > 5%)
    assert s["bound"]["rank"] == 0 and ds.bound_text(s["bound"]) == "none (4 hallucinations: too few)"
    with pytest.raises(ValueError, match="both classes"):
        ds.filter_at_removal(SCORES, np.zeros(10, dtype=bool))


def test_filter_table_formats_the_numbers():
    text = ds.filter_table([("data A", "last 10", ds.filter_at_removal(SCORES, LABELS, 0.75))])
    assert text.splitlines()[0].startswith("| data | window | samples |")
    assert "| data A | last 10 | 10 | 4 | 75.0% (3) | 83.3% [" in text


@pytest.mark.parametrize("retained, vs, short", [
    (0.97, "at or above the paper's 96%", "as good as the paper's 96%"),
    (0.96, "at or above the paper's 96%", "as good as the paper's 96%"),
    (0.93, "3.0% below the paper's 96%", "3.0% short of the paper's 96%, and still above the 90% this book asks for"),
    (0.85, "11.0% below the paper's 96%", "11.0% short of the paper's 96%, and below the 90% this book asks for"),
])
def test_text_readings(retained, vs, short):
    assert ds.vs_paper_text(retained) == vs
    assert ds.shortfall_text(retained) == short


def test_text_readings_refuse_bad_shares():
    with pytest.raises(ValueError, match="retained"):
        ds.vs_paper_text(1.5)
    with pytest.raises(ValueError, match="book"):
        ds.shortfall_text(0.9, book=-0.1)


def test_false_positives_by_hand():
    mix = mi.GaussianMixture(np.array([[0.0], [1.0]]), 0.1)
    x0 = torch.tensor([[0.0], [0.05], [0.5], [1.0], [1.4], [0.95]], dtype=torch.float64)
    labels = np.array([False, False, True, False, False, False])     # 1.4 is 4 sigma out, but labelled in support
    scores = np.array([0.0, 5.0, 9.0, 0.0, 5.0, 0.0])                   # threshold 1: removes 0.05, 0.5, 1.4
    fp = ds.false_positives(x0, mix, scores, labels, threshold=1.0)
    # removed in support: 0.05 (0.5 sigma) and 1.4 (4 sigma): half within 3 sigma
    assert fp["fp_within3"] == 0.5
    # mode 0 loses 1 of its 2 in-support samples, mode 1 one of its 3
    assert fp["worst_mode"] == "(0.00)"
    assert fp["worst_mode_loss"] == 0.5
    assert fp["median_mode_loss"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert fp["origin_mode_loss"] == 0.5                                # the mode at 0
    assert ds.false_positives(x0, mix, scores, labels, 1.0, within=5)["fp_within5"] == 1.0
    assert math.isnan(ds.false_positives(x0, mix, scores, labels, 100.0)["fp_within3"])   # nothing removed
    with pytest.raises(ValueError, match="samples"):
        ds.false_positives(x0[:5], mix, scores, labels, 1.0)


def test_median_ratio_and_step_noise():
    assert ds.median_ratio([10, 20, 30, 1, 2, 3], [1, 1, 1, 0, 0, 0]) == 10.0
    sched = mi.linear_schedule()
    noise = ds.step_noise(sched, 10)
    assert noise == {"noise_0": pytest.approx(math.sqrt(1e-3)), "noise_9": pytest.approx(math.sqrt(sched.betas[9]))}
    with pytest.raises(ValueError, match="hal_window"):
        ds.step_noise(sched, 1)


def test_record_numbers_and_tables(toy):
    assert ds.run_numbers(toy) == {"1d_n": 40, "1d_n_hal": 10, "2d_n": 48, "2d_n_hal": 12}
    ratios = ds.median_ratios(toy)
    assert set(ratios) == {"1d_median_ratio", "2d_median_ratio"} and all(r > 10 for r in ratios.values())
    table = ds.runs_table(toy, 5.0)
    assert "hallucinated (> 5σ)" in table and "| 1-D | 40 | 10 (25.00%) | by hand | 2 s | 1.0e-09 |" in table
    with pytest.raises(TypeError, match="toy"):
        ds.run_numbers([toy["1d"]])
    with pytest.raises(ValueError, match="toy"):
        ds.run_numbers({})


def test_trajectory_panels_draw_from_each_class(toy):
    panels = ds.trajectory_panels(toy, seed=3, per_group=(4, 2))
    again = ds.trajectory_panels(toy, seed=3, per_group=(4, 2))
    assert [p[0] for p in panels] == ["1-D: last 12 steps", "other: last 12 steps"]
    for (title, x0_hat, ts, groups, mix), d, again_p in zip(panels, toy.values(), again):
        assert len(groups["hallucinated"]) == 4 and len(set(groups["hallucinated"])) == 4
        assert d["labels"][groups["hallucinated"]].all() and not d["labels"][groups["in support"]].any()
        assert np.array_equal(groups["in support"], again_p[3]["in support"])    # the same seed, the same draw


def test_filter_numbers_histograms_and_roc(toy):
    summaries = {k: ds.filter_at_removal(d["hal"], d["labels"], 0.95) for k, d in toy.items()}
    numbers = ds.filter_numbers(toy, summaries)
    for k, d in toy.items():
        s = summaries[k]
        assert numbers[f"{k}_retained"] == s["retained"] and numbers[f"{k}_lo"] == s["lo"]
        assert numbers[f"{k}_vs_paper"] == ds.vs_paper_text(s["retained"])
        fp = ds.false_positives(d["x0"], d["mixture"], d["hal"], d["labels"], s["threshold"])
        assert numbers[f"{k}_worst_mode"] == fp["worst_mode"]
    assert {"1d_shortfall", "2d_fp_within3", "2d_median_mode_loss"} <= set(numbers)
    panels = ds.histogram_panels(toy, summaries, title="Hal")
    assert [p[0] for p in panels] == ["1-D: Hal", "other: Hal"] and panels[0][3] == summaries["1d"]["threshold"]
    curves, points = ds.roc_inputs(toy, summaries)
    assert curves["1-D"]["auroc"] == summaries["1d"]["auroc"]
    assert points["other"] == (1 - summaries["2d"]["retained"], summaries["2d"]["removed"])
    with pytest.raises(ValueError, match="summaries"):
        ds.filter_numbers(toy, {"1d": summaries["1d"]})


# ---------------------------------------------------------------- the window study

def test_window_study_sees_where_the_swing_is():
    # 20 recorded steps, 6 samples: the 3 hallucinated ones swing +-1 over timesteps 0..4 only
    k, n = 20, 6
    labels = np.array([True, True, True, False, False, False])
    x0_hat = torch.zeros(k, n, 1, dtype=torch.float64)
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    x0_hat[-5:, :3, 0] = sign[:, None] * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    study = ds.window_study(x0_hat, labels, lengths=(2, 5), offsets=(0, 10, 15), hal_window=5, target=0.95)
    assert [s["auroc"] for s in study["by_length"]] == [1.0, 1.0]
    assert [s["retained"] for s in study["by_length"]] == [1.0, 1.0]
    assert study["by_offset"] == [1.0, 0.5, 0.5]          # before t = 5 nothing moves: every score ties
    numbers = ds.window_numbers({"a": study})
    assert numbers == {"longest": 5, "offset_far": 10, "a_auc_shortest": 1.0, "a_auc_longest": 1.0, "a_auc_far": 0.5}
    with pytest.raises(ValueError, match="lengths"):
        ds.window_study(x0_hat, labels, lengths=(1, 5))
    with pytest.raises(ValueError, match="offsets"):
        ds.window_study(x0_hat, labels, offsets=(0,))


def test_window_tables_and_panels(toy):
    studies = {k: ds.window_study(d["x0_hat"], d["labels"], (2, 10), (0, 1, 2), 10) for k, d in toy.items()}
    table = ds.window_length_table(toy, studies, 0.95)
    assert "1-D: AUROC / retained at 95% removed" in table and "| L = 10 |" in table
    (xl, xs, series), (xl2, xs2, series2) = ds.window_sensitivity_panels(toy, studies, 10)
    assert xs == [2, 10] and xs2 == [0, 1, 2] and set(series) == {"1-D", "other"}
    assert series2["other"] == studies["2d"]["by_offset"] and xl2 == "start of a 10-step window (t)"


def test_window_choice_matches_its_definition(toy):
    choices = ds.window_choice(toy, lengths=(2, 5, 10), width_ratio=0.1, calibration_share=0.5, target=0.95, seed=7)
    rng = np.random.default_rng(7)
    for k, d in toy.items():
        c = choices[k]
        assert c["L"] == 10                                 # the paper's 1-D constants give the paper's window
        assert np.array_equal(c["hal"], detect.hal(d["x0_hat"], 10).numpy())
        assert c["matched"] == ds.filter_at_removal(c["hal"], d["labels"], 0.95)
        cal = rng.random(d["n"]) < 0.5                       # one generator over the records, in order
        held = detect.held_out_filter({f"last {n}": detect.hal(d["x0_hat"], n) for n in (2, 5, 10)}, d["labels"],
                                      cal, 0.95)
        assert c["held"]["choice"] == held["choice"] and c["held"]["held_out"] == held["held_out"]
    numbers = ds.window_choice_numbers(choices)
    assert numbers["L_1d"] == 10 and numbers["2d_held_choice"] == choices["2d"]["held"]["choice"]
    assert numbers["1d_matched_retained"] == choices["1d"]["matched"]["retained"]
    assert "| 1-D | " + choices["1d"]["held"]["choice"] + " |" in ds.held_out_table(toy, choices)
    with pytest.raises(ValueError, match="calibration_share"):
        ds.window_choice(toy, calibration_share=1.0)


# ---------------------------------------------------------------- SIMPLE SHAPES

def test_shapes_scores_by_hand():
    # 3 images of 32 x 32, 4 recorded steps: in image 0 one pixel of the middle column swings +-a
    k, n, res, a = 4, 3, 32, 0.5
    x0_hat = torch.zeros(k, n, res * res, dtype=torch.float64)
    regions = column_regions(res)
    pixel = int(np.flatnonzero(regions == 1)[0])
    x0_hat[:, 0, pixel] = torch.tensor([a, -a, a, -a], dtype=torch.float64)
    ink = np.array([[0.0, 4.0, 0.0], [1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    scores = ds.shapes_scores(x0_hat, ink, hal_window=4)
    assert list(scores) == list(ds.SHAPE_SCORES.values())
    hal, col, unit, area = scores.values()
    assert hal[0] == pytest.approx(a * a / res ** 2) and hal[1] == 0.0
    assert col[0] == pytest.approx(a * a / (regions == 1).sum())
    assert unit[0] == pytest.approx(col[0] / 4.0)
    assert list(area) == [4.0, 3.0, 0.5]
    with pytest.raises(ValueError, match="ink"):
        ds.shapes_scores(x0_hat, ink[:2], 4)
    with pytest.raises(ValueError, match="square"):
        ds.shapes_scores(torch.zeros(4, 3, 10, dtype=torch.float64), ink, 4)


def test_score_filters_with_strata():
    # one hallucinated and one valid image per stratum (number of shapes): the hallucinated one scores higher
    # in strata 1 and 2, lower in stratum 3; overall 5 of the 9 pairs are ordered right
    scores = {"s": np.array([0.2, 0.1, 0.9, 0.8, 0.3, 0.25])}
    labels = np.array([True, False, True, False, False, True])
    strata = np.array([1, 1, 2, 2, 3, 3])
    out = ds.score_filters(scores, labels, strata, target=0.95)
    assert out["s"]["matched"]["auroc"] == pytest.approx(2 / 3)      # strata 1, 2 right, stratum 3 wrong
    assert out["s"]["matched"]["n_pairs"] == 3
    assert out["s"]["auroc"] == pytest.approx(5 / 9) == detect.auroc(scores["s"], labels)
    assert out["s"]["retained_lo"] <= out["s"]["retained"] <= out["s"]["retained_hi"]


def _results(hal_matched_lo, unit_lo, ink_auroc):
    r = {name: {"auroc": 0.8, "lo": 0.7, "hi": 0.9, "retained": 0.5, "retained_lo": 0.4, "retained_hi": 0.6,
                "removed": 0.95, "n_removed": 19, "threshold": 1.0,
                "matched": {"auroc": 0.6, "lo": 0.55, "hi": 0.65, "n_hallucinated": 20, "n_in_support": 30}}
         for name in ds.SHAPE_SCORES.values()}
    r[ds.SHAPE_SCORES["hal"]]["matched"] = {**r[ds.SHAPE_SCORES["hal"]]["matched"], "lo": hal_matched_lo}
    r[ds.SHAPE_SCORES["unit"]] = {**r[ds.SHAPE_SCORES["unit"]], "lo": unit_lo}
    r[ds.SHAPE_SCORES["ink"]] = {**r[ds.SHAPE_SCORES["ink"]], "auroc": ink_auroc}
    return r


def test_ink_verdict_and_readings():
    assert ds.ink_explains(_results(0.45, 0.5, 0.9))
    assert not ds.ink_explains(_results(0.51, 0.4, 0.9))    # whole-image Hal survives count matching
    assert not ds.ink_explains(_results(0.45, 0.51, 0.9))   # per-ink Hal above chance
    assert not ds.ink_explains(_results(0.45, 0.4, 0.79))   # the ink baseline is not the best score
    assert ds.shapes_verdict(_results(0.45, 0.5, 0.9)) == "most of it is the amount of shape, not trajectory instability"
    assert ds.shapes_verdict(_results(0.6, 0.5, 0.9)) == "part of it survives the ink baselines (see §4.5)"
    r = {"matched": {"auroc": 0.61, "lo": 0.52, "hi": 0.7}}
    assert ds.signal_left(r) == "survives count matching (AUROC 0.610, interval [0.520, 0.700] above 0.5)"
    r["matched"]["lo"] = 0.5
    assert ds.signal_left(r).startswith("does not survive count matching (AUROC 0.610, interval [0.500, 0.700]")
    shapes = {"n": 50, "steps": 100, "seconds": 3.2, "labels": np.array([True] * 20 + [False] * 30),
              "label_all": np.array(["valid"] * 30 + ["hallucinated"] * 20 + ["noisy"] * 5),
              "results": _results(0.45, 0.5, 0.9)}
    reading = ds.shapes_reading(shapes)
    assert reading.startswith("**Reading.** Of 50 generated images, 20 are hallucinated and 30 valid.")
    assert "largely because they hold more shape" in reading
    assert "Part of the trajectory signal survives" in ds.shapes_reading({**shapes, "results": _results(0.6, 0.5, 0.9)})
    assert ds.shapes_summary_line(shapes) == ("50 images x 100 steps in 3 s | labels: valid 30, hallucinated 20, "
                                             "malformed 0, noisy 5")
    numbers = ds.shapes_numbers(shapes)
    assert (numbers["shapes_n_hal"], numbers["shapes_n_valid"], numbers["shapes_steps"]) == (20, 30, 100)
    assert numbers["shapes_ink_auroc"] == 0.9 and numbers["shapes_hal_matched_lo"] == 0.45
    assert numbers["shapes_verdict"] == ds.shapes_verdict(shapes["results"])
    assert "| Hal, largest column | 95.0% (19) | 50.0% [40.0%, 60.0%] | 0.800 [0.700, 0.900] | 0.600 [0.550, 0.650] (20 vs 30) |" \
        in ds.shapes_table(shapes)


# ---------------------------------------------------------------- alternative scores

def test_alternative_verdicts_by_hand():
    iv = lambda a, lo, hi: {"auroc": a, "lo": lo, "hi": hi}  # noqa: E731
    alt = {"A": {"Hal (paper)": iv(0.9, 0.88, 0.92), "normalised Hal": iv(0.8, 0.7, 0.85)},
           "B": {"Hal (paper)": iv(0.9, 0.88, 0.92), "normalised Hal": iv(0.95, 0.93, 0.97)},
           "C": {"Hal (paper)": iv(0.9, 0.85, 0.95), "normalised Hal": iv(0.91, 0.86, 0.96)}}
    assert ds.alternative_verdicts(alt) == [
        "A: the paper's Hal is best",
        "B: normalised Hal is best (0.950 vs 0.900; disjoint intervals)",
        "C: normalised Hal is best (0.910 vs 0.900; overlapping intervals, so not a clear win)"]
    table = ds.alternative_table(alt)
    assert table.splitlines()[0] == "| data | Hal (paper) | normalised Hal |"
    assert "| B | 0.900 [0.880, 0.920] | 0.950 [0.930, 0.970] |" in table


def test_alternative_scores_on_records(toy):
    alt = ds.alternative_scores(toy, None, hal_window=10)
    assert list(alt) == ["1-D", "other"]
    d = toy["1d"]
    assert alt["1-D"]["Hal (paper)"] == detect.auroc_interval(d["hal"], d["labels"])
    assert alt["1-D"]["variance of x_t"] == detect.auroc_interval(d["x_t_var"], d["labels"])
    norm = detect.normalised_hal(d["x0_hat"], d["config"].schedule(), d["timesteps"], 10)
    assert alt["1-D"]["normalised Hal"] == detect.auroc_interval(norm.numpy(), d["labels"])


def test_paper_summary_table():
    text = ds.paper_summary_table([("1-D mixture", "last 10 (paper)", ds.filter_at_removal(SCORES, LABELS, 0.75))])
    assert text.splitlines()[2].startswith("| 1-D mixture | last 10 (paper) | 10 | 4 | 75.0% | 83.3% | 0.750 [")
    assert text.splitlines()[2].endswith("| > 95% removed, 96% retained (aggregate) |")


# ---------------------------------------------------------------- sampling (small, untrained models)

def test_toy_run_on_an_untrained_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    cfg = ToyConfig(T=40, width=8, n_blocks=1)
    torch.manual_seed(0)
    trained = TrainedModel(cfg.build_model(), cfg)
    rec = ds.toy_run(trained, 64, seed=1, name="tiny", k_label=5.0, hal_window=6, window_max=12)
    assert rec["x0_hat"].shape == (12, 64, 1) and rec["timesteps"][-1] == 0
    assert rec["stream_error"] < 1e-6                         # Welford equals the recorded window
    assert np.array_equal(rec["hal"], detect.hal(rec["x0_hat"], 6).numpy())
    assert np.array_equal(rec["labels"], mi.is_hallucinated(rec["x0"], cfg.mixture(), 5.0).numpy())
    assert rec["gap"] == pytest.approx(1.0) and rec["n"] == 64 and rec["x_t_var"].shape == (64,)
    live_x_t = detect.WindowVariance(64, 1, 6, of="x_t")     # x_t's variance as an observer sees it, live
    trained.sample(64, 1, window=12, observer=live_x_t)
    np.testing.assert_allclose(rec["x_t_var"], live_x_t.hal().numpy(), rtol=1e-5)
    again = ds.toy_run(trained, 64, seed=1, name="tiny", hal_window=6, window_max=12)
    assert torch.equal(again["x0"], rec["x0"]) and again["from_cache"] and not rec["from_cache"]
    assert np.array_equal(again["x_t_var"], rec["x_t_var"]) and again["seconds"] == rec["seconds"]
    assert "read from the sample cache" in ds.runs_table({"1d": again}) and "cache" not in ds.runs_table({"1d": rec})
    with pytest.raises(ValueError, match="hal_window"):
        ds.toy_run(trained, 64, 1, name="tiny", hal_window=13, window_max=12)
    with pytest.raises(ValueError, match="window_max"):
        ds.toy_run(trained, 64, 1, name="tiny", window_max=41)
    with pytest.raises(ValueError, match="name"):
        ds.toy_run(trained, 64, 1, name="")
    with pytest.raises(TypeError, match="trained"):
        ds.toy_run(cfg, 64, 1, name="tiny")


def test_shapes_run_on_an_untrained_unet(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    cfg = ShapesConfig(n_images=200, channels=(8, 16), T=30)
    trained = TrainedUNet(_new_model(cfg), cfg)
    run = ds.shapes_run(trained, 4, seed=0, steps=10, window=6, hal_window=4)
    assert run["x0_hat"].shape == (6, 4, 32 * 32) and run["ink"].shape == (4, 3)
    assert run["schedule"].T == 10 and len(run["readings"]) == 4 and run["x_t_var"].shape == (4,)
    live_x_t = detect.WindowVariance(4, 32 * 32, 4, of="x_t")
    trained.sample(4, 0, steps=10, window=6, observer=live_x_t)
    np.testing.assert_allclose(run["x_t_var"], live_x_t.hal().numpy(), rtol=1e-5)
    generated = generate(trained, fit_tolerances(cfg.data(), to_model_space(cfg.data().images, 32)), 4, 0, steps=10,
                         window=6, cache=True)     # chapter 3's draw: the same one, read back
    again = ds.shapes_run(trained, 4, seed=0, steps=10, window=6, hal_window=4)
    assert generated.result.from_cache and again["from_cache"] and not run["from_cache"]
    assert torch.equal(generated.result.x0, run["x0"]) and np.array_equal(again["x_t_var"], run["x_t_var"])
    assert "read from the sample cache" in ds.shapes_summary_line(again)
    assert run["keep"].sum() == len(run["labels"]) == len(run["n_shapes"])
    assert set(run["label_all"]) <= set(SHAPE_LABELS)
    with pytest.raises(ValueError, match="hal_window"):
        ds.shapes_run(trained, 4, 0, steps=10, window=6, hal_window=7)
    with pytest.raises(TypeError, match="trained"):
        ds.shapes_run(cfg, 4, 0)


def test_formatters_refuse_what_no_study_function_returns():
    with pytest.raises(ValueError, match="summary"):
        ds.filter_table([("a", "b", {"n": 1})])
    with pytest.raises(ValueError, match="triple"):
        ds.paper_summary_table([])
    with pytest.raises(ValueError, match="shapes lacks"):
        ds.shapes_table({})
    with pytest.raises(TypeError, match="shapes"):
        ds.shapes_numbers(None)
    with pytest.raises(ValueError, match="results lacks"):
        ds.ink_explains({"Hal, whole image (paper)": {}})
    with pytest.raises(ValueError, match="result lacks"):
        ds.signal_left({"auroc": 0.5})
    with pytest.raises(ValueError, match=r"alt\['A'\] lacks"):
        ds.alternative_verdicts({"A": {"normalised Hal": {"auroc": 0.5, "lo": 0.4, "hi": 0.6}}})
    with pytest.raises(ValueError, match="shapes lacks"):
        ds.alternative_scores({"1d": _record()}, {"labels": None})


def test_record_operating_points_read_a_records_detector():
    mixture = mi.mixture_1d((1.0, 2.0, 3.0), 0.05)
    det = {"n_hallucinated": 40, "auroc": 0.99,
           "at_removal": {"n_in_support": [100, 200, 100], "n_removed": [1, 10, 1], "n_hallucinated_removed": 38,
                          "target": 0.95},
           "at_retention": {"n_in_support": [100, 200, 100], "n_removed": [4, 8, 4], "n_hallucinated_removed": 40}}
    p = ds.record_operating_points({"detector": det}, mixture)
    q = p["at_removal"]
    assert q["removed"] == pytest.approx(0.95) and q["retained"] == pytest.approx(388 / 400)
    assert q["worst_mode"] == "(2.00)" and q["worst_mode_loss"] == pytest.approx(0.05)
    assert q["origin_mode_loss"] == pytest.approx(0.01) and q["retained_lo"] < q["retained"] < q["retained_hi"]
    assert p["at_retention"]["retained"] == pytest.approx(0.96) and "at or above" in p["at_retention"]["vs_paper"]
    assert "removes 95%" in ds.operating_points_table({"m": p})
    assert q["bound"] is None and ds.bound_text(q["bound"]) == "–"          # a record without the counts
    # with the per-threshold counts of 40 hallucinations no score bounds the 5% quantile at 95% (0.95^40 > 5%)
    below = {"hallucinated": [float(i) for i in range(40)], "in_support_le": [300 + i for i in range(40)],
             "n_in_support": 400}
    b = ds.record_operating_points({"detector": {**det, "below": below}}, mixture)["at_removal"]["bound"]
    assert b["rank"] == 0 and b["retained"] == 0.0 and ds.bound_text(b) == "none (40 hallucinations: too few)"
    # with 100, the 2nd lowest does (P(Bin(100, 0.05) <= 1) = 3.7% <= 5% < P(... <= 2) = 11.8%)
    below = {"hallucinated": [float(i) for i in range(100)], "in_support_le": [300 + i for i in range(100)],
             "n_in_support": 400}
    b = ds.record_operating_points({"detector": {**det, "below": below}}, mixture)["at_removal"]["bound"]
    assert b["rank"] == 2 and b["retained"] == 301 / 400 and "(at the 2nd lowest of 100 hallucinated scores)" in ds.bound_text(b)
    nums = ds.operating_numbers({"m": {"gate": {"passed": True}, "hallucination": {"n": 440}}}, p)
    assert math.isnan(nums["bound_retained"]) and nums["bound_text"] == "–" and "at_removal_bound" not in nums
    with pytest.raises(ValueError, match="hal_window"):
        ds.record_operating_points({"gate": {}}, mixture)
    with pytest.raises(ValueError, match="modes"):
        ds.record_operating_points({"detector": det}, mi.mixture_1d((1.0, 2.0), 0.05))


def test_operating_numbers_flatten_both_thresholds():
    mixture = mi.mixture_1d((1.0, 2.0, 3.0), 0.05)
    det = {"n_hallucinated": 20, "auroc": 0.97,
           "at_removal": {"n_in_support": [10, 10, 10], "n_removed": [1, 2, 3], "n_hallucinated_removed": 19},
           "at_retention": {"n_in_support": [10, 10, 10], "n_removed": [0, 1, 0], "n_hallucinated_removed": 15}}
    row = {"detector": det, "gate": {"passed": False}, "hallucination": {"n": 50}}
    n = ds.operating_numbers({"m": row}, ds.record_operating_points(row, mixture))
    assert n["gate"] == "fails" and n["n"] == 50 and n["auroc"] == 0.97
    assert n["at_removal_removed"] == pytest.approx(0.95) and n["at_retention_retained"] == pytest.approx(29 / 30)
    assert not any(k.endswith("_loss") and isinstance(v, list) for k, v in n.items())


def test_gated_claims_assert_only_on_a_model_that_passes_the_gate(capsys):
    mixture = mi.mixture_1d((1.0, 2.0, 3.0), 0.05)
    det = {"n_hallucinated": 40, "auroc": 0.99,
           "at_removal": {"n_in_support": [1000, 2000, 1000], "n_removed": [10, 100, 10], "n_hallucinated_removed": 38},
           "at_retention": {"n_in_support": [1000, 2000, 1000], "n_removed": [40, 80, 40], "n_hallucinated_removed": 40}}
    points = ds.record_operating_points({"detector": det}, mixture)       # 96.95% kept, lower bound ~96.0%
    passed, failed = {"m": {"gate": {"passed": True}}}, {"m": {"gate": {"passed": False}}}
    claims = ds.gated_claims({"good": (passed, points), "blurred": (failed, points)})
    assert list(claims.values()) == [True] and "good" in next(iter(claims)) and "WITHHELD" in capsys.readouterr().out
    assert ds.gated_claims({"good": (passed, points)}, min_retained=0.97) == {next(iter(
        ds.gated_claims({"good": (passed, points)}, min_retained=0.97))): False}
    with pytest.raises(ValueError, match="min_retained"):
        ds.gated_claims({}, min_retained=1.5)


def test_gate_numbers_name_a_blurred_origin_mode():
    from mode_interp.toy_report import measure_samples
    from mode_interp.train import ToyConfig
    cfg = ToyConfig(data="grid_25")
    mixture = cfg.mixture()
    means = torch.as_tensor(np.asarray(mixture.means), dtype=torch.float64)
    width = mi.exact_chain_mode_std(cfg.schedule(), mixture.sigma)      # each mode as the exact chain leaves it
    noise = width * torch.randn(len(means), 4_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sharp = (means[:, None] + noise).reshape(-1, 2)
    noise[mixture.origin_mode] *= 1.8                                    # the centre mode blurred
    blurred = (means[:, None] + noise).reshape(-1, 2)
    numbers = ds.gate_numbers({"a": measure_samples("sharp", sharp, cfg), "b": measure_samples("blurred", blurred, cfg)})
    assert numbers["a_gate"] == "passes" and numbers["a_blurred"] == 0 and not numbers["a_only_origin_blurred"]
    assert abs(numbers["a_origin_spread"] - 1) < 0.05 and abs(numbers["a_median_spread"] - 1) < 0.05
    assert numbers["b_gate"] == "fails" and numbers["b_blurred"] == 1 and numbers["b_only_origin_blurred"]
    assert numbers["b_origin_spread"] > 1.35 and numbers["b_worst_spread"] == numbers["b_origin_spread"]
    with pytest.raises(ValueError, match="measured"):
        ds.gate_numbers({"a": {"m": {}}})
