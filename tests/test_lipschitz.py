"""Chapter 6 §6.7: the ``boundary_lipschitz`` experiment, its pairing with ``toy_model`` records, and the
within-model and across-model fits (on synthetic records whose answer is known)."""
import numpy as np
import pytest

from mode_interp import lipschitz as lp
from mode_interp.experiments import lipschitz as ex, records
from mode_interp.smoothing import boundary_lipschitz
from mode_interp.train import ToyConfig, load_or_train

MODEL = {"n_train": 400, "batch_size": 100, "steps": 30, "width": 16}


def test_a_record_is_the_slopes_of_the_replicates_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    spec = ex.BoundaryLipschitz.from_dict({"model": MODEL, "seed": 1, "ts": [0, 10], "n_grid": 101})
    rec = records.run("boundary_lipschitz", spec, directory=tmp_path / "out")
    config = ToyConfig(**MODEL)
    assert spec.config == config.__class__(**{**MODEL, "data_seed": config.data_seed + 1, "seed": config.seed + 1})
    trained = load_or_train(spec.config, progress=False)
    direct = boundary_lipschitz(trained.model, spec.config.mixture(), spec.config.schedule(), [0, 10], 101)
    assert np.allclose(rec["result"]["learned"], direct["learned"])
    assert np.array(rec["result"]["learned"]).shape == (2, 2) and rec["result"]["ts"] == [0, 10]
    assert rec["source"] and rec["train_seconds"] >= 0
    assert records.run("boundary_lipschitz", spec, directory=tmp_path / "out")["from_cache"]


def test_bad_specs_are_named():
    with pytest.raises(ValueError, match="mixture_1d"):
        ex.BoundaryLipschitz.from_dict({"model": {**MODEL, "data": "grid_25"}})
    with pytest.raises(ValueError, match="ts"):
        ex.BoundaryLipschitz.from_dict({"model": MODEL, "ts": [1000]})
    with pytest.raises(ValueError, match="unknown"):
        ex.BoundaryLipschitz.from_dict({"model": MODEL, "window": 3})
    with pytest.raises(TypeError, match="ToyConfig"):
        ex.BoundaryLipschitz(model={})


def _pair(seed, counts, L, n_train=1000, means=(1.0, 2.0, 3.0)):
    """A toy_model record and its boundary_lipschitz record for one synthetic model."""
    model = {**MODEL, "n_train": n_train, "means": list(means)}
    gaps = [{"between": [means[i], means[i + 1]], "count": c} for i, c in enumerate(counts)]
    row = {"hallucination": {"n": 100_000, "count": sum(counts), "rate": sum(counts) / 100_000}, "gaps": gaps}
    toy = {"experiment": "toy_model", "spec": {"model": model, "seed": seed, "k_label": 5.0},
           "result": {"rows": [row]}}
    L = np.array(L, dtype=float)
    slope = {"experiment": "boundary_lipschitz", "seed": seed,
             "spec": {"model": model, "seed": seed, "ts": [0, 10], "n_grid": 101},
             "result": {"gaps": [[1.0, 2.0], [2.0, 3.0]], "ts": [0, 10], "learned": L.tolist(),
                        "optimal": np.full_like(L, 20.0).tolist()}}
    return slope, toy


def _rows(b=-2.0, n=12, noise=0.0, seed=0):
    """Models whose gap counts follow c = 10,000 L^b exactly (``noise``: a log-normal scatter)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        L = np.exp(rng.normal(1.0, 0.3, size=(2, 2)))
        counts = [int(round(10_000 * L[g, 1] ** b * np.exp(noise * rng.normal()))) for g in range(2)]
        pairs.append(_pair(i, counts, L, n_train=1000 + i))
    return lp.rows({"all": ([p[0] for p in pairs], [p[1] for p in pairs])})


def test_the_within_model_fit_recovers_a_known_exponent():
    rows = _rows(-2.0)
    w = lp.within_model(rows, 10)
    assert w["slope"] == pytest.approx(-2.0, abs=0.02) and w["hi"] < 0 and abs(w["intercept"]) < 0.01
    assert w["origin"]["slope"] == pytest.approx(-2.0, abs=0.02)
    assert w["n_agree"] == 12 and w["p_sign"] == pytest.approx(2 ** -12)
    assert w["left"]["n"] + w["right"]["n"] == 12 and w["left"]["agree"] + w["right"]["agree"] == 12
    assert w["p_perm"] == pytest.approx(1 / (1 + w["n_perm"]))
    a = lp.across_models(rows, 10)
    assert a["n"] == 12 and len(a["x"]) == 12 and a["replicates"]["by_seed"] == {}      # one model per seed


def test_claims_across_replicates():
    """Three replicates of six models each, whose counts follow L^-3: every claim holds; with counts that
    ignore L, the within-model claims fail (the test can fail)."""
    rng = np.random.default_rng(5)
    pairs = []
    for seed in range(3):
        for i in range(6):
            L = np.repeat(np.exp(rng.normal(1.0, 0.5) + rng.normal(0.0, 0.1, size=(2, 1))), 2, axis=1)   # per model
            counts = [int(round(10_000 * L[g, 1] ** -3)) for g in range(2)]
            pairs.append(_pair(seed, counts, L, n_train=1000 + i))
    rows = lp.rows({"all": ([p[0] for p in pairs], [p[1] for p in pairs])})
    a = lp.across_models(rows, 10, ("all",))["replicates"]
    assert sorted(a["by_seed"]) == [0, 1, 2] and a["n_negative"] == 3 and a["hi"] < 0
    assert all(lp.chapter_claims(rows, 10, ("all",)).values())
    noise = [_pair(p[0]["seed"], list(rng.integers(20, 60, size=2)), np.array(p[0]["result"]["learned"]),
                   p[0]["spec"]["model"]["n_train"]) for p in pairs]
    rows = lp.rows({"all": ([p[0] for p in noise], [p[1] for p in noise])})
    claims = lp.chapter_claims(rows, 10, ("all",))
    assert not claims[next(k for k in claims if k.startswith("within"))]
    assert not claims[next(k for k in claims if "permutation" in k)]


def test_rows_pair_by_model_and_refuse_what_does_not_pair():
    a = _pair(0, [10, 20], [[2, 3], [3, 4]])
    b = _pair(1, [30, 5], [[2, 3], [3, 4]])
    rows = lp.rows({"first": ([a[0]], [a[1], b[1]]), "second": ([a[0], b[0]], [a[1], b[1]])})
    assert [r["group"] for r in rows] == ["first", "second"] and rows[1]["gap_counts"] == [30, 5]
    assert rows[0]["n_grid"] == 101
    with pytest.raises(ValueError, match="no toy_model record"):
        lp.rows({"g": ([b[0]], [a[1]])})
    other = _pair(0, [11, 20], [[2, 3], [3, 4]])[1]
    with pytest.raises(ValueError, match="two different toy_model records"):
        lp.rows({"g": ([a[0]], [a[1], other])})
    moved = _pair(0, [10, 20], [[2, 3], [3, 4]])[1]
    moved["result"]["rows"][0]["gaps"][0]["between"] = [1.0, 2.5]
    with pytest.raises(ValueError, match="gaps"):
        lp.rows({"g": ([a[0]], [moved])})
    with pytest.raises(ValueError, match="groups"):
        lp.rows({})
    with pytest.raises(TypeError, match="boundary_lipschitz"):
        lp.rows({"g": (a[0], [a[1]])})
    with pytest.raises(ValueError, match="t must be one of"):
        lp.within_model(_rows(), 5)
    with pytest.raises(ValueError, match=">= 3"):
        lp.within_model(rows, 10)
    with pytest.raises(TypeError, match="same_mixture"):
        lp.chapter_claims(_rows(), 10, "all")


def test_the_table_and_numbers_name_every_timestep():
    rows = _rows(-2.0, noise=0.3)
    table = lp.slope_table(rows, (0, 10), ("all",), ())
    assert table.count("\n") == 3 and "within: slope b" in table
    n = lp.chapter_numbers(rows, 10, ("all",))
    assert n["lip_n_models"] == 12 and n["lip_within_lo"] <= n["lip_within_b"] <= n["lip_within_hi"]
    assert n["lip_n_all"] == 12 and n["lip_n_grid"] == 101


def test_recompute_checks_a_record_against_its_live_rerun(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    spec = ex.BoundaryLipschitz.from_dict({"model": MODEL, "ts": [0, 10], "n_grid": 101})
    rec = records.run("boundary_lipschitz", spec, directory=tmp_path / "out")
    trained = load_or_train(spec.config, progress=False)
    x = trained.sample(2_000, 0).x0
    from mode_interp.experiments.models import measure
    toy = {"experiment": "toy_model", "spec": {"model": spec.model.to_dict(), "seed": 0},
           "result": {"rows": [measure(x, spec.config)]}}
    rows = lp.rows({"g": ([rec], [toy])})
    out = lp.recompute([rec], rows, n_train=MODEL["n_train"])
    assert out["error"] == 0.0 and out["relative_error"] == 0.0 and out["source"]
    assert out["sanity"] == {"§6.7's slopes recomputed in this run equal the shipped record (relative 0.001)": True}
    with pytest.raises(ValueError, match="one record"):
        lp.recompute([rec], rows, n_train=123)
