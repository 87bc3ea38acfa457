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
    assert w["slope"] == pytest.approx(-2.0, abs=0.05) and w["hi"] < 0
    assert w["n_agree"] == 12 and w["p_sign"] == pytest.approx(2 ** -12)
    a = lp.across_models(rows, 10)
    assert a["n"] == 12 and len(a["x"]) == 12
    claims = lp.chapter_claims(rows, 10, ("all",))
    assert claims[next(k for k in claims if k.startswith("within"))]
    assert all(claims[k] is True or claims[k] is False for k in claims)


def test_no_relation_gives_no_claim():
    """Counts that ignore L: the within-model claim fails (the test can fail)."""
    rng = np.random.default_rng(3)
    pairs = [_pair(i, list(rng.integers(20, 60, size=2)), np.exp(rng.normal(1.0, 0.3, (2, 2))), 1000 + i)
             for i in range(12)]
    rows = lp.rows({"all": ([p[0] for p in pairs], [p[1] for p in pairs])})
    claims = lp.chapter_claims(rows, 10, ("all",))
    assert not claims[next(k for k in claims if k.startswith("within"))]


def test_rows_pair_by_model_and_skip_a_model_seen_before():
    a = _pair(0, [10, 20], [[2, 3], [3, 4]])
    b = _pair(1, [30, 5], [[2, 3], [3, 4]])
    rows = lp.rows({"first": ([a[0]], [a[1], b[1]]), "second": ([a[0], b[0]], [a[1], b[1]])})
    assert [r["group"] for r in rows] == ["first", "second"] and rows[1]["gap_counts"] == [30, 5]
    with pytest.raises(ValueError, match="no toy_model record"):
        lp.rows({"g": ([b[0]], [a[1]])})
    with pytest.raises(ValueError, match="groups"):
        lp.rows({})
    with pytest.raises(TypeError, match="boundary_lipschitz"):
        lp.rows({"g": (a[0], [a[1]])})
    with pytest.raises(ValueError, match="t must be one of"):
        lp.within_model(_rows(), 5)
    with pytest.raises(ValueError, match=">= 3"):
        lp.within_model(rows, 10)


def test_the_table_and_numbers_name_every_timestep():
    rows = _rows(-2.0, noise=0.3)
    table = lp.slope_table(rows, (0, 10), ("all",), ())
    assert table.count("\n") == 3 and "within: slope b" in table
    n = lp.chapter_numbers(rows, 10, ("all",))
    assert n["lip_n_models"] == 12 and n["lip_within_lo"] <= n["lip_within_b"] <= n["lip_within_hi"]
