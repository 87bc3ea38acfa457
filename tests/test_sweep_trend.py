"""The replicated-sweep trend of chapter 2 (mode_interp.sweep_trend) on synthetic records."""

import math

import numpy as np
import pytest

from mode_interp import plots, sweep_trend as st


def record(n_train, seed, count, n=200_000, passed=True, means=(1.0, 2.0, 3.0), sigma=0.05, within=0.99, median=1.0,
           worst=1.1):
    h = {"count": count, "n": n, "rate": count / n, "lo": count / n / 2, "hi": count / n * 2, "true_rate": 5.7e-7}
    g = {"within": within, "median_spread_ratio": median, "worst_spread_ratio": worst, "blurred": [], "passed": passed}
    return {"experiment": "toy_model", "spec": {"seed": seed, "model": {"n_train": n_train, "means": list(means),
                                                                         "sigma": sigma}},
            "result": {"rows": [{"step": 20_000, "hallucination": h, "gate": g}]}}


def power_law(slope, noise=(0.0, 0.0, 0.0), sizes=(1_000, 10_000, 100_000)):
    """Records whose (count + 1/2) / (n + 1) is exactly 1e-2 * (N / 1000)^slope * 10^noise[seed]."""
    n = 10_000_000
    return [record(N, s, (n + 1) * 1e-2 * (N / 1_000) ** slope * 10 ** noise[s] - 0.5, n=n)
            for s in range(3) for N in sizes]


def test_fit_recovers_a_known_power_law_slope():
    pts = st.points(power_law(-0.5, noise=(0.1, -0.05, 0.02)), "n_train")
    trend = st.fit(pts, log_x=True, direction="less")
    assert trend["slopes"] == pytest.approx([-0.5] * 3, abs=1e-9)
    assert trend["mean"] == pytest.approx(-0.5, abs=1e-6) and trend["n_agree"] == 3
    assert trend["fold"] == pytest.approx(10 ** (-0.5 * 2), rel=1e-5) and trend["span"] == pytest.approx(2.0)
    assert st.resolved(trend) == "as stated"
    intercepts = [math.log10(1e-2 * 1_000 ** 0.5 * 10 ** v) for v in (0.1, -0.05, 0.02)]
    assert trend["intercepts"] == pytest.approx(intercepts, abs=1e-5)


def test_verdict_is_against_or_unresolved_when_the_slopes_say_so():
    assert st.resolved(st.fit(st.points(power_law(0.3), "n_train"))) == "against"
    mixed = power_law(0.0, noise=(0.0, 0.0, 0.0))
    mixed[2]["result"]["rows"][0]["hallucination"]["count"] *= 3       # seed 0 rises, the others are flat
    trend = st.fit(st.points(mixed, "n_train"))
    assert st.resolved(trend) == "unresolved" and trend["n_agree"] == 0
    assert "do not resolve" in st.reading(trend, "n_train", "fewer samples, more interpolation")


def test_gated_models_only_enter_the_fit_and_are_named():
    recs = power_law(-0.5)
    recs[0]["result"]["rows"][0]["gate"]["passed"] = False      # seed 0, N = 1,000
    pts = st.points(recs, "n_train")
    trend = st.fit(pts)
    assert trend["excluded"] == [(1_000.0, 0)] and trend["slopes"] == pytest.approx([-0.5] * 3, abs=1e-6)
    assert "N = 1,000 replicate 0" in st.reading(trend, "n_train", "x")
    table = st.table(pts, "n_train")
    assert " *" in table.splitlines()[2] and "| 2 of 3 |" in table
    for r in recs[:2]:
        r["result"]["rows"][0]["gate"]["passed"] = False         # seed 0 keeps one gated model: no slope
    assert st.fit(st.points(recs, "n_train"))["seeds"] == [1, 2]
    for r in recs[3:5]:
        r["result"]["rows"][0]["gate"]["passed"] = False
    with pytest.raises(ValueError, match=">= 2 replicates"):
        st.fit(st.points(recs, "n_train"))


def test_gap_is_in_sigma_units_and_by_value_gives_the_across_replicate_interval():
    recs = [record(20_000, s, c, means=m) for s, c0 in enumerate((100, 120, 140))
            for m, c in (((1.0, 1.75, 2.5), c0 * 4), ((1.0, 3.0, 5.0), c0))]
    pts = st.points(recs, "gap")
    assert sorted({p["x"] for p in pts}) == pytest.approx([15.0, 40.0])
    rows = st.by_value(pts)
    rates = np.array([400, 480, 560]) / 200_000
    half = 4.302653 * rates.std(ddof=1) / math.sqrt(3)
    assert rows[0]["mean"] == pytest.approx(rates.mean()) and rows[0]["hi"] - rows[0]["mean"] == pytest.approx(half, rel=1e-4)
    trend = st.fit(pts, log_x=False)
    assert trend["fold"] < 1 and st.resolved(trend) == "as stated"
    num = st.numbers(trend, pts)
    assert num["n_models"] == 6 and num["n_samples"] == 200_000 and num["rate_first"] > num["rate_last"]
    assert num["replicate_spread"] == pytest.approx(1.4) and num["value_spread"] == pytest.approx(4.0)
    fig = plots.plot_replicated_sweep([("gap (σ)", pts, trend)])
    assert len(fig.axes) == 1


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="x must be one of"):
        st.points([record(1000, 0, 5)], "steps")
    with pytest.raises(ValueError, match="records\\[0\\]"):
        st.points([{"experiment": "loop"}], "n_train")
    with pytest.raises(TypeError, match="records"):
        st.points("index.json", "n_train")
    with pytest.raises(ValueError, match="share a swept value"):
        st.points([record(1000, 0, 5), record(1000, 0, 6)], "n_train")
    with pytest.raises(ValueError, match="direction"):
        st.fit(st.points(power_law(-0.5), "n_train"), direction="down")
    with pytest.raises(ValueError, match="log_x"):
        st.fit(st.points(power_law(-0.5), "n_train"), log_x=1)


def _run(seed, counts, passed, **model):
    """A toy_model record of one training run with snapshots at 1k, 5k and 20k steps; its gate numbers
    depend on the seed, so means and maxima over replicates differ from any one replicate's."""
    rec = record(20_000, seed, 0)
    rec["spec"]["model"].update({"data_seed": seed, "seed": 1234 + seed, "steps": 20_000, "batch_size": 10_000,
                                 **model})
    rec["result"]["rows"] = [{**record(20_000, seed, c, passed=p, within=0.99 - 0.01 * seed, median=1.0 + 0.1 * seed,
                                       worst=1.2 + 0.1 * seed)["result"]["rows"][0], "step": step}
                             for step, c, p in zip((1_000, 5_000, 20_000), counts, passed)]
    return {**rec, "precision": "bfloat16" if seed == 0 else "float32"}


def test_step_kind_takes_every_snapshot_of_each_run():
    recs = [_run(0, (9_000, 400, 90), (False, True, False)), _run(1, (8_000, 500, 110), (False, True, True)),
            _run(2, (10_000, 450, 100), (False, True, True))]
    pts = st.points(recs, "step")
    assert [(p["x"], p["seed"]) for p in pts][:3] == [(1_000.0, 0), (1_000.0, 1), (1_000.0, 2)] and len(pts) == 9
    assert {p["precision"] for p in pts if p["seed"] == 0} == {"bfloat16"}
    assert len(st.points(recs, "n_train")) == 3                    # the other kinds read each run's last row
    trend = st.fit(pts, log_x=True, direction="less")
    assert trend["seeds"] == [1, 2] and (20_000.0, 0) in trend["excluded"]     # replicate 0: one gated snapshot
    last = st.by_value(pts)[-1]
    assert last["n_passed"] == 2 and last["within"] == pytest.approx(0.98)
    assert last["median_spread"] == pytest.approx(1.1) and last["worst_spread"] == pytest.approx(1.4)
    text = st.table(pts, "step", gate_columns=True)
    assert "| 20,000 steps | 0.045% * | 0.055% | 0.050% |" in text and "| 98.0% | 1.10 / 1.40 | 2 of 3 |" in text
    assert "per decade of training steps" in st.reading(trend, "step", "longer training, less interpolation")
    with pytest.raises(ValueError, match="gate_columns"):
        st.table(pts, "step", gate_columns="yes")


def test_a_steps_study_states_no_direction_and_pools_replicates_of_one_recipe_only():
    recs = [_run(0, (9_000, 400, 90), (False, True, False)), _run(1, (8_000, 500, 110), (False, True, True))]
    s = st.study(recs, "step", "training steps")
    assert s.trend is None and "no direction is stated" in s.reading() and "2 replicates" in s.reading()
    nums = s.numbers()
    assert "slope" not in nums and nums["first_all_passed"] == 5_000 and nums["first_all_passed_text"] == "5,000 steps"
    assert nums["recipe_epochs"] == pytest.approx(20_000 * 10_000 / 20_000) and nums["precisions"] == "bfloat16, float32"
    assert (nums["last_n_passed"], nums["n_seeds"]) == (1, 2) and nums["last_worst_spread"] == pytest.approx(1.3)
    never = st.study([_run(0, (9_000, 400, 90), (False, False, False)), recs[1]], "step", "training steps")
    assert math.isnan(never.numbers()["first_all_passed"]) and never.numbers()["first_all_passed_text"] == "none of them"
    with pytest.raises(ValueError, match="replicates of one training run: model.lr"):
        st.study([recs[0], _run(1, (1, 1, 1), (True,) * 3, lr=1e-4)], "step", "training steps")
    with pytest.raises(ValueError, match="records is empty"):
        st.study([], "step", "training steps")
    for bad, error in (({"log_x": "yes"}, "log_x"), ({"direction": "down"}, "direction"), ({"says": 5}, "says")):
        with pytest.raises((TypeError, ValueError), match=error):
            st.study(recs, "step", "training steps", **bad)
    with pytest.raises(TypeError, match="x_label"):
        st.study(recs, "step", None)



def test_study_bundles_points_trend_and_the_chapter_views():
    recs = power_law(-0.5, noise=(0.1, -0.05, 0.02))
    s = st.study(recs, "n_train", "N", says="fewer samples, more interpolation", source="this chapter")
    pts = st.points(recs, "n_train")
    assert s.points == pts and s.trend == st.fit(pts) and s.table() == st.table(pts, "n_train")
    assert s.numbers()["slope"] == st.numbers(s.trend, pts)["slope"] and len(s.plot().axes) == 1
    assert s.numbers()["recipe_n_train"] == 1_000 and s.numbers()["precisions"] == "not recorded"
    assert "the trend this chapter states (fewer samples, more interpolation) holds" in s.reading()
    nums = s.numbers()
    assert nums["first_all_passed"] == 1_000 and nums["last_n_passed"] == 3 and nums["last_median_spread"] == 1.0
    one_fails = [{**p, "passed": p["seed"] != 0} for p in pts]          # replicate 0 fails everywhere
    assert math.isnan(st.numbers(s.trend, one_fails)["first_all_passed"])
    later = [{**p, "passed": p["seed"] != 0 or p["x"] > 1_000} for p in pts]
    assert st.numbers(s.trend, later)["first_all_passed"] == 10_000


def test_a_single_replicate_is_shown_without_a_fitted_trend():
    recs = [r for r in power_law(-0.5) if r["spec"]["seed"] == 0]
    s = st.study(recs, "n_train", "N", says="fewer samples, more interpolation")
    assert s.trend is None and s.reading().startswith("No trend across replicates is fitted (a single replicate; 1 replicate)")
    nums = s.numbers()
    assert "slope" not in nums and nums["n_seeds"] == 1 and (nums["x_first"], nums["x_last"]) == (1_000, 100_000)
    assert not any(line.get_label().startswith("fit") for line in s.plot().axes[0].get_lines())   # no fit line
    fitted = st.study(power_law(-0.5), "n_train", "N", says="fewer samples, more interpolation").plot()
    assert any(line.get_label().startswith("fit") for line in fitted.axes[0].get_lines())
    with pytest.raises(ValueError, match=">= 2 replicates"):
        st.fit(s.points)
