"""Chapter 6 §6.8: the 2-D sampler grid (mode_interp.samplers_2d), on the shipped record of the gated network
and exact-score records derived from it (so the tests do not depend on the exact sweep having run)."""

from __future__ import annotations

import copy
import math

import pytest

from mode_interp import samplers_2d as s2
from mode_interp.stats import two_proportion_z, wilson_interval
from mode_interp.sweep import sweep_records


@pytest.fixture(scope="module")
def learned():
    return sweep_records("sweeps/samplers_2d_learned.json")


def _exact(learned, seeds=(0, 1, 2), rate_10=0.3):
    """Exact-score records with the learned record's grid: a rate of ``rate_10`` at 10 steps, 0 on all steps."""
    out = []
    for seed in seeds:
        rec = copy.deepcopy(learned[0])
        rec["spec"].update(score="exact", seed=seed)
        for r in rec["result"]["rows"]:
            count = round(r["n"] * (rate_10 + 0.01 * seed)) if r["steps"] == 10 else (seed if r["steps"] < 1000 else 0)
            r.update(seed=seed, count=count, rate=count / r["n"])
        out.append(rec)
    return out


def test_study_recomputes_the_record(learned):
    s = s2.study(learned, _exact(learned))
    rows = {(r["sampler"], r["steps"]): r for r in learned[0]["result"]["rows"]}
    for r in s["learned"]:
        ref = rows[r["sampler"], r["steps"]]
        assert r["mean"] == ref["count"] / ref["n"]
        assert (r["lo"], r["hi"]) == wilson_interval(ref["count"], ref["n"])
    assert s["ddim_z"] == two_proportion_z(rows["DDPM", 1000]["count"], rows["DDPM", 1000]["n"],
                                           rows["DDIM eta=0", 1000]["count"], rows["DDIM eta=0", 1000]["n"])
    ex10 = next(r for r in s["exact"] if r["sampler"] == "DDPM" and r["steps"] == 10)
    assert ex10["n_seeds"] == 3 and ex10["lo"] < ex10["mean"] < ex10["hi"]
    assert s["gate"] == learned[0]["result"]["reference"]["gate"] and s["true_rate"] > 0
    table = s2.table(s)
    assert len(table.splitlines()) == 2 + 2 * 4 and "gated network, DDIM eta=0" in table
    assert "–" not in s2.auroc_table(s).split("\n")[2]  # DDPM at every T' has both classes in the record


def test_claims_follow_the_numbers(learned):
    s = s2.study(learned, _exact(learned))
    agree = s2.agreement(s, [{**r, "score": "learned"} for r in learned[0]["result"]["rows"][:2]])
    claims, sanity = s2.claims(s, agree)
    assert sanity and all(sanity.values())
    assert all(a["overlap"] for a in agree) and claims["2-D: every chain rerun in this run agrees with its record "
                                                        "(99.9% Wilson intervals overlap)"]
    # few steps that do not hallucinate: that claim fails, and only it
    low = s2.study(learned, _exact(learned, rate_10=0.01))
    failed = [k for k, ok in s2.claims(low, agree)[0].items() if not ok]
    assert failed == ["2-D, exact score, 10 steps: every sampler hallucinates > 10% (lower between-seed bound)"]
    # a detector at chance on all steps fails the AUROC claim
    flat = copy.deepcopy(learned)
    for r in flat[0]["result"]["rows"]:
        r["auroc"] = 0.5
    failed = [k for k, ok in s2.claims(s2.study(flat, _exact(learned)), agree)[0].items() if not ok]
    assert failed == ["2-D, gated network, all steps: Hal AUROC > 0.95 under every sampler, deterministic DDIM "
                      "included (one model)"]
    # a rerun far from its record fails the agreement claim
    far = [{**r, "score": "learned", "count": r["n"] // 2, "rate": 0.5} for r in learned[0]["result"]["rows"]
           if r["steps"] == 1000][:1]
    assert not s2.claims(s, s2.agreement(s, far))[0]["2-D: every chain rerun in this run agrees with its record "
                                                      "(99.9% Wilson intervals overlap)"]
    # a network that fails the gate is flagged in the sanity checks
    bad = copy.deepcopy(learned)
    bad[0]["result"]["reference"]["gate"]["passed"] = False
    assert not all(s2.claims(s2.study(bad, _exact(learned)), agree)[1].values())
    nums = s2.numbers(s, agree)
    assert nums["n"] == 50_000 and nums["live_agree"] == 2 and nums["gate"] == "passes"
    assert nums["ddim_direction"] == ("more" if nums["ddim_z"] > 0 else "fewer")
    assert math.isclose(nums["ddim_ratio"], nums["learned_ddim0_1000"] / nums["learned_ddpm_1000"])


def test_study_refuses_mismatched_records(learned):
    exact = _exact(learned)
    with pytest.raises(ValueError, match="learned_records"):
        s2.study(exact, exact)
    with pytest.raises(ValueError, match="one model"):
        s2.study(learned + learned, exact)
    with pytest.raises(ValueError, match=">= 2 sampling seeds"):
        s2.study(learned, exact[:1])
    other = copy.deepcopy(exact)
    other[1]["spec"]["clip_x0"] = 4.0
    with pytest.raises(ValueError, match="clip_x0"):
        s2.study(learned, other)
    with pytest.raises(ValueError, match="exact_records"):
        s2.study(learned, [])
    short = copy.deepcopy(learned)
    short[0]["spec"]["steps"] = [20, 1000]
    with pytest.raises(ValueError, match="T' = 10"):
        s2.study(short, [{**e, "spec": {**e["spec"], "steps": [20, 1000]}} for e in exact])
    s = s2.study(learned, exact)
    with pytest.raises(ValueError, match="no chain"):
        s2.agreement(s, [{"score": "learned", "sampler": "DDPM", "steps": 7, "seed": 0}])
    with pytest.raises(ValueError, match="^n must"):
        s2.rerun(s, 5)
    with pytest.raises(ValueError, match="exact_seeds"):
        s2.rerun(s, 100, exact_seeds=4)


def test_rerun_goes_through_the_experiment(learned):
    s = s2.study(learned, _exact(learned))
    rows = s2.rerun(s, 200, steps=(10,), etas=(None,))
    assert [(r["score"], r["sampler"], r["steps"], r["seed"], r["n"]) for r in rows] == \
        [("learned", "DDPM", 10, 0, 200), ("exact", "DDPM", 10, 0, 200)]
    assert all(0 <= r["rate"] <= 1 for r in rows)
