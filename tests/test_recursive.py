"""The self-consuming loop on a tiny problem: arms, caching/resume, metrics, bad input."""

import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from mode_interp import recursive as R, stats
from mode_interp.train import ToyConfig

TINY = ToyConfig(n_train=64, steps=4, batch_size=32, width=8, T=20)


def tiny_loop(generations=2, **kw):
    return R.LoopConfig(TINY, generations=generations, window=5, **kw)


def test_two_generations_three_arms(tmp_path):
    loop = R.run_loop(tiny_loop(), progress=False, directory=tmp_path)
    assert set(loop) == set(R.ARMS)
    n, n_pool = 64, math.ceil(64 * 1.025)
    for arm, gens in loop.items():
        assert [g.generation for g in gens] == [0, 1]
        for g in gens:
            assert g.pool.shape == (n_pool, 1) and g.hal.shape == (n_pool,) and len(g.kept) == n
            assert len(np.unique(g.kept)) == n
    # generation 0 (trained on real data) is shared by every arm; generation 1 differs by arm
    assert torch.equal(loop["none"][0].pool, loop["variance"][0].pool)
    assert not torch.equal(loop["none"][1].pool, loop["variance"][1].pool)
    # each later generation was trained on exactly what the previous one kept
    assert torch.equal(loop["variance"][0].data_next, loop["variance"][0].pool[loop["variance"][0].kept])


def test_arms_choose_what_they_should():
    hal = torch.tensor([5.0, 1.0, 4.0, 0.5, 3.0, 2.0])
    g = torch.Generator().manual_seed(0)
    assert list(R.select("variance", hal, 3, g)) == [3, 1, 5]          # the three lowest scores
    assert list(R.select("none", hal, 4, g)) == [0, 1, 2, 3]           # the first n, as drawn
    rnd = R.select("random", hal, 4, g)
    assert len(rnd) == 4 and len(set(rnd)) == 4 and set(rnd) <= set(range(6))
    picks = np.concatenate([R.select("random", hal, 3, torch.Generator().manual_seed(s)) for s in range(300)])
    assert np.all(np.abs(np.bincount(picks, minlength=6) / 300 - 0.5) < 0.12)   # uniform: each kept w.p. 1/2
    with pytest.raises(ValueError, match="arm"):
        R.select("best", hal, 3, g)
    with pytest.raises(ValueError, match="n"):
        R.select("none", hal, 7, g)


def test_resume_after_interruption(tmp_path, monkeypatch):
    calls = []
    real_train = R.train

    def flaky(config, *a, **kw):
        calls.append(config.seed)
        if len(calls) == 2:
            raise KeyboardInterrupt("interrupted")
        return real_train(config, *a, **kw)

    monkeypatch.setattr(R, "train", flaky)
    with pytest.raises(KeyboardInterrupt):
        R.run_loop(tiny_loop(3), arms=("none",), progress=False, directory=tmp_path)
    assert len(calls) == 2                                # generation 1 done, generation 2 interrupted
    resumed = R.run_loop(tiny_loop(3), arms=("none",), progress=False, directory=tmp_path)
    assert [g.from_cache for g in resumed["none"]] == [True, True, False]
    assert len(calls) == 3                                # only generation 2 was trained again
    again = R.run_loop(tiny_loop(2), arms=("none",), progress=False, directory=tmp_path)
    assert all(g.from_cache for g in again["none"])       # a shorter run reuses the longer one
    assert torch.equal(again["none"][1].pool, resumed["none"][1].pool)


def test_load_only_what_exists(tmp_path, monkeypatch):
    assert R.run_loop(tiny_loop(3), progress=False, directory=tmp_path, compute=False) == \
        {arm: [] for arm in R.ARMS}                       # nothing cached: nothing trained, nothing shown
    R.run_loop(tiny_loop(2), arms=("none",), progress=False, directory=tmp_path)
    monkeypatch.setattr(R, "train", lambda *a, **kw: pytest.fail("compute=False must not train"))
    partial = R.run_loop(tiny_loop(3), progress=False, directory=tmp_path, compute=False)
    assert [g.generation for g in partial["none"]] == [0, 1]      # stops at the first missing generation
    assert [g.generation for g in partial["variance"]] == [0]     # generation 0 is shared
    assert all(g.from_cache for gens in partial.values() for g in gens)


def test_generation_metrics_and_kl(tmp_path):
    from mode_interp.experiments.loops import generation_metrics, loop_rows
    config = tiny_loop()
    loop = R.run_loop(config, arms=("variance",), progress=False, directory=tmp_path)
    rows = loop_rows(config, loop)
    assert [r["generation"] for r in rows] == [0, 1] and rows[0]["arm"] == "variance"
    gen = loop["variance"][0]
    mixture = config.base.mixture()
    bad = mi.is_hallucinated(gen.pool, mixture).numpy()
    r = rows[0]
    assert r == {**generation_metrics(config, gen), "arm": "variance", "train_seconds": gen.model.seconds,
                 "sample_seconds": gen.sample_seconds}
    assert r["hallucinated"] == pytest.approx(bad.mean()) and r["count"] == bad.sum()
    assert r["kept_hallucinated"] == pytest.approx(mi.is_hallucinated(gen.data_next, mixture).double().mean())
    dropped = ~np.isin(np.arange(len(gen.pool)), gen.kept)
    if bad.any():
        assert r["hallucinated_removed"] == pytest.approx(dropped[bad].mean())
    assert r["removed_precision"] == pytest.approx(bad[dropped].mean())
    ref = torch.randn(5000, 2, generator=torch.Generator().manual_seed(0))
    same = torch.randn(5000, 2, generator=torch.Generator().manual_seed(1))
    assert stats.histogram_kl(same, ref, 10, -3, 3) < 0.05     # finite-sample bias ~ (bins - 1) / n
    assert stats.histogram_kl(same + 2, ref, 10, -3, 3) > 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="generations"):
        R.LoopConfig(TINY, generations=0)
    with pytest.raises(ValueError, match="oversample"):
        R.LoopConfig(TINY, oversample=0.9)
    with pytest.raises(ValueError, match="window"):
        R.LoopConfig(TINY, window=21)
    with pytest.raises(TypeError, match="base"):
        R.LoopConfig({"n_train": 5})
    with pytest.raises(ValueError, match="arms"):
        R.run_loop(tiny_loop(), arms=("none", "none"), progress=False)
    with pytest.raises(ValueError, match="bins"):
        stats.histogram_kl(torch.zeros(3, 1), torch.zeros(3, 1), 0, 0, 1)
    with pytest.raises(ValueError, match="hi > lo"):
        stats.histogram_kl(torch.zeros(3, 1), torch.zeros(3, 1), 5, 1, 1)


def test_command_merges_calls_into_one_summary(tmp_path):
    import json
    args = ["--n-train", "64", "--steps", "4", "--batch-size", "32", "--width", "8", "--T", "20",
            "--generations", "2", "--window", "5", "--out", str(tmp_path)]
    R._cli(args + ["--arms", "none"])
    R._cli(args + ["--arms", "variance", "random"])       # e.g. run in parallel or later: nothing is lost
    R._cli(args + ["--arms", "none"])                     # a load-only call: its rows replace none's
    (path,) = tmp_path.glob("recursive-*.json")
    summary = R.read_summary(path)
    assert [c["arms"] for c in summary["calls"]] == [["none"], ["variance", "random"], ["none"]]
    assert summary["arms"] == list(R.ARMS)
    assert [(r["arm"], r["generation"]) for r in summary["rows"]] == [(a, g) for a in R.ARMS for g in (0, 1)]
    assert len(summary["records"]) == 4 and all((tmp_path / f).exists() for f in summary["records"])
    # a summary from before `calls` existed reads with its one call first
    old = {k: v for k, v in summary.items() if k != "calls"} | summary["calls"][0]
    path.write_text(json.dumps(old))
    assert R.read_summary(path)["calls"] == summary["calls"][:1]
    with pytest.raises(ValueError, match="another loop config"):
        R.write_summary(path, tiny_loop(generations=3), summary["calls"][0], [])
