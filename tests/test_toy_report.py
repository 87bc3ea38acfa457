"""Chapter 2's reporting of learned toy models (mode_interp.toy_report), on samples whose numbers are
known: points placed by hand between and on the modes of a 1-D mixture, and the true 2-D grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mode_interp as mi
from mode_interp import toy_report as tr
from mode_interp.train import ToyConfig


def _one_d(n_between=(3, 0), n_on=996):
    """n_on points on the modes {1, 2, 3} (tiny jitter) plus n_between[i] points at the midpoint of gap i."""
    g = torch.Generator().manual_seed(0)
    on = torch.tensor([1.0, 2.0, 3.0]).repeat(n_on // 3) + 0.02 * torch.randn(n_on // 3 * 3, generator=g)
    mid = torch.cat([torch.full((n_between[0],), 1.5), torch.full((n_between[1],), 2.5)])
    return torch.cat([on, mid]).unsqueeze(1)


def test_numbers_count_the_points_between_the_modes():
    config = ToyConfig(steps=10)
    row = tr.measure_samples("hand-made", _one_d((3, 1)), config)
    num = tr.numbers(row)
    assert num["hal_count"] == 4 and num["between"] == 4
    assert num["gap_12"] == 3 and num["gap_23"] == 1
    assert num["gap_12_per_length"] == pytest.approx(3 / (1 - 2 * 5 * 0.05))
    assert num["hal_rate"] == pytest.approx(4 / 1000)
    assert "first_share" not in num


def test_tables_and_readings_put_the_numbers_in_their_cells():
    config = ToyConfig(steps=10)
    rows = [tr.measure_samples("few", _one_d((1, 0)), config), tr.measure_samples("many", _one_d((40, 40)), config)]
    table = tr.hallucination_table(rows)
    assert "| few | 997 | 1 |" in table and "| many | 1,076 | 80 |" in table
    assert "| 1–2 | 1 | 40 |" in tr.gap_table(rows[1])
    gate = tr.gate_table(rows, columns="full")
    assert gate.count("\n") == 3 and "few" in gate
    claims = tr.claim_table(rows)
    assert claims.count("yes") == 2          # both far above the true 5-sigma rate (5.7e-7)


def test_2d_verdict_and_claims_follow_the_gate(capsys):
    config = ToyConfig(data="grid_25", steps=10)
    x = config.mixture().sample(20_000, torch.Generator().manual_seed(1))
    row = tr.measure_samples("true grid", x, config)
    num = tr.numbers(row)
    assert {"shoulder", "first_share", "first_enrichment", "second_enrichment"} <= set(num)
    claims = tr.claims_2d([row])
    verdict = tr.verdict_2d(row, "axis-aligned", "diagonal", 100)
    if row["m"]["gate"]["passed"]:
        assert len(claims) == 3 and "passes the gate" in verdict
    else:
        assert claims == {} and "WITHHELD" in capsys.readouterr().out and "fails the gate" in verdict
    assert "| true grid |" in tr.breakdown_table([row])


def test_shipped_models_table_reads_the_manifest(tmp_path):
    entry = {"file": "toy-grid_25-abc.pt", "command": "python -m mode_interp.train --data grid_25",
             "config": {"data": "grid_25", "means": [], "n_train": 100, "steps": 5, "continue_from": 2, "late_from": 2,
                        "late_lr": 1e-4}, "train_seconds": 12.3, "threads": 2}
    grid9 = {**entry, "file": "toy-grid_9-def.pt",
             "config": {**entry["config"], "data": "grid_9", "weights": [0.0625] * 4 + [0.5] + [0.0625] * 4,
                        "steps": 7, "continue_from": 5, "parent_from": 2, "continue_lr": 1e-5}}
    plain = {**entry, "file": "toy-mixture_1d-plain.pt", "config": {"data": "mixture_1d", "means": [1.0, 2.0, 3.0],
                                                                    "n_train": 100, "steps": 5}}
    (tmp_path / "MANIFEST.json").write_text(json.dumps([entry, {**entry, "file": "shapes-x.pt"}, grid9, plain]))
    table = tr.shipped_models_table(tmp_path)
    assert "`toy-grid_25-abc.pt`" in table and "shapes-x" not in table and "| 25 modes |" in table
    assert "| 9 modes, weights 0.0625–0.5 |" in table
    assert "| 5 (2 steps at lr 0.001 and 3 at 0.0001, a fresh Adam at 2) |" in table and "12 s (2 threads)" in table
    assert "| 7 (2 steps at lr 0.001, 3 at 0.0001 and 2 at 1e-05, a fresh Adam at 2 and 5) |" in table
    assert "| [1.0, 2.0, 3.0] | 100 | 5 |" in table                  # one rate, no restart: the steps alone
    with pytest.raises(ValueError, match="MANIFEST"):
        tr.shipped_models_table(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="config"):
        tr.recipe_text(entry["config"])                # a dict, not a ToyConfig


def test_bad_input_names_the_parameter():
    config = ToyConfig(steps=10)
    row = tr.measure_samples("a", _one_d(), config)
    with pytest.raises(TypeError, match="rows"):
        tr.gate_table([{"no": "label"}])
    with pytest.raises(ValueError, match="columns"):
        tr.gate_table([row], columns="all")
    with pytest.raises(ValueError, match="2-D"):
        tr.breakdown_table([row])
    with pytest.raises(ValueError, match="1-D"):
        tr.gap_table(tr.measure_samples("g", ToyConfig(data="grid_25", steps=10).mixture().sample(
            500, torch.Generator().manual_seed(0)), ToyConfig(data="grid_25", steps=10)))
    with pytest.raises(ValueError, match="extra_steps"):
        tr.decayed(config, -1, 1e-4)
    assert tr.decayed(config, 0, 1e-4) is config
    with pytest.raises(TypeError, match="label"):
        tr.measure_samples(3, _one_d(), config)
    with pytest.raises(TypeError, match="config"):
        tr.measure_model("a", "grid", 10)
    with pytest.raises(TypeError, match="config"):
        tr.measure_samples("a", _one_d(), "mixture_1d")


def test_steps_curve_groups_records_by_data_and_step():
    def record(data, step, rate):
        h = {"count": int(rate * 100), "n": 100, "rate": rate, "lo": rate / 2, "hi": rate * 2, "true_rate": 1e-6,
             "ratio_lo": 1.0}
        g = {"within": 1 - rate, "true_within": 0.989, "median_spread_ratio": 2.0, "worst_spread_ratio": 2.5,
             "blurred": [0], "passed": False}
        return {"experiment": "toy_model", "spec": {"model": {"data": data, "lr": 1e-3}}, "precision": "bfloat16",
                "result": {"rows": [{"step": step, "hallucination": h, "gate": g}]}}
    curve = tr.steps_curve([record("grid_25", 2000, 0.1), record("grid_25", 1000, 0.5), record("other", 5, 0.2)])
    assert list(curve) == ["grid_25", "other"] and [r["step"] for r in curve["grid_25"]] == [1000, 2000]
    num = tr.steps_numbers(curve)
    assert num["grid_25_last_step"] == 2000 and num["grid_25_rate"] == 0.1 and num["n_steps"] == 3
    assert num["grid_25_within"] == pytest.approx(0.9) and num["other_passed"] is False
    assert num["status"] == "has not converged by the strict gate"
    table = tr.steps_table(curve)
    assert "| grid_25 | 1,000 | 100 | 50.00% [25.00%, 100.00%] | 50.0% (true 98.9%) | 2.00 / 2.50 | 1 |" in table
    with pytest.raises(ValueError, match="same step"):
        tr.steps_curve([record("grid_25", 1000, 0.5), record("grid_25", 1000, 0.4)])
    with pytest.raises(ValueError, match="records\\[0\\]"):
        tr.steps_curve([{"experiment": "loop"}])
    with pytest.raises(TypeError, match="records"):
        tr.steps_curve("records.json")


def test_held_table_and_numbers_single_out_the_mode_at_the_origin():
    means = np.array([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    held = {"m": {"ts": np.array([0, 3]), "exact_slope": np.array([0.2, 0.05]),
                  "slope": np.array([[0.2, 20.0, 0.3], [0.05, 80.0, 0.06]]),
                  "error": np.array([[0.1, 1.5, 0.2], [0.2, 3.0, 0.3]]), "means": means}}
    num = tr.held_numbers(held)["m"]
    assert num["centre"] == 1 and num["centre_error"] == 3.0 and num["others_error"] == pytest.approx(0.25)
    assert num["slope_ratio"] == pytest.approx(20.0 / 0.25)
    table = tr.held_table(held)
    assert "| m | 3 | 0.050 | 80.00 | 0.055 (0.060) | 3.00 | 0.25 (0.30) |" in table
    assert all(line.count("|") == 8 for line in table.splitlines())
    other = {**held["m"], "error": held["m"]["error"] * 2}
    assert tr.held_range(tr.held_numbers({"m": held["m"], "n": other})) == {
        "centre_error_min": 3.0, "centre_error_max": 6.0, "others_error_max": pytest.approx(0.5),
        "slope_ratio_min": pytest.approx(80.0), "n_models": 2}


def test_contractions_measure_each_trained_model_and_refuse_anything_else(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    config = ToyConfig(n_train=200, batch_size=100, steps=20, width=16)
    held = tr.contractions({"tiny": config}, [0, 3])
    assert list(held) == ["tiny"] and held["tiny"]["slope"].shape == (2, 3)
    with pytest.raises(TypeError, match="configs\\['tiny'\\]"):
        tr.contractions({"tiny": config.to_dict()}, [0])


def test_longest_models_rebuilds_each_data_sets_longest_config():
    def record(config, seed=0):
        h = {"count": 1, "n": 10, "rate": 0.1, "lo": 0.0, "hi": 0.5, "true_rate": 1e-6, "ratio_lo": 0.0}
        g = {"within": 0.9, "true_within": 0.989, "median_spread_ratio": 1.0, "worst_spread_ratio": 1.0,
             "blurred": [], "passed": True}
        return {"experiment": "toy_model", "spec": {"model": config.to_dict(), "seed": seed},
                "result": {"rows": [{"step": config.steps, "hallucination": h, "gate": g}]}}
    short = ToyConfig(data="grid_25", steps=100)
    long = short.continued(50, 1e-4)
    out = tr.longest_models([record(short), record(long), record(ToyConfig(steps=10), seed=2)])
    assert out["grid_25"] == long and out["mixture_1d"] == ToyConfig(steps=10, seed=1236, data_seed=2)


def test_record_models_and_origin_mode_table():
    def record(config, seed, spreads, passed=False):
        h = {"count": 5, "n": 1000, "rate": 0.005, "lo": 0.001, "hi": 0.01, "true_rate": 1e-6, "ratio_lo": 0.0}
        g = {"within": 0.95, "true_within": 0.989, "median_spread_ratio": float(np.median(spreads)),
             "worst_spread_ratio": max(spreads), "spread_ratio": spreads, "blurred": [], "passed": passed}
        return {"experiment": "toy_model", "spec": {"model": config.to_dict(), "seed": seed},
                "result": {"rows": [{"step": 1, "hallucination": h, "gate": g}, {"step": config.steps,
                                                                                  "hallucination": h, "gate": g}]}}
    grid = ToyConfig(data="grid_25", steps=100, input_bias=True)
    wide_centre = [1.0] * 25
    wide_centre[12] = 1.6                                   # the lattice's mode at the origin is index 12
    models = tr.record_models([record(grid, 0, wide_centre), record(grid, 2, [1.1] * 25, passed=True)])
    assert [m["seed"] for m in models] == [0, 2] and models[0]["config"] == grid
    assert models[1]["config"] == ToyConfig(data="grid_25", steps=100, input_bias=True, seed=1236, data_seed=2)
    assert models[1]["row"]["step"] == 100
    table = tr.origin_mode_table({f"r{m['seed']}": (m["config"], m["row"]) for m in models})
    assert "| r0 | 95.0% (true 98.9%) | 1.00 | 1.60 (1 of 25) | 0.50% [0.10%, 1.00%] (5 of 1,000) | **fail** |" in table
    assert "| r2 | 95.0% (true 98.9%) | 1.10 | 1.10 (1 of 25) |" in table and table.rstrip().endswith("| pass |")
    with pytest.raises(ValueError, match="records\\[0\\]"):
        tr.record_models([{"experiment": "loop"}])
    with pytest.raises(TypeError, match="records"):
        tr.record_models({"experiment": "toy_model"})
    assert [tr.origin_mode_rank(m["config"], m["row"]) for m in models] == [1, 1]
    assert tr.origin_mode_rank(grid, {"gate": {"spread_ratio": [2.0] * 12 + [1.0] * 13}}) == 13
    with pytest.raises(ValueError, match="25 modes"):
        tr.origin_mode_rank(grid, {"gate": {"spread_ratio": [1.0] * 3}})
    with pytest.raises(ValueError, match="models"):
        tr.origin_mode_table({})


def test_measured_from_records_and_converged_numbers():
    def record(config, rate, spreads, checks):
        h = {"count": int(rate * 1000), "n": 1000, "rate": rate, "lo": rate / 2, "hi": rate * 2, "true_rate": 1e-6,
             "ratio_lo": 1.0}
        g = {"within": 0.99, "true_within": 0.989, "median_spread_ratio": float(np.median(spreads)),
             "worst_spread_ratio": max(spreads), "spread_ratio": spreads, "blurred": [], "checks": checks,
             "passed": all(checks.values())}
        return {"experiment": "toy_model", "spec": {"model": config.to_dict(), "seed": 0},
                "result": {"rows": [{"step": config.steps, "hallucination": h, "gate": g, "train_seconds": 1800.0}]}}
    short = ToyConfig(data="grid_25", steps=100, input_bias=True)
    long = short.continued(50, 1e-4)
    rows = tr.measured_from_records([record(short, 0.01, [1.5] * 25, {"a": True, "b": False}),
                                     record(long, 0.001, [1.17] * 24 + [1.3], {"a": True, "b": False, "c": True})],
                                    "grid, bias")
    assert [r["label"] for r in rows] == ["grid, bias, 100 steps", "grid, bias, 150 steps"]
    replicates = [record(short, 0.01, [1.5] * 25, {"a": True}) for _ in range(2)]
    replicates[1]["spec"]["seed"] = 1                  # a sweep's replicates: the labels name them
    replicates[1]["result"]["rows"][0]["source"] = "trained in this run"     # the run that made the record
    assert tr.measured_from_records(replicates, "grid")[1]["source"] == "trained when its record was made"
    assert [r["label"] for r in tr.measured_from_records(replicates, "grid")] == \
        ["grid, 100 steps, replicate 0", "grid, 100 steps, replicate 1"]
    held = {"m": {"ts": np.array([0]), "exact_slope": np.array([0.2]), "slope": np.array([[0.2] * 25]),
                  "error": np.array([[0.2] * 12 + [0.4] + [0.2] * 12]), "means": mi.grid_25().means}}
    n = tr.converged_numbers(rows, held)
    assert n["first_hal_rate"] == 0.01 and n["last_hal_rate"] == 0.001 and n["train_hours"] == 1.0
    assert n["gate_text"] == "fails b" and n["worst_spread"] == 1.3 and n["error_ratio_max"] == pytest.approx(2.0)
    assert n["origin_rank"] == 2 and n["n"] == 1000
    assert n["prev_hal_rate"] == 0.01 and n["prev_steps"] == 100 and n["last_steps"] == 150    # two rows: prev is first
    longer = record(short.continued(100, 1e-4), 0.0005, [1.05] * 25, {"a": True, "b": True})   # a longer decay
    n3 = tr.converged_numbers(rows + tr.measured_from_records([longer], "grid, bias"), held)
    assert n3["prev_gate_text"] == "fails b" and n3["gate_text"] == "passes every check" and n3["prev_worst_spread"] == 1.3
    with pytest.raises(TypeError, match="prefix"):
        tr.measured_from_records([], 3)


def test_measured_2d_redraw_and_decay_claims():
    def record(config, count, within, passed):
        h = {"count": count, "n": 10_000, "rate": count / 10_000, "lo": 0.0, "hi": 1.0, "true_rate": 1e-6,
             "ratio_lo": 1.0}
        g = {"within": within, "median_spread_ratio": 1.5, "worst_spread_ratio": 1.7, "spread_ratio": [1.5] * 25,
             "blurred": [], "passed": passed}
        return {"experiment": "toy_model", "spec": {"model": config.to_dict(), "seed": 0},
                "result": {"rows": [{"step": config.steps, "hallucination": h, "gate": g, "non_finite": 0,
                                     "train_seconds": 60.0}]}}
    before = {d: ToyConfig(data=d, steps=100) for d in tr.NAMES_2D}
    after = {d: c.continued(50, 1e-4) for d, c in before.items()}
    models = {**tr.measured_2d([record(after[d], 250, 0.93, False) for d in after], after.values()),
              **tr.measured_2d([record(before[d], 900, 0.65, False) for d in before], before.values(), ", before")}
    assert list(models) == ["grid", "diamond", "grid, before", "diamond, before"]
    assert models["grid"]["config"] == after["grid_25"] and models["diamond, before"]["label"] == "diamond, before"
    same = {"label": "grid, redrawn", "config": after["grid_25"],
            "m": {"hallucination": {"count": 26, "n": 1_000}, "gate": {"within": 0.93}, "non_finite": 0}}
    far = {**same, "m": {"hallucination": {"count": 60, "n": 1_000}, "gate": {"within": 0.93}}}
    agree, differ = tr.redraw_numbers(models["grid"], same), tr.redraw_numbers(models["grid"], far)
    assert agree["agrees"] and abs(agree["z_rate"]) < 1 and agree["z_within"] == pytest.approx(0.0)
    assert not differ["agrees"] and differ["z_rate"] > 3.29            # 6% drawn against 2.5% recorded
    claims = tr.decay_claims(models, {"grid": agree})
    assert list(claims.values()) == [True, True] and "grid, before" in list(claims)[0]
    assert tr.decay_claims(models, {"grid": differ}) != {k: True for k in claims}
    passing = {**models, "grid, before": {**models["grid, before"], "m": {**models["grid, before"]["m"],
                                                                        "gate": {"passed": True}}}}
    assert not list(tr.decay_claims(passing, {"grid": agree}).values())[0]
    with pytest.raises(ValueError, match="none of the configs"):
        tr.measured_2d([record(after["grid_25"], 1, 0.9, False)], before.values())
    with pytest.raises(ValueError, match="no record measures"):
        tr.measured_2d([record(after["grid_25"], 1, 0.9, False)], after.values())
    with pytest.raises(ValueError, match="two models"):
        tr.measured_2d([record(after["grid_25"], 1, 0.9, False)] * 2, [after["grid_25"]])
    with pytest.raises(ValueError, match="takes records of"):
        tr.measured_2d([record(ToyConfig(steps=10), 1, 0.9, False)], [ToyConfig(steps=10)])
    with pytest.raises(ValueError, match="one config"):
        tr.redraw_numbers(models["grid"], {**same, "config": before["grid_25"]})
    with pytest.raises(ValueError, match="before their decay"):
        tr.decay_claims({"grid": models["grid"]}, {"grid": agree})


def test_gap_reading_compares_the_widest_gap_per_unit_length():
    def row(per_length, passed):
        gaps = [{"between": b, "count": 1, "per_unit_length": v} for b, v in zip(([1, 2], [2, 4], [4, 5]), per_length)]
        gate = {"passed": passed, "within": 0.98, "median_spread_ratio": 1.2}
        return {"label": "m", "m": {"gaps": gaps, "gate": gate}}
    fewer = tr.gap_reading(row((140, 46, 310), False))
    assert "2–4 gap holds 4.9× fewer" in fewer and "(46 against 225)" in fewer and "not a finding" in fewer
    more = tr.gap_reading(row((10, 46, 20), True))
    assert "as many samples as the other gaps' mean or more" in more and more.endswith("passes the gate.")
    with pytest.raises(ValueError, match="two gaps"):
        tr.gap_reading({"label": "m", "m": {"gaps": [{"between": [1, 2], "per_unit_length": 1}]}})


def test_gap_replicates_compare_the_wide_gap_per_unit_length_across_gated_replicates():
    config = ToyConfig(means=(1.0, 2.0, 4.0, 5.0), steps=10)

    def rep(counts, passed=True, cfg=config):
        g = torch.Generator().manual_seed(sum(counts))
        on = torch.tensor(cfg.means).repeat(250) + 0.02 * torch.randn(250 * len(cfg.means), generator=g)
        mids = torch.cat([torch.full((c,), (a + b) / 2) for c, a, b in zip(counts, cfg.means[:-1], cfg.means[1:])])
        row = tr.measure_samples(f"r{counts}", torch.cat([on, mids]).unsqueeze(1), cfg)
        row["m"]["gate"]["passed"] = passed          # hand-placed points do not have the chain's mode widths
        return row

    fewer = tr.gap_replicates([rep((10, 6, 10)), rep((12, 5, 8)), rep((9, 7, 11))])
    assert fewer["n_gated"] == 3 and fewer["verdict"] == "fewer" and fewer["gated_counts"] == [31, 18, 29]
    first = fewer["replicates"][0]   # open lengths 0.5, 1.5, 0.5; pseudo-counts 0.3, 0.9, 0.3 (half per mean length)
    assert first["density"] == pytest.approx([20.6, 6.9 / 1.5, 20.6])
    assert first["log_ratio"] == pytest.approx(np.log(6.9 / 1.5 / 20.6))
    assert fewer["ratio_hi"] < 1 and fewer["ratio_lo"] < fewer["ratio"] < fewer["ratio_hi"]
    table = tr.gap_replicates_table(fewer)
    assert "| 1–2: samples | 2–4: samples | 4–5: samples |" in table
    assert "| 0 | pass | 10 | 6 | 10 | 0.22 |" in table and "| 2 | pass | 9 | 7 | 11 | 0.26 |" in table
    num = tr.gap_replicates_numbers(fewer)
    assert num["gap_12"] == 31 and num["gap_24"] == 18 and num["gap_24_per_length"] == pytest.approx(18 / 1.5)
    assert num["verdict"] == "fewer" and num["n_gated"] == 3 and 0 < num["p"] < 0.05
    assert num["verdict_text"].startswith("fewer samples per unit length across the wide gap")
    assert "the closer two modes, the more mass between them" in tr.gap_replicates_reading(fewer)
    assert list(tr.gap_replicates_claims(fewer, "m").values()) == [True]
    mixed = tr.gap_replicates([rep((10, 6, 10)), rep((3, 40, 3)), rep((10, 30, 10))])
    assert mixed["verdict"] == "not resolved" and "do not resolve" in tr.gap_replicates_reading(mixed)
    assert list(tr.gap_replicates_claims(mixed, "m").values()) == [False]
    more = tr.gap_replicates([rep((2, 40, 2)), rep((3, 45, 3)), rep((2, 50, 3))])
    assert more["verdict"] == "more" and more["ratio_lo"] > 1 and "against the gap sweep" in tr.gap_replicates_reading(more)
    # no evidence, no verdict: empty gaps, and counts exactly proportional to the gaps' lengths, give ratio 1
    for counts in [((0, 0, 0),) * 3, ((2, 6, 2), (3, 9, 3), (1, 3, 1))]:
        flat = tr.gap_replicates([rep(c) for c in counts])
        assert all(np.exp(e["log_ratio"]) == pytest.approx(1.0) for e in flat["replicates"])
        assert flat["verdict"] is None and tr.gap_replicates_claims(flat, "m") == {"m: the wide gap holds fewer "
            "samples per unit length than the narrow gaps, across 3 gated replicates (95% upper end of the ratio < 1)":
            False}
    one = tr.gap_replicates([rep((10, 6, 10)), rep((12, 5, 8), passed=False)])
    assert one["n_gated"] == 1 and one["verdict"] is None and one["interval"] is None and one["gated_counts"] == [10, 6, 10]
    assert tr.gap_replicates_claims(one, "m", min_gated=2) == {} and "1 of 2 replicates" in tr.gap_replicates_reading(one)
    assert np.isnan(tr.gap_replicates_numbers(one)["ratio"]) and tr.gap_replicates_numbers(one)["verdict"] == "withheld"
    with pytest.raises(ValueError, match="two gaps"):
        tr.gap_replicates(tr.measure_samples("g", ToyConfig(data="grid_25", steps=10).mixture().sample(
            100, torch.Generator().manual_seed(0)), ToyConfig(data="grid_25", steps=10)))
    with pytest.raises(ValueError, match="one mixture"):
        tr.gap_replicates([rep((10, 6, 10)), rep((3, 3), cfg=ToyConfig(steps=10))])
    with pytest.raises(ValueError, match="k_label must be the distance"):
        tr.gap_replicates([rep((10, 6, 10))], k_label=4.0)
    with pytest.raises(ValueError, match="no open gap"):
        tr.gap_replicates([rep((10, 6, 10))], k_label=10.0)
    for bad in (dict(k_label=0), dict(confidence=5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            tr.gap_replicates([rep((10, 6, 10))], **bad)
