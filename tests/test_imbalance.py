"""Imbalanced mixtures (chapter 6, section 6.5): the exact boundary, and the gap comparisons on records."""
import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from mode_interp import imbalance as im
from mode_interp.optimal import responsibilities


def test_the_boundary_is_where_the_exact_responsibilities_are_equal():
    schedule = mi.linear_schedule(1000)
    mix = mi.mixture_1d((1.0, 2.0, 3.0), 0.05, (0.8, 0.1, 0.1))
    for t in (0, 10, 40, 200):
        x = im.boundary(mix, schedule, t, (0, 1))
        r = responsibilities(torch.tensor([[x * math.sqrt(float(schedule.alpha_bar[t]))]], dtype=torch.float64), t, mix,
                             schedule)[0]
        assert float(r[0]) == pytest.approx(float(r[1]), rel=1e-9)
        assert x > 1.5                                   # pushed towards the lighter mode
    assert im.boundary(mix, schedule, 40, (1, 2)) == pytest.approx(2.5)     # equal weights: the midpoint
    assert im.boundary(mix, schedule, 40, (0, 1)) > im.boundary(mix, schedule, 10, (0, 1))   # grows with t
    with pytest.raises(ValueError, match="pair"):
        im.boundary(mix, schedule, 0, (1, 1))
    with pytest.raises(ValueError, match="1-D"):
        im.boundary(mi.grid_25(), schedule, 0)
    assert "shift" in im.boundary_table(mix, schedule, (0, 20))


def _record(weights, seed, counts, det=None):
    gaps = [{"between": [1.0 + i, 2.0 + i], "count": c, "per_unit_length": c, "position": 0.5, "counts": [c]}
            for i, c in enumerate(counts)]
    row = {"step": 10, "hallucination": {"n": 1000, "count": sum(counts), "rate": sum(counts) / 1000},
           "gaps": gaps, "gate": {"passed": True, "spread_ratio": [1.0, 1.1, 1.2]}, **({"detector": det} if det else {})}
    model = {"means": [1.0, 2.0, 3.0], "sigma": 0.05, **({"weights": weights} if weights else {})}
    return {"experiment": "toy_model", "spec": {"model": model, "seed": seed, "k_label": 5.0},
            "result": {"rows": [row]}}


def test_gap_comparison_across_replicates():
    records = [_record([0.8, 0.1, 0.1], s, c) for s, c in enumerate([(30, 10), (40, 10), (20, 10)])]
    records += [_record([], s, c) for s, c in enumerate([(10, 10), (12, 10), (9, 10)])]
    rows = im.record_rows(records)
    assert [r["arm"] for r in rows] == ["0.8/0.1/0.1"] * 3 + ["equal"] * 3
    cmp = im.gap_comparison(rows, "0.8/0.1/0.1")
    expected = 10 ** np.mean([math.log10(30.5 / 10.5), math.log10(40.5 / 10.5), math.log10(20.5 / 10.5)])
    assert cmp["ratio"]["mean"] == pytest.approx(expected)
    assert cmp["ratio"]["lo"] < cmp["ratio"]["mean"] < cmp["ratio"]["hi"]
    assert cmp["vs_control"]["n_agree"] == 3 and cmp["vs_control"]["mean"] > 0
    assert "ratio of the gaps" in im.gap_table(rows)
    with pytest.raises(ValueError, match="replicates"):
        im.gap_comparison(rows[:1] + rows[3:], "0.8/0.1/0.1")
    with pytest.raises(ValueError, match="gap profile"):
        bad = _record([], 0, (1, 1))
        del bad["result"]["rows"][0]["gaps"][0]["position"]
        im.record_rows([bad])


def test_weight_predictions():
    p = im.weight_predictions((0.8, 0.1, 0.1))
    assert p["geometric"] == pytest.approx(math.sqrt(8)) and p["arithmetic"] == pytest.approx(4.5)
    assert p["smaller"] == pytest.approx(1.0)
    assert im.weight_predictions((1, 1, 1)) == pytest.approx({"geometric": 1, "arithmetic": 1, "smaller": 1})


def test_detector_rows_and_the_light_mode_test():
    def det(removed):
        d = {"n_in_support": [800, 100, 100], "n_removed": list(removed), "target": 0.96, "threshold": 1.0,
             "n_hallucinated_removed": 5}
        return {"n_hallucinated": 10, "auroc": 0.9, "at_retention": d, "at_removal": d}
    records = [_record([0.8, 0.1, 0.1], s, (5, 5), det(r)) for s, r in enumerate([(8, 10, 12), (16, 9, 8), (8, 20, 9)])]
    rows = im.detector_rows(im.record_rows(records))
    assert rows[0]["loss"] == pytest.approx([0.01, 0.1, 0.12]) and rows[0]["lo"][1] < 0.1 < rows[0]["hi"][1]
    test = im.light_vs_heavy(rows, "0.8/0.1/0.1", light=2, heavy=0)
    assert test["d"] == pytest.approx([0.11, 0.06, 0.08]) and test["n_agree"] == 3
    assert "AUROC" in im.detector_table(rows, (1.0, 2.0, 3.0))


def test_plot_gap_profiles():
    from mode_interp import plots
    records = [_record([0.8, 0.1, 0.1], s, (30, 10)) for s in range(2)] + [_record([], s, (10, 10)) for s in range(2)]
    fig = plots.plot_gap_profiles(im.record_rows(records), {"exact boundary": {0: 0.6, 1: 0.5}})
    assert len(fig.axes) == 2 and fig.axes[0].get_xlim() == (0, 1)


def test_ramp_widths_of_the_exact_denoiser_are_the_exact_ones_whatever_the_weights():
    schedule = mi.linear_schedule(1000)
    mix = mi.mixture_1d((1.0, 2.0, 3.0), 0.05, (0.8, 0.1, 0.1))
    exact = lambda x_t, t: mi.optimal_eps(x_t.double(), t, mix, schedule)
    r = im.ramp_widths(exact, mix, schedule, (0, 5, 10))
    for g in (0, 1):
        assert np.allclose(r["widths"][g], 1.0, rtol=0.02)
    assert np.allclose(r["narrower"], 1.0, rtol=0.03)
    assert "t = 5" in im.ramp_table({"exact": r})


def test_chapter_numbers_read_the_rows():
    def det(removed):
        d = {"n_in_support": [800, 100, 100], "n_removed": list(removed), "target": 0.96, "threshold": 1.0,
             "n_hallucinated_removed": 5}
        return {"n_hallucinated": 10, "auroc": 0.9, "at_retention": d, "at_removal": d}
    records = [_record([0.8, 0.1, 0.1], s, c, det((8, 10, 12))) for s, c in enumerate([(10, 30), (10, 40), (10, 20)])]
    records += [_record([], s, c, det((30, 30, 30))) for s, c in enumerate([(10, 10), (12, 10), (9, 10)])]
    rows = im.record_rows(records)
    tempered = [{"arm": "0.8/0.1/0.1", "tau": 10.0, "seed": s, "n": 1000,
                 "gaps": [{"count": 20, "position": 0.4}, {"count": 10, "position": 0.5}]} for s in range(3)]
    ramps = {"0.8/0.1/0.1, replicate 0": {"narrower": np.array([0.7, 0.8])},
             "equal, replicate 0": {"narrower": np.array([0.9, 1.1])}}
    nums = im.chapter_numbers(rows, im.gap_comparison(rows, "0.8/0.1/0.1"), tempered, im.detector_rows(rows),
                              "0.8/0.1/0.1", ramps, mi.linear_schedule(1000))
    assert nums["narrower_arm_max"] == 0.8 and nums["narrower_control_min"] == 0.9 and nums["weights"] == "0.8 / 0.1 / 0.1"
    assert 0 < nums["shift_0"] < nums["shift_20"] and nums["fp"] == pytest.approx(0.04)
    assert nums["n_passed"] == nums["n_models"] == 6 and nums["ratio"] < 1 < nums["predicted_geometric"]
    assert nums["verdict_ratio"] == "the heavy–light gap holds less"
    assert nums["tempered_ratio_10"] == pytest.approx(60.5 / 30.5)
    assert nums["arm_loss_0"] == pytest.approx(0.01) and nums["control_loss_2"] == pytest.approx(0.3)
    assert nums["light2_agree"] == 3 and nums["light2_factor_min"] == pytest.approx(12.0)
    assert nums["light_factor_min"] == pytest.approx(10.0) and nums["control_agree_max"] == 3
    assert nums["nearest_prediction"] == "geometric mean" and nums["vs_tempered"].startswith("below")
    assert nums["arm_spread_light"] == pytest.approx(1.15) and nums["rate_direction"] == "more"
    assert nums["arm_count_1"] == 90 and nums["arm_position_0"] == pytest.approx(0.5)


def test_tempered_table_and_ratios():
    rows = [{"arm": a, "tau": 10.0, "seed": s, "n": 100, "gaps": [{"count": c0, "position": 0.5}, {"count": 10, "position": None}]}
            for a, c0 in (("0.8/0.1/0.1", 20), ("equal", 10)) for s in range(3)]
    table = im.tempered_table(rows)
    assert "60 (0.50)" in table and "30 (–)" in table
    share = im.tempered_shares(rows, "0.8/0.1/0.1")[10.0]
    assert share["share"] == pytest.approx(60 / 90) and share["lo"] < 60 / 90 < share["hi"]


def test_model_ramps_label_each_replicates_trained_model(tmp_path, monkeypatch):
    from mode_interp.train import load_or_train

    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    record = _record([0.8, 0.1, 0.1], 1, (3, 1))
    record["spec"]["model"].update({"n_train": 200, "batch_size": 100, "steps": 20, "width": 16})
    rows = im.record_rows([record])
    schedule = mi.linear_schedule(1000)
    ramps = im.model_ramps(rows, schedule, (0, 5))
    assert list(ramps) == ["0.8/0.1/0.1, replicate 1"]
    direct = im.ramp_widths(load_or_train(rows[0]["config"]).model, rows[0]["config"].mixture(), schedule, (0, 5))
    assert np.array_equal(ramps["0.8/0.1/0.1, replicate 1"]["narrower"], direct["narrower"])
