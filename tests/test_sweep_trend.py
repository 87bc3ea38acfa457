"""The replicated-sweep trend of chapter 2 (mode_interp.sweep_trend) on synthetic records."""

import math

import numpy as np
import pytest

from mode_interp import plots, sweep_trend as st


def record(n_train, seed, count, n=200_000, passed=True, means=(1.0, 2.0, 3.0), sigma=0.05):
    h = {"count": count, "n": n, "rate": count / n, "lo": count / n / 2, "hi": count / n * 2, "true_rate": 5.7e-7}
    g = {"within": 0.99, "median_spread_ratio": 1.0, "worst_spread_ratio": 1.1, "blurred": [], "passed": passed}
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


def test_step_kind_takes_every_snapshot_of_each_run():
    def run(seed, counts, passed):
        rec = record(20_000, seed, 0)
        rec["result"]["rows"] = [{**record(20_000, seed, c, passed=p)["result"]["rows"][0], "step": step}
                                 for step, c, p in zip((1_000, 5_000, 20_000), counts, passed)]
        return {**rec, "precision": "bfloat16" if seed == 0 else "float32"}
    recs = [run(0, (9_000, 400, 90), (False, True, False)), run(1, (8_000, 500, 110), (False, True, True)),
            run(2, (10_000, 450, 100), (False, True, True))]
    pts = st.points(recs, "step")
    assert [(p["x"], p["seed"]) for p in pts][:3] == [(1_000.0, 0), (1_000.0, 1), (1_000.0, 2)] and len(pts) == 9
    assert {p["precision"] for p in pts if p["seed"] == 0} == {"bfloat16"}
    assert len(st.points(recs, "n_train")) == 3                    # the other kinds read each run's last row
    trend = st.fit(pts, log_x=True, direction="less")
    assert trend["seeds"] == [1, 2] and (20_000.0, 0) in trend["excluded"]     # replicate 0: one gated snapshot
    rows = st.by_value(pts)
    assert rows[-1]["n_passed"] == 2 and rows[-1]["within"] == pytest.approx(0.99)
    text = st.table(pts, "step", gate_columns=True)
    assert "| 20,000 steps | 0.045% * | 0.055% | 0.050% |" in text and "1.00 / 1.10 | 2 of 3 |" in text
    assert "per decade of training steps" in st.reading(trend, "step", "longer training, less interpolation")
    with pytest.raises(ValueError, match="gate_columns"):
        st.table(pts, "step", gate_columns="yes")


def test_study_bundles_points_trend_and_the_chapter_views():
    recs = power_law(-0.5, noise=(0.1, -0.05, 0.02))
    s = st.study(recs, "n_train", "fewer samples, more interpolation", "N", source="this chapter")
    pts = st.points(recs, "n_train")
    assert s.points == pts and s.trend == st.fit(pts) and s.table() == st.table(pts, "n_train")
    assert s.numbers() == st.numbers(s.trend, pts) and len(s.plot().axes) == 1
    assert "the trend this chapter states (fewer samples, more interpolation) holds" in s.reading()
    nums = s.numbers()
    assert nums["first_all_passed"] == 1_000 and nums["last_n_passed"] == 3 and nums["last_median_spread"] == 1.0
    one_fails = [{**p, "passed": p["seed"] != 0} for p in pts]          # replicate 0 fails everywhere
    assert math.isnan(st.numbers(s.trend, one_fails)["first_all_passed"])
    later = [{**p, "passed": p["seed"] != 0 or p["x"] > 1_000} for p in pts]
    assert st.numbers(s.trend, later)["first_all_passed"] == 10_000
