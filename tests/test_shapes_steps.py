"""Chapter 3's training-time curve (:mod:`mode_interp.shapes_steps`) on hand-made records: rates recomputed
from counts, the settling test, claims withheld from a run that has not settled, and refused mixtures."""
import math

import pytest

from mode_interp import shapes_steps as st
from mode_interp.stats import two_proportion_z, wilson_interval

MODEL = {"resolution": 32, "n_images": 5000, "data_seed": 0, "channels": [16, 32, 64], "batch_size": 64,
         "lr": 5e-4, "ema_decay": 0.999, "seed": 0, "T": 1000, "beta_start": 1e-4, "beta_end": 0.02,
         "precision": "bfloat16"}


def _row(step, hallucinated, valid=900, n=1000, multi=3):
    malformed = n - valid - hallucinated
    return {"step": step, "n_generated": n, "valid_count": valid, "hallucinated_count": hallucinated,
            "malformed_count": malformed, "noisy_count": 0, "multi_total": multi}


def _record(step, hallucinated, losses=None, **kw):
    spec = {"model": {**MODEL, "steps": step}, "at_steps": [step], "seed": 0, "n_samples": 1000,
            "sample_seed": 0, "sample_steps": 250, "z": 3.29}
    return {"experiment": "shapes_model", "spec": spec,
            "result": {"rows": [_row(step, hallucinated, **kw)], "losses": losses if losses is not None else [0.05] * (step // 50)}}


def test_rows_sort_snapshots_and_read_the_longest_runs_losses():
    losses = [0.1] * 20 + [0.05] * 100
    rows, curve = st.rows([_record(6000, 30, losses), _record(1000, 60)])
    assert [r["step"] for r in rows] == [1000, 6000] and curve == losses
    assert st.loss_at(losses, 1000) == pytest.approx(0.1) and st.loss_at(losses, 6000) == pytest.approx(0.05)
    assert st.loss_at(losses, 1500, window=1000) == pytest.approx((10 * 0.1 + 10 * 0.05) / 20)


def test_rates_and_intervals_are_recomputed_from_counts():
    losses = [0.05] * 240
    rows, curve = st.rows([_record(6000, 40), _record(12000, 35, losses)])
    out = st.numbers(rows, curve)
    assert out["last_hallucinated"] == 0.035
    assert (out["last_hallucinated_lo"], out["last_hallucinated_hi"]) == pytest.approx(wilson_interval(35, 1000, 3.29))
    assert out["settled"] == "settled" and out["loss_change"] == 0.0 and out["status"].startswith("holds")
    assert out["outlook"].startswith("The run has settled by 12,000 steps and still hallucinates")
    assert out["trend_from"] == 6000
    assert "| 12,000 |" in st.table(rows, curve)
    claims, sanity = st.claims(rows, curve)
    assert all(claims.values()) and len(claims) == 1 and all(sanity.values())
    assert not any(st.claims(*st.rows([_record(6000, 35), _record(12000, 35, losses, multi=0)]))[0].values())


def test_a_run_still_changing_gets_no_claim():
    falling = [0.06] * 120 + [0.05] * 120          # the loss fell 17% between the two snapshots
    rows, curve = st.rows([_record(6000, 35), _record(12000, 35, falling)])
    s = st.settled(rows, curve)
    assert not s["passed"] and s["loss_change"] == pytest.approx(-1 / 6)
    claims, sanity = st.claims(rows, curve)
    assert claims == {} and all(sanity.values())
    assert st.numbers(rows, curve)["outlook"].endswith("is open: the run has not settled by 12,000 steps.")
    rows, curve = st.rows([_record(6000, 80), _record(12000, 20, [0.05] * 240)])    # the rate moved
    assert not st.settled(rows, curve)["passed"] and st.settled(rows, curve)["rate_z"] < -3.29


def test_the_reference_is_compared_at_its_own_step():
    rows, curve = st.rows([_record(3000, 50), _record(12000, 35, [0.05] * 240)])
    ref = _row(3000, 60)
    out = st.numbers(rows, curve, reference=ref)
    assert out["ref_step"] == 3000 and out["ref_hallucinated"] == 0.06 and out["ref_z"] < 0 and out["x_longer"] == 4
    assert out["ref_verdict"].startswith("no difference") and out["trend"].startswith("no change")
    assert out["trend_from"] == 3000 and out["trend_from_hallucinated"] == 0.05
    assert out["last_among_read"] == pytest.approx(35 / 935)
    assert st.numbers(*st.rows([_record(3000, 90), _record(12000, 20, [0.05] * 240)]))["trend"] == "fell"
    with pytest.raises(ValueError, match="step 2000"):
        st.numbers(rows, curve, reference=_row(2000, 60))
    fig = st.plot(rows, curve, reference=ref)
    assert len(fig.axes) == 2


def test_records_of_different_runs_or_a_repeated_step_are_refused():
    other = _record(6000, 30)
    other["spec"]["model"]["lr"] = 1e-3
    with pytest.raises(ValueError, match="model.lr"):
        st.rows([_record(3000, 30), other])
    with pytest.raises(ValueError, match="twice"):
        st.rows([_record(3000, 30), _record(3000, 31)])
    with pytest.raises(ValueError, match="at least one"):
        st.rows([])
    with pytest.raises(ValueError, match="at most"):
        st.loss_at([0.1] * 10, 1000)
    with pytest.raises(ValueError, match="two snapshots"):
        st.settled(st.rows([_record(3000, 30)])[0], [0.1] * 60)
    assert math.isfinite(st.settled(*st.rows([_record(3000, 30), _record(6000, 30)]))["rate_z"])


def test_load_reads_a_sweep_and_its_reference(monkeypatch):
    from mode_interp import sweep

    fake = {"steps.json": [_record(3000, 50), _record(12000, 35, [0.05] * 240)], "ref.json": [_record(3000, 60)],
            "two.json": [_record(3000, 60), _record(6000, 60)]}
    monkeypatch.setattr(sweep, "sweep_records", lambda name: fake[name])
    curve = st.load("steps.json", "ref.json")
    assert [r["step"] for r in curve.rows] == [3000, 12000] and curve.reference["hallucinated_count"] == 60
    assert curve.numbers()["ref_hallucinated"] == 0.06 and curve.table() == st.table(curve.rows, curve.losses)
    assert curve.claims() == st.claims(curve.rows, curve.losses) and len(curve.plot().axes) == 2
    assert st.load("steps.json").reference is None
    assert curve.numbers()["runs_rerun"] is False and curve.numbers()["runs_last_run_steps"] == "3,000 and 12,000"
    with pytest.raises(ValueError, match="one record"):
        st.load("steps.json", "two.json")


def test_run_split_names_the_snapshots_of_a_rerun_and_how_far_its_loss_strays():
    first = [0.1] * 40 + [0.05] * 80                       # a lost run, snapshots at 3,000 and 6,000 steps
    rerun = [0.1] * 40 + [0.051] * 80 + [0.04] * 120       # its rerun to 12,000: the loss parts at step 2,000
    records = [_record(6000, 30, first), _record(3000, 40, first[:60]), _record(12000, 20, rerun)]
    split = st.run_split(records)
    assert split["last_run_steps"] == [12000] and split["other_steps"] == [3000, 6000] and split["rerun"]
    assert split["common_steps"] == 6000 and split["loss_diff_max"] == pytest.approx(0.001 / 0.051)
    assert "at 3,000 and 6,000 steps come from an earlier run" in split["reading"] and "within 2.0%" in split["reading"]
    one = st.run_split(records[:2])
    assert {k: v for k, v in one.items() if k != "reading"} == {"last_run_steps": [3000, 6000], "other_steps": [],
                                                             "rerun": False, "common_steps": 0, "loss_diff_max": 0.0}
    assert one["reading"] == "All its snapshots come from one training run."
    with pytest.raises(ValueError, match="records"):
        st.run_split([])
    with pytest.raises(ValueError, match="window"):
        st.run_split(records, window=10)


def test_compare_table_sets_runs_side_by_side():
    a, b = _row(3000, 80), _row(3000, 40)
    text = st.compare_table({"32x32": a, "64x64": b})
    lines = text.splitlines()
    assert len(lines) == 4 and lines[2].startswith("| 32x32 | 3,000 |") and lines[2].endswith("| – |")
    z = two_proportion_z(80, a["n_generated"], 40, b["n_generated"])
    assert lines[3].endswith(f"| {z:+.2f} |")
    with pytest.raises(ValueError, match="named"):
        st.compare_table({})
    with pytest.raises(TypeError, match="named"):
        st.compare_table([a, b])
    curve = st.Curve(*st.rows([_record(3000, 50), _record(12000, 35, [0.05] * 240)]))
    assert curve.at(3000)["hallucinated_count"] == 50
    with pytest.raises(ValueError, match="one of the snapshots"):
        curve.at(4000)


def test_beside_numbers_recomputes_rates_and_names_an_under_trained_model():
    base = {**_row(3000, 80, valid=870), "train_seconds": 900.0}
    low = {**_row(3000, 180, valid=360), "train_seconds": 4500.0}
    out = st.beside_numbers(low, base)
    rate, lo, hi = 0.18, *wilson_interval(180, 1000, 3.29)
    assert (out["hallucinated"], out["hallucinated_lo"], out["hallucinated_hi"]) == pytest.approx((rate, lo, hi))
    assert out["base_hallucinated"] == pytest.approx(0.08) and out["valid"] == pytest.approx(0.36)
    assert out["gate"] == "fails" and out["reading"].startswith("Its hallucinated share is therefore not used")
    assert out["status"] == "fails the quality gate at 3,000 steps: no claim" and out["gate_min"] == st.VALID_GATE
    assert out["step_cost"] == pytest.approx(5.0) and out["train_hours"] == pytest.approx(1.25)
    assert out["z"] == pytest.approx(two_proportion_z(80, 1000, 180, 1000))
    good = st.beside_numbers({**_row(3000, 40, valid=500), "train_seconds": 900.0}, base)
    assert good["gate"] == "passes" and good["reading"].startswith("It is one run")   # 50% valid is the gate's edge
    with pytest.raises(ValueError, match="base must be measured at the row's step 3,000"):
        st.beside_numbers(low, {**base, "step": 6000})
    with pytest.raises(TypeError, match="row"):
        st.beside_numbers([low], base)


def test_a_second_run_is_set_beside_the_first_at_the_steps_both_measured():
    a = [_row(1000, 60), _row(6000, 45), _row(12000, 18)]
    b = [_row(6000, 30), _row(12000, 60)]
    assert [s for s, _, _ in st.common_steps(a, b)] == [6000, 12000]
    out = st.replicate_numbers(a, b)
    assert out["steps"] == "6,000 and 12,000" and out["n_common"] == 2 and out["step"] == 12000
    assert (out["a"], out["b"]) == (0.018, 0.06) and out["b_last_step"] == 12000
    assert out["z"] == pytest.approx(two_proportion_z(18, 1000, 60, 1000)) and out["z"] > 3.29
    assert (out["b_lo"], out["b_hi"]) == pytest.approx(wilson_interval(60, 1000, 3.29))
    assert out["max_abs_z"] == pytest.approx(out["z"]) and out["verdict"].startswith("a difference resolved at 1 of 2")
    same = st.replicate_numbers(a, [_row(6000, 44)])
    assert same["steps"] == "6,000" and same["verdict"].startswith("no difference resolved")
    lines = st.replicate_table({"bfloat16": a, "float32": b}).splitlines()
    assert len(lines) == 2 + 4 and lines[2].startswith("| 6,000 | bfloat16 | 1,000 | 4.5% [")
    assert lines[2].endswith("| – |") and lines[5].endswith(f"| {out['z']:+.2f} |")


def test_runs_without_a_common_step_or_a_third_run_are_refused():
    with pytest.raises(ValueError, match="no snapshot step"):
        st.common_steps([_row(1000, 60)], [_row(6000, 30)])
    with pytest.raises(ValueError, match="two runs"):
        st.replicate_table({"a": [_row(1000, 60)]})
    with pytest.raises(TypeError, match="named"):
        st.replicate_table([_row(1000, 60)])


def test_a_settled_run_without_hallucinations_fails_the_claim_and_says_so(capsys):
    rows, curve = st.rows([_record(6000, 1, multi=1), _record(12000, 0, [0.05] * 240, multi=0)])
    out = st.numbers(rows, curve)
    assert out["settled"] == "settled" and out["last_hallucinated_lo"] == 0.0
    assert out["status"] == "fails: no hallucination resolved at 12,000 steps"
    assert "no hallucination resolved (99.9% lower bound 0 of 1,000 images)" in out["outlook"]
    claims, sanity = st.claims(rows, curve)                   # the answer is measured, reported, not asserted
    assert claims == {} and all(sanity.values()) and "NOT REPRODUCED" in capsys.readouterr().out
