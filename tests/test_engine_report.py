"""The engine page's bookkeeping (mode_interp.engine_check: read_record, benchmark_numbers,
validation_report, twins_report, live_table): every number recomputed from the shipped benchmark records,
the branches on synthetic records, bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mode_interp import engine_check as E
from mode_interp.stats import mean_interval, two_proportion_z


@pytest.fixture(scope="module")
def rows():
    return E.read_record("results.json")


@pytest.fixture(scope="module")
def validation():
    return E.read_record("precision_validation.json")


def cells(table: str) -> list:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_read_record(tmp_path):
    assert isinstance(E.read_record("results.json"), list)
    with pytest.raises(ValueError, match="name"):
        E.read_record("no_such_record.json")
    with pytest.raises(TypeError, match="name"):
        E.read_record(3)
    (tmp_path / "r.json").write_text('{"a": 1}')
    assert E.read_record("r.json", tmp_path) == {"a": 1}


def test_benchmark_numbers_equal_the_record(rows):
    n = E.benchmark_numbers(rows)
    sampling = [r for r in rows if r["kind"] == "sampling"]
    big = max(r["batch"] for r in sampling)
    best = max((r for r in sampling if r["batch"] == big), key=lambda r: r["ratio_vs_plain"])
    assert n["big"] == big and n["best_ratio"] == best["ratio_vs_plain"] and n["best_rate"] == best["per_second"]
    assert n["best_variant"].startswith(best["variant"])
    assert n["train_ratio"] == max(r["ratio_vs_plain"] for r in rows if r["kind"] == "training")
    memory = next(r for r in rows if r["kind"] == "memory")
    assert (n["memory"], n["memory_n"], n["trajectory"]) == (memory["peak_rss_mib"], memory["batch"],
                                                            memory["plain_trajectory_mib_at_T1000"])
    assert n["machine"].startswith(f"torch {rows[0]['torch']}") and rows[0]["command"] in n["record"]


@pytest.mark.parametrize("sample, train, words", [(13, 4, "meets both"), (2, 4, "meets the training target but not"),
                                                  (13, 1, "meets the sampling target but not"), (2, 1, "meets neither")])
def test_benchmark_targets_in_words(rows, sample, train, words):
    changed = copy.deepcopy(rows)
    for r in changed:
        if r["kind"] in ("sampling", "training"):
            r["ratio_vs_plain"] = sample if r["kind"] == "sampling" else train
    assert E.benchmark_numbers(changed)["targets"].startswith(words)


def test_benchmark_numbers_refuse_bad_input(rows):
    with pytest.raises(TypeError, match="rows"):
        E.benchmark_numbers({"kind": "sampling"})
    with pytest.raises(ValueError, match="memory"):
        E.benchmark_numbers([r for r in rows if r["kind"] != "memory"])


def test_validation_report_recomputes_the_record(validation):
    table, numbers, studies = E.validation_report(validation)
    assert list(studies) == ["1d", "grid", "shapes"] and len(cells(table)) == 3
    for key, row in zip(studies, cells(table)):
        a, b = validation[key]["result"]["float32"], validation[key]["result"]["bfloat16"]
        z = two_proportion_z(a["hallucinated"], a.get("readable", a["n"]), b["hallucinated"], b.get("readable", b["n"]))
        assert studies[key]["z"] == pytest.approx(z) and row[3] == f"{z:+.2f}"
        assert studies[key]["ran"] == b["precision"]
        if a["auroc"] and b["auroc"]:
            inside = a["auroc"]["lo"] <= b["auroc"]["auroc"] <= a["auroc"]["hi"] and \
                b["auroc"]["lo"] <= a["auroc"]["auroc"] <= b["auroc"]["hi"]
            assert studies[key]["overlap"] == inside
        if "spread" in a:
            rel = np.array(b["spread"]) / np.array(a["spread"]) - 1
            assert studies[key]["spread"] == pytest.approx(rel.mean())
            assert studies[key]["spread_max"] == pytest.approx(np.abs(rel).max()) and studies[key]["modes"] == len(rel)
            assert f"every one of {len(rel)} modes within 2%" in numbers["spread_note"]
        else:
            assert studies[key]["spread"] is None and row[7] == "–"
    assert validation["1d"]["command"] in numbers["validation_record"]


def test_validation_report_with_fewer_studies(validation):
    only_shapes = {"shapes": validation["shapes"]}
    table, numbers, studies = E.validation_report(only_shapes)
    assert list(studies) == ["shapes"] and numbers["spread_note"] == "No toy study in the record."
    with pytest.raises(ValueError, match="none of the studies"):
        E.validation_report({"training": validation["training"]})
    with pytest.raises(TypeError, match="validation"):
        E.validation_report([])


def test_twins_report_recomputes_the_record(validation):
    table, numbers, twins = E.twins_report(validation)
    records = validation["training"]["result"]
    assert numbers["twin_n"] == len(records) == len(twins) and len(cells(table)) == 2 * len(records)
    rate = mean_interval([r["bfloat16"]["rate"] - r["float32"]["rate"] for r in records])
    assert numbers["twin_rate"] == f"{rate['mean']:+.2%} [{rate['lo']:+.2%}, {rate['hi']:+.2%}] (t-test p = {rate['p']:.2f})"
    for tw, r in zip(twins, records):
        assert tw["gates_pass"] == (all(r["float32"]["gate"].values()) and all(r["bfloat16"]["gate"].values()))
        assert tw["trained_as_asked"] == (r["float32"]["trained_in"] == "float32" and r["bfloat16"]["trained_in"] == "bfloat16")
        assert tw["z"] == pytest.approx(two_proportion_z(r["float32"]["hallucinated"], r["float32"]["n"],
                                                         r["bfloat16"]["hallucinated"], r["bfloat16"]["n"]))
    higher = sum(r["bfloat16"]["rate"] > r["float32"]["rate"] for r in records)
    assert f"higher in {higher} of {len(records)} seeds" in numbers["twin_verdict"]
    one = {"training": {"result": records[:1]}}
    _, numbers, twins = E.twins_report(one)
    assert numbers["twin_n"] == 1 and numbers["twin_rate"].startswith("not available") and len(twins) == 1
    _, numbers, twins = E.twins_report({})
    assert numbers["twin_n"] == 0 and twins == []
    with pytest.raises(ValueError, match="confidence"):
        E.twins_report(validation, confidence=1.0)


def test_live_table():
    run = lambda p, h: {"precision": p, "rate": h / 100, "rate_lo": 0.0, "rate_hi": 0.1, "hallucinated": h,  # noqa: E731
                        "auroc": None, "spread": [0.9, 1.1], "seconds": 2.0}
    live = {"float32": run("float32", 3), "bfloat16": run("bfloat16", 4), "z": 0.5, "paired_discordant": 1,
            "spread_max_rel": 0.01, "max_abs_x0": 0.002}
    table, summary = E.live_table(live)
    assert cells(table) == [["float32", "float32", "3.00% [0.00%, 10.00%] (3)", "– (one class)", "0.900 – 1.100", "2"],
                            ["bfloat16", "bfloat16", "4.00% [0.00%, 10.00%] (4)", "– (one class)", "0.900 – 1.100", "2"]]
    assert summary == "z = +0.50; samples whose label changed: 1; largest spread difference 1.00%; largest |x0 difference| 0.002"
    with pytest.raises(ValueError, match="bfloat16"):
        E.live_table({"float32": live["float32"]})
    with pytest.raises(TypeError, match="live"):
        E.live_table([])


def test_claims_follow_the_record_and_can_fail(validation):
    _, _, studies = E.validation_report(validation)
    _, _, twins = E.twins_report(validation)
    live = {"float32": {"n": 1_000}, "z": 0.4, "aurocs_overlap": True}
    claims = E.claims(studies, twins, live)
    n_expected = sum(1 + (s["overlap"] is not None) + (s["spread"] is not None) for s in studies.values())
    assert len(claims) == n_expected + len(twins) + 2
    assert "live check (1,000 samples): hallucinated fractions equal (|z| < 3.29)" in claims
    # each claim follows its own input: a large z or a failed gate turns exactly that claim false
    bad = copy.deepcopy(studies)
    key = next(iter(bad))
    bad[key]["z"] = 5.0
    failed = [k for k, ok in E.claims(bad, twins, {**live, "z": 4.0}).items() if not ok]
    assert failed == [f"{bad[key]['name']}: hallucinated fractions equal under bfloat16 (|z| < 3.29)",
                      "live check (1,000 samples): hallucinated fractions equal (|z| < 3.29)"]
    twins_bad = [{**twins[0], "gates_pass": False}] + twins[1:]
    assert [k for k, ok in E.claims(studies, twins_bad, live).items() if not ok] == \
        ["training twin, seed 0: the bfloat16-trained model passes the quality gate, as its float32 twin does"]
    with pytest.raises(TypeError, match="live"):
        E.claims(studies, twins, [])
    with pytest.raises(ValueError, match="^z must"):
        E.claims(studies, twins, live, z=0)
