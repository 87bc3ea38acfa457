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


W9 = [1 / 16] * 4 + [0.5] + [1 / 16] * 4           # the 3 x 3 grid with its centre mode (4) heavy


def _grid_record(weights, seed, hl, ll, removed=None, passed=True, steps=5000):
    """A 2-D record whose 4 heavy-light segments hold ``hl`` samples each and 8 light-light ones ``ll``;
    ``removed``: Hal's removals per mode (100 in-support samples each, 900 for the heavy mode)."""
    pairs = mi.interpolation.neighbour_pairs(mi.grid_9())[0].tolist()
    segments = [{"between": p, "count": hl if 4 in p else ll,
                 "position": (0.3 if p[0] == 4 else 0.7) if 4 in p else 0.5} for p in pairs]
    row = {"step": 10, "hallucination": {"n": 10_000, "count": 4 * hl + 8 * ll, "rate": (4 * hl + 8 * ll) / 10_000},
           "segments": segments, "gate": {"passed": passed, "checks": {"median spread": passed},
                                          "median_spread_ratio": 1.05 if passed else 1.2,
                                          "worst_spread_ratio": 1.3, "worst_weight_ratio": 1.1}}
    if removed is not None:
        d = {"n_in_support": [100] * 4 + [900] + [100] * 4, "n_removed": list(removed), "target": 0.96,
             "threshold": 1.0, "n_hallucinated_removed": 5}
        row["detector"] = {"n_hallucinated": 10, "auroc": 0.9, "at_retention": d, "at_removal": d}
    model = {"data": "grid_9", "input_bias": True, "steps": steps, **({"weights": weights} if weights else {})}
    return {"experiment": "toy_model", "spec": {"model": model, "seed": seed, "k_label": 5.0}, "result": {"rows": [row]}}


def test_pair_position_is_where_two_modes_responsibilities_are_equal_in_2d():
    schedule = mi.linear_schedule(1000)
    mix = mi.grid_9(weights=W9)
    mu = mix.means
    for t in (0, 20, 100):
        s = im.pair_position(0.5, 1 / 16, float(np.linalg.norm(mu[5] - mu[4])), mix.sigma, schedule, t)
        x = (mu[4] + s * (mu[5] - mu[4])) * math.sqrt(float(schedule.alpha_bar[t]))
        two = mi.GaussianMixture(mu[[4, 5]], mix.sigma, (0.5, 1 / 16))
        r = responsibilities(torch.tensor(x[None]), t, two, schedule)[0]
        assert float(r[0]) == pytest.approx(float(r[1]), rel=1e-9) and s > 0.5    # towards the light mode
    assert im.pair_position(1, 1, 2.0, 0.05, schedule, 50) == 0.5
    with pytest.raises(ValueError, match="positive"):
        im.pair_position(0, 1, 2.0, 0.05, schedule, 50)


def test_grid_rows_class_the_segments_and_compare_across_replicates():
    records = [_grid_record(W9, s, hl, 2) for s, hl in enumerate((6, 8, 5))]
    records += [_grid_record([], s, hl, 2) for s, hl in enumerate((2, 3, 2))]
    rows = im.grid_rows(records, heavy=4)
    assert [r["arm"] for r in rows][-1] == "equal" and len(rows) == 6
    hl, ll = rows[0]["classes"].values()
    assert (hl["segments"], hl["count"], hl["per_segment"]) == (4, 24, 6.0) and ll["per_segment"] == 2.0
    assert hl["position"] == pytest.approx(0.3) and ll["position"] == pytest.approx(0.5)   # from the heavy end
    cmp = im.gap_comparison(rows, rows[0]["arm"])
    assert cmp["ratio"]["values"][0] == pytest.approx(6.5 / 2.5) and cmp["vs_control"]["n_agree"] == 3
    table = im.grid_table(rows)
    assert "heavy–light: per segment" in table and "6.0 (0.30)" in table and "1.050 / 1.300 / 1.100: passes" in table
    with pytest.raises(ValueError, match="per-segment"):
        bad = _grid_record([], 0, 1, 1)
        del bad["result"]["rows"][0]["segments"]
        im.grid_rows([bad], heavy=4)
    with pytest.raises(ValueError, match="heavy"):
        im.grid_rows(records, heavy=9)


def test_grid_numbers_and_claims():
    light_pays = [[k] * 4 + [9] + [k] * 4 for k in (3, 4, 6)]           # light 3-6%, heavy 1%
    records = [_grid_record(W9, s, hl, 2, light_pays[s]) for s, hl in enumerate((6, 8, 5))]
    records += [_grid_record([], s, hl, 2, [1] * 4 + [18] + [1] * 4) for s, hl in enumerate((2, 3, 2))]
    rows = im.grid_rows(records, heavy=4)
    arm = rows[0]["arm"]
    pooled = im.pooled_detector_rows(im.detector_rows(rows), heavy=4)
    assert pooled[0]["loss"] == pytest.approx([0.01, 0.03]) and pooled[0]["n_in_support"] == [900, 800]
    assert im.heavy_neighbours(mi.grid_9(), 4) == [1, 3, 5, 7] and im.heavy_neighbours(mi.grid_9(), 0) == [1, 3]
    split = im.pooled_detector_rows(im.detector_rows(rows[:1]), 4, [1, 3, 5, 7])[0]
    assert split["loss"] == pytest.approx([0.01, 0.03, 0.03, 0.03]) and split["n_in_support"] == [900, 800, 400, 400]
    nums = im.grid_numbers(rows, pooled, arm, mi.linear_schedule(1000), t=20)
    assert nums["weight_factor"] == pytest.approx(8.0) and nums["predicted_geometric"] == pytest.approx(math.sqrt(8))
    assert nums["predicted_arithmetic"] == pytest.approx(4.5) and nums["predicted_smaller"] == pytest.approx(1.0)
    assert nums["boundary"] > 0.5 and nums["arm_position"] == pytest.approx(0.3)
    assert nums["ratio_min"] == pytest.approx(5.5 / 2.5) and nums["verdict_ratio"].startswith("the heavy–light")
    assert nums["arm_light_factor_min"] == pytest.approx(3.0) and nums["control_loss_heavy"] == pytest.approx(0.02)
    assert nums["arm_light_agree"] == 3 and nums["control_light_agree"] == 0 and nums["n_passed"] == 6
    claims, sanity = im.grid_claims(rows, pooled, arm)
    assert all(claims.values()) and all(sanity.values())
    records[1] = _grid_record(W9, 1, 8, 2, light_pays[1], passed=False)
    assert im.gated_pairs(im.grid_rows(records, 4), arm) == [0, 2]
    heavy_pays = [{**d, "arm": arm} for d in im.pooled_detector_rows(im.detector_rows(rows[3:]), heavy=4)]
    claims, _ = im.grid_claims(rows, heavy_pays, arm)
    assert not all(claims.values())                 # the balanced control's "light" modes do not pay more


def test_grid_study_bundles_the_section_and_plot_segment_counts_draws_each_arm():
    records = [_grid_record(W9, s, hl, 2, [[k] * 4 + [9] + [k] * 4 for k in (3, 4, 6)][s])
               for s, hl in enumerate((6, 8, 5))]
    records += [_grid_record([], s, hl, 2, [1] * 4 + [18] + [1] * 4) for s, hl in enumerate((2, 3, 2))]
    study = im.grid_study(records, mi.linear_schedule(1000))
    assert study["arm"] == im.arm_name(W9) and len(study["rows"]) == 6 and "live" not in study
    assert "mode 4 (heavy): removed" in study["detector_table"] and "0.5 (heavy) / 0.0625" in study["table"]
    assert "its neighbours: removed" in study["detector_table"] and "arm_loss_far" in study["numbers"]
    assert study["numbers"]["weight_factor"] == pytest.approx(8.0) and all(study["claims"].values())
    from mode_interp.plots import plot_segment_counts
    fig = plot_segment_counts(study["rows"])
    assert len(fig.axes) == 2 and "equal weights" in fig.axes[1].get_title()
    assert "19" in [t.get_text() for t in fig.axes[0].texts]        # a heavy-light segment: 6 + 8 + 5 over replicates
    earlier = [_grid_record(W9 if k < 3 else [], k % 3, 9, 2, [1] * 9, passed=k == 0, steps=10) for k in range(6)]
    staged = im.grid_study(earlier + records, mi.linear_schedule(1000))       # the longest-trained models used
    assert len(staged["rows"]) == 12 and len(staged["used"]) == 6 and staged["gated"] and staged["pairs"] == [0, 1, 2]
    assert staged["table"].count("| 10 |") == 6 and staged["numbers"]["final_steps"] == 5000
    assert staged["numbers"]["earlier_passed"] == 1 and staged["numbers"]["earlier_pairs"] == 0
    assert staged["numbers"]["earlier_failed_on"] == "median spread" and staged["numbers"]["final_failed_on"] == "nothing"
    assert staged["numbers"]["basis_short"] == "3 gated replicate pairs" and "fresh Adam" not in staged["numbers"]["recipe"]
    assert staged["numbers"]["arm_light_factor_min"] == study["numbers"]["arm_light_factor_min"]
    records[4] = _grid_record([], 1, 3, 2, [1] * 4 + [18] + [1] * 4, passed=False)    # 2 pairs left: as measured
    short = im.grid_study(records, mi.linear_schedule(1000))
    assert not short["gated"] and len(short["used"]) == 6 and short["pairs"] == [0, 2]
    assert short["numbers"]["verdict_summary"].startswith("measured on all 6 models, of which only 2 replicate pairs pass")
    assert short["claims"] == {} and all(short["measured"].values()) and study["measured"] == {}
    with pytest.raises(ValueError, match="imbalanced arm"):
        im.grid_study(records[3:], mi.linear_schedule(1000))
    with pytest.raises(ValueError, match="n_live"):
        im.grid_study(records, mi.linear_schedule(1000), n_live=-1)
