"""Chapter 5's bookkeeping (mode_interp.loop_report): every table and number recomputed here from the
shipped records of the sweeps, the grid functions on a tiny loop, and bad input."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from mode_interp import loop_report as lr, recursive as R, sweep as S
from mode_interp.experiments.records import load_index
from mode_interp.train import ToyConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ToyConfig(n_train=64, steps=4, batch_size=32, width=8, T=20)


@pytest.fixture(scope="module")
def one_d():
    return lr.load_sweep(ROOT / "sweeps" / "loop_1d.json")


@pytest.fixture(scope="module")
def large():
    return lr.load_sweep(ROOT / "sweeps" / "loop_1d_rho125.json")


@pytest.fixture(scope="module")
def long_1d():
    return lr.load_sweep(ROOT / "sweeps" / "loop_1d_long.json")


@pytest.fixture(scope="module")
def digits():
    return lr.load_sweep(ROOT / "sweeps" / "loop_digits.json")


def cells(table: str) -> list:
    """The body rows of a Markdown table, as lists of cell strings."""
    lines = table.splitlines()
    assert lines[1].startswith("|---")
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def per_seed(s, arm: str, key: str, generation: int) -> dict:
    """{seed: row[key]} of ``arm`` at ``generation``, straight from the records."""
    return {r["spec"]["seed"]: r["result"]["rows"][generation][key] for r in s.records if r["spec"]["arm"] == arm}


def sign_flip_p(d, alternative="less") -> float:
    """The exact one-sided sign-flip p-value, by brute force."""
    d = np.asarray(d, dtype=float)
    sign = -1 if alternative == "less" else 1
    observed = sign * d.mean()
    means = [sign * np.mean(np.array(f) * np.abs(d)) for f in itertools.product((-1, 1), repeat=len(d))]
    return float(np.mean(np.array(means) >= observed - 1e-12))


def test_load_sweep_reads_every_record_of_the_shipped_sweeps(one_d, large, digits):
    assert one_d.name == "loop_1d" and one_d.seeds == (0, 1, 2, 3, 4) and one_d.arms == R.ARMS
    assert large.arms == ("variance",) and large.loop.oversample == 1.25 and digits.loop.base.data == "digits_pca"
    assert one_d.complete and large.complete and digits.complete
    assert len(one_d.records) == 15 and len(large.records) == 5 and len(digits.records) == 9
    broken = lr.LoopSweep(one_d.name, one_d.loop, one_d.seeds, one_d.arms, one_d.records[:-1])
    assert not broken.complete
    # a sweep given as a checked dict loads the same records
    again = lr.load_sweep(S.read_spec(ROOT / "sweeps" / "loop_1d.json"))
    assert [r["file"] for r in again.records] == [r["file"] for r in one_d.records]


def test_load_sweep_refuses_bad_input(tmp_path):
    with pytest.raises(TypeError, match="sweep"):
        lr.load_sweep(42)
    with pytest.raises(ValueError, match="compute"):
        lr.load_sweep(ROOT / "sweeps" / "loop_1d.json", compute="yes")
    selftest = tmp_path / "st.json"
    selftest.write_text(json.dumps({"name": "st", "experiment": "selftest", "spec": {}, "grid": {"seed": [0]}}))
    with pytest.raises(ValueError, match="recursive_arm"):
        lr.load_sweep(selftest)
    with pytest.raises(TypeError, match="LoopSweep"):
        lr.loop_numbers({"records": []})


def test_loop_numbers(one_d, digits):
    n = lr.loop_numbers(one_d)
    assert (n["n"], n["pool"], n["generations"], n["last_gen"], n["n_seeds"]) == (10_000, 10_250, 5, 4, 5)
    assert n["removed_share"] == pytest.approx(1 - 1 / 1.025) and n["signflip_floor"] == 1 / 32
    assert (n["steps"], n["width"], n["batch"], n["models_per_seed"]) == (4000, 64, 2000, 13)
    assert n["cpu_h"] == load_index("loop_1d")["totals"]["cpu_hours"]
    p = 2 * 0.5 * math.erfc(5 / math.sqrt(2))      # P(|z| > 5): modes 20 sigma apart, their tails do not overlap
    assert n["true_one_in"] == pytest.approx(1 / p, rel=1e-6)
    d = lr.loop_numbers(digits)
    assert "true_one_in" not in d                  # the digits' latent codes are no mixture
    assert d["signflip_floor"] == 1 / 8 and d["models_per_seed"] == 4 and d["last_gen"] == 1
    assert d["cpu_min_per_model"] == pytest.approx(d["cpu_h"] * 60 / (3 * 4))


def test_generation_table_equals_the_records(one_d):
    table, numbers = lr.generation_table(one_d)
    rows = cells(table)
    assert len(rows) == 3 * 5
    for (name, g, hal, gate, spread), (arm, gen) in zip(rows, itertools.product(R.ARMS, range(5))):
        assert name == lr.ARM_NAMES[arm] and int(g) == gen
        h = np.array(list(per_seed(one_d, arm, "hallucinated", gen).values()))
        assert hal == f"{h.mean():.2%} [{h.min():.2%} – {h.max():.2%}]"
        assert gate == f"{sum(per_seed(one_d, arm, 'gate', gen).values())} of 5"
        assert spread == f"{np.mean(list(per_seed(one_d, arm, 'spread', gen).values())):.2f}"
    for arm in R.ARMS:
        assert numbers[f"last_{arm}"] == pytest.approx(np.mean(list(per_seed(one_d, arm, "hallucinated", 4).values())))
    assert numbers["first"] == pytest.approx(np.mean(list(per_seed(one_d, "none", "hallucinated", 0).values())))
    assert numbers["loose0_all"] == all(per_seed(one_d, "none", "gate", 0).values())
    later = [r["result"]["rows"][g]["gate"] for r in one_d.records for g in range(1, 5)]
    assert numbers["loose"].endswith(f"; {later.count(False)} of the {len(later)} later generations (all seeds and "
                                     "arms) fail it")


def test_generation0_gates_applies_chapter_2s_gate_to_each_replicates_generation_0(tmp_path, monkeypatch):
    from mode_interp.experiments.loops import replicate
    from mode_interp.interpolation import mode_summary, strict_gate
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    loop = R.LoopConfig(TINY, generations=3, window=5)
    s = lr.LoopSweep("tiny", loop, (0, 2), R.ARMS, [])
    with pytest.raises(FileNotFoundError, match="replicate 0 of 'tiny'.*compute=True"):
        lr.generation0_gates(s)
    table, numbers = lr.generation0_gates(s, compute=True)
    mixture, gates = TINY.mixture(), []
    for seed, row in zip((0, 2), cells(table)):
        config = replicate(loop, seed)
        pool = R.run_loop(config, arms=("none",), progress=False, compute=False)["none"][0].pool
        gate = strict_gate(mode_summary(pool, mixture), mixture, TINY.schedule())
        gates.append(gate)
        assert row == [str(seed), f"{gate['within']:.1%}", f"{gate['median_spread_ratio']:.2f}",
                       f"{gate['worst_spread_ratio']:.2f}", f"{gate['worst_weight_ratio']:.2f}",
                       "passes" if gate["passed"] else "fails"]
    assert numbers["gate0_n_passed"] == sum(g["passed"] for g in gates)
    assert numbers["gate0_passed"] == f"{numbers['gate0_n_passed']} of 2"
    assert numbers["gate0_all"] == all(g["passed"] for g in gates)
    assert numbers["gate0_median_lo"] == min(g["median_spread_ratio"] for g in gates)
    assert numbers["gate0_median_hi"] == max(g["median_spread_ratio"] for g in gates)
    assert numbers["gate0_failed"] != "none"        # four Adam steps learn no mode
    assert lr.generation0_gates(s) == (table, numbers)      # now found in the cache, nothing trained


def test_replicate_tables_gathers_the_three_tables_of_a_shipped_loop(one_d, tmp_path, monkeypatch):
    """Every replicate's generation 0 of the shipped 1-D loop ships (an empty cache finds them), so FAST
    mode computes nothing."""
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    tables, numbers = lr.replicate_tables(one_d, 0.9, 0.1)
    parts = [lr.generation_table(one_d), lr.generation0_gates(one_d),
             lr.comparison_table(one_d, "hallucinated", "kept_hallucinated", "+.2%", 0.9, 0.1)]
    assert tables == dict(zip(("generations", "gate0", "comparison"), (t for t, _ in parts)))
    assert sum(len(n) for _, n in parts) == len(numbers)           # no name is shadowed
    assert numbers == {k: v for _, n in parts for k, v in n.items()}
    assert len(cells(tables["gate0"])) == 5


def test_recipe_tables_prefixes_each_loops_tables_and_adds_the_recipe_comparison(one_d, long_1d, tmp_path,
                                                                                  monkeypatch):
    """Both 1-D loops' generation 0s ship, so an empty cache computes nothing."""
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    tables, numbers = lr.recipe_tables(long_1d, one_d, 0.9, 0.1)
    parts = {"main": lr.replicate_tables(long_1d, 0.9, 0.1), "short": lr.replicate_tables(one_d, 0.9, 0.1)}
    recipe = lr.recipe_table(one_d, long_1d, 0.9)
    spread = lr.comparison_table(long_1d, "spread", "kept_spread", "+.3f", 0.9, 0.1)
    assert tables == {**{f"{p}_{k}": v for p, (t, _) in parts.items() for k, v in t.items()},
                      "main_spread": spread[0], "recipe": recipe[0]}
    assert numbers == {**{f"{p}_{k}": v for p, (_, n) in parts.items() for k, v in n.items()},
                       **{f"main_spread_{k}": v for k, v in spread[1].items()}, **recipe[1]}
    assert "mode spreads / σ" in tables["main_spread"]
    assert not list(tmp_path.glob("**/*.pt"))                       # nothing was trained or drawn


def test_generation0_gates_refuses_bad_input(digits, one_d):
    with pytest.raises(ValueError, match="Gaussian-mixture loop"):
        lr.generation0_gates(digits)
    with pytest.raises(TypeError, match="load_sweep"):
        lr.generation0_gates("loop_1d")
    with pytest.raises(ValueError, match="compute must be True or False"):
        lr.generation0_gates(one_d, compute="yes")


def test_comparison_table_equals_the_paired_tests_recomputed_from_the_records(one_d):
    table, numbers = lr.comparison_table(one_d, confidence=0.95, alpha=0.05)
    rows = cells(table)
    assert [r[0] for r in rows] == ["last generation: variance − no filter", "last generation: variance − random",
                                    "last generation: random − no filter (null yardstick)",
                                    "no filter: last generation − generation 0 (growth)",
                                    "data handed on by generation 0: variance − random"]
    pairs = {"var_none": ("variance", "none", "hallucinated", 4, 4, "less"),
             "var_random": ("variance", "random", "hallucinated", 4, 4, "less"),
             "random_none": ("random", "none", "hallucinated", 4, 4, "less"),
             "growth": ("none", "none", "hallucinated", 4, 0, "greater"),
             "handed": ("variance", "random", "kept_hallucinated", 0, 0, "less")}
    for (name, (a, b, key, ga, gb, alternative)), row in zip(pairs.items(), rows):
        x, y = per_seed(one_d, a, key, ga), per_seed(one_d, b, key, gb)
        d = np.array([x[s] - y[s] for s in sorted(x)])
        assert numbers[f"{name}_mean"] == pytest.approx(d.mean())
        half = (numbers[f"{name}_hi"] - numbers[f"{name}_lo"]) / 2
        assert half == pytest.approx(2.776445 * d.std(ddof=1) / math.sqrt(5), rel=1e-5)    # t(0.975, 4)
        assert numbers[f"{name}_p_sign_flip"] == pytest.approx(sign_flip_p(d, alternative))
        agree = int(((d < 0) if alternative == "less" else (d > 0)).sum())
        assert numbers[f"{name}_agree"] == f"{agree} of 5" and row[4] == f"{agree} of 5"
        assert row[1] == f"{d.mean():+.2%} [{numbers[f'{name}_lo']:+.2%}, {numbers[f'{name}_hi']:+.2%}]"
        assert row[3] == f"{numbers[f'{name}_p_sign_flip']:.3f}"
    significant = (numbers["var_none_p_sign_flip"] < 0.05, numbers["var_random_p_sign_flip"] < 0.05)
    assert numbers["verdict"] == lr._verdict({"variance − no filter": significant[0],
                                              "variance − random": significant[1]})


def test_verdict_names_each_outcome():
    texts = {(a, b): lr._verdict({"variance − no filter": a, "variance − random": b})
             for a in (False, True) for b in (False, True)}
    assert len(set(texts.values())) == 4
    assert "both" in texts[True, True] and "**not** significantly lower than either" in texts[False, False]
    assert texts[True, False].startswith("the variance filter's last generation is lower than no filter's")
    assert texts[False, True].startswith("the variance filter's last generation is lower than the random filter's")


def test_comparison_table_refuses_bad_input(one_d):
    with pytest.raises(ValueError, match="confidence"):
        lr.comparison_table(one_d, confidence=1.5)
    with pytest.raises(ValueError, match="alpha"):
        lr.comparison_table(one_d, alpha=0)
    with pytest.raises(ValueError, match="key"):
        lr.comparison_table(one_d, key="no_such_metric")
    with pytest.raises(TypeError, match="number_format"):
        lr.comparison_table(one_d, number_format=2)


@pytest.mark.parametrize("which", ["one_d", "long_1d"])
def test_removal_table_equals_the_records(which, request):
    one_d = request.getfixturevalue(which)         # loop_1d_long's seed 1 holds no hallucination at generation 0
    table, numbers = lr.removal_table(one_d)
    rows = cells(table)
    budget = 1 - 1 / 1.025
    for g, row in enumerate(rows):
        removed = np.array(list(per_seed(one_d, "variance", "hallucinated_removed", g).values()))
        precision = np.array(list(per_seed(one_d, "variance", "removed_precision", g).values()))
        h = np.array(list(per_seed(one_d, "variance", "hallucinated", g).values()))
        assert row == [str(g), f"{np.nanmean(removed):.0%}",
                       f"{np.nanmean(list(per_seed(one_d, 'random', 'hallucinated_removed', g).values())):.1%}",
                       f"{np.nanmean(precision):.1%}", f"{np.minimum(1, h / budget).mean():.1%}"]
    var0, rnd0 = per_seed(one_d, "variance", "hallucinated_removed", 0), per_seed(one_d, "random", "hallucinated_removed", 0)
    assert numbers["removed_g0_mean"] == pytest.approx(np.nanmean(list(var0.values())))
    counts = per_seed(one_d, "variance", "count", 0)
    assert numbers["removed_g0_beats_random"] == all(var0[s] > rnd0[s] for s in var0 if counts[s])
    assert numbers["removed_g0_n_seeds"] == sum(1 for s in counts if counts[s])
    assert numbers["removed_g0_text"] == ", ".join(f"seed {s}: {var0[s]:.0%} of {counts[s]}" if counts[s] else
                                                   f"seed {s}: none in its pool" for s in sorted(var0))
    held = sum(counts.values())
    removed = sum(round(var0[s] * counts[s]) for s in counts if counts[s])
    assert numbers["removed_g0_pooled"] == f"{removed} of {held}"
    every = [row["hallucinated_removed"] for r in one_d.records if r["spec"]["arm"] == "random" for row in r["result"]["rows"]]
    assert numbers["random_removed_mean"] == pytest.approx(np.nanmean(every))


def test_oversampling_table_equals_the_records(one_d, large, digits):
    table, numbers = lr.oversampling_table(one_d, large)
    rows = cells(table)
    assert [r[0] for r in rows] == ["ρ = 1.025"] * 5 + ["ρ = 1.25"] * 5
    for s, row in ((large, rows[9]), (one_d, rows[4])):
        assert row[2] == f"{np.mean(list(per_seed(s, 'variance', 'hallucinated', 4).values())):.2%}"
        assert row[4] == f"{np.mean(list(per_seed(s, 'variance', 'kept_spread', 4).values())):.3f}"
    for name, key in (("rho_large", "hallucinated"), ("rho_spread", "kept_spread")):
        big, small = per_seed(large, "variance", key, 4), per_seed(one_d, "variance", key, 4)
        d = np.array([big[s] - small[s] for s in sorted(big)])
        assert numbers[f"{name}_mean"] == pytest.approx(d.mean())
        assert numbers[f"{name}_p_sign_flip"] == pytest.approx(sign_flip_p(d))
    assert numbers["1d_large_last"] == pytest.approx(np.mean(list(per_seed(large, "variance", "hallucinated", 4).values())))
    assert numbers["spread_small"] == pytest.approx(np.mean(list(per_seed(one_d, "variance", "kept_spread", 4).values())))
    every = [row["removed_precision"] for r in large.records for row in r["result"]["rows"]]
    assert numbers["precision_large"] == pytest.approx(np.nanmean(every))
    with pytest.raises(ValueError, match="same recipe"):
        lr.oversampling_table(one_d, digits)
    lonely = lr.LoopSweep(large.name, large.loop, (0,), large.arms, large.records[:1])
    with pytest.raises(ValueError, match="seed"):
        lr.oversampling_table(one_d, lonely)


def test_recipe_table_pairs_the_two_recipes_by_seed_from_the_records(one_d, long_1d, large, digits):
    table, numbers = lr.recipe_table(one_d, long_1d)
    rows = cells(table)
    assert [r[0] for r in rows] == [lr.ARM_NAMES[a] for a in R.ARMS for _ in range(5)]
    assert numbers["short_steps"] == 4000 and numbers["long_steps"] == 8000 and numbers["recipe_n_seeds"] == 5
    for i, arm in enumerate(R.ARMS):
        row = rows[5 * i + 4]
        for col, s in ((2, one_d), (3, long_1d)):
            assert row[col] == f"{np.mean(list(per_seed(s, arm, 'hallucinated', 4).values())):.2%}"
        assert row[5] == f"{np.mean(list(per_seed(long_1d, arm, 'spread', 4).values())):.2f}"
        for name, key in ((f"recipe_{arm}", "hallucinated"), (f"recipe_spread_{arm}", "spread")):
            new, old = per_seed(long_1d, arm, key, 4), per_seed(one_d, arm, key, 4)
            d = np.array([new[s] - old[s] for s in sorted(new)])
            assert numbers[f"{name}_mean"] == pytest.approx(d.mean())
            assert numbers[f"{name}_p_sign_flip"] == pytest.approx(sign_flip_p(d))
            assert numbers[f"{name}_agree"] == f"{int((d < 0).sum())} of 5"
    with pytest.raises(ValueError, match="oversample"):
        lr.recipe_table(one_d, large)
    with pytest.raises(ValueError, match="fewer steps"):
        lr.recipe_table(long_1d, one_d)
    with pytest.raises(ValueError, match="data"):
        lr.recipe_table(one_d, digits)
    lonely = lr.LoopSweep(long_1d.name, long_1d.loop, (0,), long_1d.arms,
                          [r for r in long_1d.records if r["spec"]["seed"] == 0])
    with pytest.raises(ValueError, match="seed"):
        lr.recipe_table(one_d, lonely)
    with pytest.raises(TypeError, match="LoopSweep"):
        lr.recipe_table(one_d, "loop_1d_long")


def test_digits_table_equals_the_records(digits):
    table, numbers = lr.digits_table(digits)
    rows = cells(table)
    assert len(rows) == 3 * 2
    for (name, g, fd, kept, confident, top), (arm, gen) in zip(rows, itertools.product(R.ARMS, range(2))):
        v = np.array(list(per_seed(digits, arm, "fd", gen).values()))
        assert fd == f"{v.mean():.2f} [{v.min():.2f} – {v.max():.2f}]"
        assert kept == f"{np.mean(list(per_seed(digits, arm, 'kept_fd', gen).values())):.2f}"
        c = np.array(list(per_seed(digits, arm, "confident", gen).values()))
        assert confident == f"{c.mean():.0%} [{c.min():.0%} – {c.max():.0%}]"
    last = {arm: np.mean(list(per_seed(digits, arm, "fd", 1).values())) for arm in R.ARMS}
    assert numbers["digits_order"] == " < ".join(f"{lr.ARM_NAMES[a]} ({last[a]:.2f})" for a in sorted(last, key=last.get))
    conf0 = list(per_seed(digits, "none", "confident", 0).values())
    assert numbers["confident_first_min"] == min(conf0) and numbers["confident_first"] == pytest.approx(np.mean(conf0))
    assert numbers["fd_last_variance"] == pytest.approx(last["variance"])


def test_digit_preview_decodes_generation_0_and_each_arms_later_ones(digits):
    rows = lr.digit_preview(digits)
    assert list(rows) == ["gen 0 (all arms)"] + [f"{lr.ARM_NAMES[a]}, gen 1" for a in R.ARMS]
    assert all(v.shape == (10, 28, 28) for v in rows.values())
    with pytest.raises(ValueError, match="seed 7"):
        lr.digit_preview(digits, seed=7)


def test_digits_baseline_numbers(digits, one_d):
    numbers = lr.digits_baseline(digits)
    assert numbers["latent_dim"] == 32 and numbers["n_fid"] == digits.records[0]["spec"]["n_fid"]
    # the decoder's blur dominates: raw real digits are close, decoded ones far from their originals
    assert numbers["fd_real"] < numbers["fd_raw_real"] < numbers["fd_decoder"]
    assert 0 < numbers["pca_explained"] < 1 and numbers["clf_accuracy"] > 0.9
    assert numbers["digits_noise_share"] < numbers["toy_noise_share"]
    assert (numbers["digits_beta0"], numbers["digits_beta1"]) == ("0.0001", "0.02")
    with pytest.raises(ValueError, match="digits"):
        lr.digits_baseline(one_d)


def test_digits_tables_gathers_the_digits_sections_tables(digits):
    tables, numbers = lr.digits_tables(digits, 0, 0.9, 0.1)
    table, own = lr.digits_table(digits)
    comparison, compared = lr.comparison_table(digits, "fd", "kept_fd", "+.2f", 0.9, 0.1)
    baseline = lr.digits_baseline(digits, 0)
    assert tables == {"digits": table, "d_comparison": comparison}
    assert numbers == {**baseline, **own, **{f"d_{k}": v for k, v in compared.items()}}
    assert len(numbers) == len(baseline) + len(own) + len(compared)       # no name is shadowed


def test_describe_sweep_calls_lists_the_index(one_d):
    text = lr.describe_sweep_calls(one_d.name)
    index = load_index(one_d.name)
    assert text.startswith(f"loop_1d: {index['totals']['done']} records")
    assert all(call["command"] in text for call in index["calls"])


def test_recorded_train_seconds_follows_the_chain_of_continued_configs(tmp_path):
    grid = ToyConfig(data="grid_25", n_train=100_000, steps=10_000)
    shipped = lr.recorded_train_seconds(grid.continued(4_000, 1e-4))
    manifest = json.loads((R.SHIPPED_DIR / "MANIFEST.json").read_text())
    parts = [m["train_seconds"] for m in manifest if m["config"].get("data") == "grid_25"
             and ToyConfig.from_dict(m["config"]) in (grid, grid.continued(4_000, 1e-4))]
    assert len(parts) == 2 and shipped == pytest.approx(sum(parts))
    (tmp_path / "MANIFEST.json").write_text(json.dumps([{"config": TINY.to_dict(), "train_seconds": 7.5},
                                                        {"file": "an image model", "config": {"kind": "unet"}}]))
    assert lr.recorded_train_seconds(TINY, tmp_path) == 7.5
    with pytest.raises(ValueError, match="no training time"):
        lr.recorded_train_seconds(TINY.continued(2, 1e-4), tmp_path)
    with pytest.raises(ValueError, match="MANIFEST"):
        lr.recorded_train_seconds(TINY, tmp_path / "nowhere")
    with pytest.raises(TypeError, match="config"):
        lr.recorded_train_seconds(TINY.to_dict())


def test_grid_cost_and_grid_table_on_a_tiny_loop(tmp_path, monkeypatch):
    from mode_interp import stats
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    config = R.LoopConfig(TINY, generations=2, window=5)
    (tmp_path / "MANIFEST.json").write_text(json.dumps([{"config": TINY.to_dict(), "train_seconds": 36.0}]))
    cost = lr.grid_cost(config, n_probe=50, threads=1, folder=tmp_path)
    assert cost["grid_train_h"] == 0.01 and cost["grid_n_models"] == 3 and cost["grid_steps"] == 4
    assert cost["grid_estimate_h"] == pytest.approx((3 * 36 + 4 * config.n_pool / cost["grid_rate"]) / 3600)

    loop = R.run_loop(config, progress=False, directory=tmp_path / "cache")
    table, numbers, rows = lr.grid_table(config, loop)
    from mode_interp.interpolation import mode_summary, strict_gate
    gate = strict_gate(mode_summary(loop["none"][0].pool, TINY.mixture()), TINY.mixture(), TINY.schedule())
    assert (numbers["grid_gate0_passed"], numbers["grid_gate0_median"], numbers["grid_gate0_within"]) == (
        gate["passed"], gate["median_spread_ratio"], gate["within"])
    assert len(cells(table)) == 6 and len(rows) == 6 and "240 bins" in table
    assert numbers["grid_state"] == "complete" and numbers["grid_done"].endswith("random filter 2")
    last = {r["arm"]: r for r in rows if r["generation"] == 1}
    assert numbers["grid_last_variance"] == last["variance"]["hallucinated"]
    assert numbers["grid_z_drift"] == pytest.approx(abs(stats.two_proportion_z(
        last["random"]["count"], last["random"]["n_pool"], last["none"]["count"], last["none"]["n_pool"])))
    assert numbers["grid_verdict"].startswith("at generation 1 the variance-filtered arm's samples are")
    assert numbers["grid_cost_note"] == "Their stored training seconds cover every step."

    partial = {"none": loop["none"], "variance": loop["variance"][:1], "random": []}
    table, numbers, rows = lr.grid_table(config, partial)
    assert len(rows) == 3 and numbers["grid_state"] == "not yet complete" and "grid_last_none" not in numbers
    assert numbers["grid_verdict"] == "the run is not complete, so the arms are not compared yet"
    table, numbers, rows = lr.grid_table(config, {arm: [] for arm in R.ARMS})
    assert table is None and rows == [] and "grid_gate0_passed" not in numbers
    with pytest.raises(ValueError, match="arms"):
        lr.grid_table(config, {"everything": []})
    with pytest.raises(TypeError, match="loop"):
        lr.grid_table(config, [])


def test_run_sweep_command_runs_the_sweep_from_scratch(tmp_path):
    spec = tmp_path / "st.json"
    spec.write_text(json.dumps({"name": "st", "experiment": "selftest", "spec": {"n": 10},
                                "grid": {"seed": [0, 1]}}))
    table, numbers, output = lr.run_sweep_command(spec, workers=1, out=tmp_path / "out")
    assert numbers["tasks"] == numbers["done"] == 2 and numbers["seconds"] > 0
    rows = cells(table)
    assert [r[0] for r in rows] == ["0", "1"] and all(r[2] == "done" for r in rows)
    assert all((tmp_path / "out" / "st" / r[4]).is_file() for r in rows)
    assert re.search(r"2 of 2 tasks done", output)
    with pytest.raises(ValueError, match="workers"):
        lr.run_sweep_command(spec, workers=0)
