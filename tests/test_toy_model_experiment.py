"""The ``toy_model`` experiment: snapshots measured through one definition, replicates drawn afresh, a
sweep over the training-set size, and clear errors for bad specs."""
import json

import pytest

from mode_interp import sweep as S
from mode_interp.experiments import models, records
from mode_interp.train import ToyConfig, TrainedModel, load_or_train

MODEL = {"n_train": 400, "batch_size": 100, "steps": 30, "width": 16}


def test_a_record_measures_every_snapshot_as_its_own_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    spec = models.ToyModel.from_dict({"model": MODEL, "at_steps": [10, 20], "n_samples": 500,
                                      "checkpoint_every": 7})
    rec = records.run("toy_model", spec, directory=tmp_path / "out")
    rows = rec["result"]["rows"]
    assert [r["step"] for r in rows] == [10, 20, 30]
    # the snapshot is the shorter run: the model cached for the 10-step config samples the same numbers
    short = load_or_train(ToyConfig(**MODEL).at_step(10), progress=False, shipped=False)
    assert short.from_cache
    x = short.sample(500, 0).x0
    assert models.measure(x, short.config) == {k: v for k, v in rows[0].items()
                                               if k not in ("step", "final_loss", "train_seconds",
                                                            "sample_seconds", "source")}
    first = rows[0]
    assert first["hallucination"]["n"] == 500 and len(first["mode_std"]) == 3
    assert {"passed", "checks", "median_spread_ratio", "blurred"} <= set(first["gate"])
    assert [g["between"] for g in first["gaps"]] == [[1.0, 2.0], [2.0, 3.0]]
    assert rec["computed_seconds"] > 0 and rec["precision"] == "float32"
    again = records.run("toy_model", spec, directory=tmp_path / "out")
    assert again["from_cache"] and again["result"] == rec["result"]


def test_a_stopped_run_resumes_at_the_first_snapshot_not_yet_sampled(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    spec = models.ToyModel.from_dict({"model": MODEL, "at_steps": [10, 20], "n_samples": 300, "hal_window": 5})
    first = records.compute("toy_model", spec)["result"]["rows"]
    stored = sorted((tmp_path / "cache").glob("toy-samples-*.pt"))
    assert len(stored) == 3              # one file of samples per snapshot
    drawn, real = [], TrainedModel.sample
    monkeypatch.setattr(TrainedModel, "sample", lambda self, *a, **k: drawn.append(self.config.steps) or real(self, *a, **k))
    stored[0].unlink()                   # one snapshot's samples lost: only that one is drawn again
    again = records.compute("toy_model", spec)["result"]["rows"]
    assert len(drawn) == 1 and [r["source"] for r in again] == ["local cache"] * 3
    # the same numbers; the two snapshots read from the cache keep the wall time of their first draw
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("source", "sample_seconds")} for r in rows]  # noqa: E731
    assert strip(again) == strip(first)
    kept = [a["sample_seconds"] == f["sample_seconds"] for a, f in zip(again, first) if a["step"] != drawn[0]]
    assert kept == [True, True]
    # another sample seed is another chain, drawn for every snapshot
    records.compute("toy_model", models.ToyModel.from_dict({**spec.to_dict(), "sample_seed": 1}))
    assert sorted(drawn[1:]) == [10, 20, 30]


def test_hal_window_adds_the_detector_per_mode_and_keeps_the_old_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    plain = models.ToyModel.from_dict({"model": {**MODEL, "steps": 300, "weights": [0.8, 0.1, 0.1]},
                                       "n_samples": 600})
    assert "hal_window" not in plain.to_dict()
    spec = models.ToyModel.from_dict({**plain.to_dict(), "hal_window": 10})
    assert records.record_key("toy_model", spec) != records.record_key("toy_model", plain)
    row = records.compute("toy_model", spec)["result"]["rows"][0]
    det = row["detector"]                  # 300 steps of training: plenty of hallucinations, both classes
    finite = 600 - row["non_finite"]       # a diverged sample is left out of the detector's numbers
    assert 0 <= det["auroc"] <= 1 and det["n_hallucinated"] == row["hallucination"]["count"] - row["non_finite"]
    for name, target in (("at_retention", 0.96), ("at_removal", 0.95)):
        d = det[name]
        assert d["target"] == target and len(d["n_in_support"]) == len(d["n_removed"]) == 3
        assert sum(d["n_in_support"]) == finite - det["n_hallucinated"]
    kept = 1 - sum(det["at_retention"]["n_removed"]) / sum(det["at_retention"]["n_in_support"])
    assert kept >= 0.96 and det["at_removal"]["n_hallucinated_removed"] >= 0.95 * det["n_hallucinated"]
    # the per-threshold counts: one in-support count per hallucinated score, ascending
    below = det["below"]
    assert len(below["hallucinated"]) == det["n_hallucinated"] == len(below["in_support_le"])
    assert below["n_in_support"] == finite - det["n_hallucinated"] and below["hallucinated"] == sorted(below["hallucinated"])
    monkeypatch.setattr(models, "MAX_BELOW", det["n_hallucinated"] - 1)     # more than the cap: not kept
    capped = records.compute("toy_model", models.ToyModel.from_dict({**spec.to_dict(), "sample_seed": 1}))
    assert "below" not in capped["result"]["rows"][0]["detector"]
    # the scores are the windowed Hal of the same chain: the plain record's samples are the same
    assert row["hallucination"] == records.compute("toy_model", plain)["result"]["rows"][0]["hallucination"]
    with pytest.raises(ValueError, match="hal_window"):
        models.ToyModel.from_dict({"model": MODEL, "hal_window": 1})


def test_a_2d_record_holds_the_off_mode_breakdown(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    spec = {"model": {"data": "grid_25", "n_train": 500, "batch_size": 250, "steps": 150, "width": 16},
            "n_samples": 300}
    row = records.compute("toy_model", spec)["result"]["rows"][0]
    assert set(row["breakdown"]["regions"]) == {"first", "second", "elsewhere", "outside"}
    assert len(row["mode_weights"]) == 25
    # this barely trained model's chain diverges for some samples: reported, counted as hallucinated,
    # and left out of the other numbers
    assert row["non_finite"] > 0 and row["breakdown"]["n"] == 300 - row["non_finite"]
    assert row["hallucination"]["n"] == 300 and row["hallucination"]["count"] >= row["non_finite"]


def test_a_continuation_is_measured_at_its_last_step(tmp_path, monkeypatch):
    """A run with a final step decay (``ToyConfig.continued``, e.g. the paper's 100k steps then a lower rate)
    is measured as one model; its parent is trained (and cached) on the way."""
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    config = ToyConfig(**MODEL).continued(10, 1e-4)
    rec = records.compute("toy_model", {"model": config.to_dict(), "n_samples": 200})
    assert [r["step"] for r in rec["result"]["rows"]] == [40]
    assert load_or_train(ToyConfig(**MODEL), progress=False, shipped=False).from_cache


def test_a_size_sweep_changes_only_the_size_and_the_replicate(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    sweep = S.check_sweep({"name": "tiny_sizes", "experiment": "toy_model",
                           "spec": {"model": MODEL, "n_samples": 200},
                           "grid": {"seed": [0, 1], "model.n_train": [200, 400]}})
    index = S.run_sweep(sweep, tmp_path, serial=True, progress=False)
    assert index["totals"]["done"] == 4
    specs = [json.loads((tmp_path / "tiny_sizes" / e["record"]).read_text())["spec"] for e in index["tasks"]]
    assert [(s["seed"], s["model"]["n_train"]) for s in specs] == [(0, 200), (0, 400), (1, 200), (1, 400)]
    assert all({k: v for k, v in s["model"].items() if k != "n_train"} ==
               {k: v for k, v in specs[0]["model"].items() if k != "n_train"} for s in specs)
    spec = models.ToyModel.from_dict(specs[2])
    assert (spec.config.seed, spec.config.data_seed) == (ToyConfig().seed + 1, 1)


def test_compiled_sampling_is_recorded_and_keeps_eager_keys(tmp_path, monkeypatch):
    """``compile`` is a field of the spec (so of the record's key) only when it is on: every record made
    before the option existed keeps its file name."""
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    eager = models.ToyModel.from_dict({"model": MODEL, "n_samples": 50})
    assert "compile" not in eager.to_dict()
    assert records.record_file("toy_model", eager) == records.record_file(
        "toy_model", {"model": MODEL, "n_samples": 50, "compile": False})
    compiled = models.ToyModel.from_dict({"model": MODEL, "n_samples": 50, "compile": True})
    assert compiled.to_dict()["compile"] is True
    assert records.record_file("toy_model", compiled) != records.record_file("toy_model", eager)
    rec = records.compute("toy_model", compiled)
    assert rec["compiled"] in (True, False) and rec["spec"]["compile"] is True   # False: the eager fallback ran


@pytest.mark.parametrize("spec, name", [
    ({"model": MODEL, "compile": "yes"}, "compile"),
    ({"model": MODEL, "at_steps": [0]}, "at_steps"),
    ({"model": MODEL, "at_steps": [31]}, "at_steps"),
    ({"model": MODEL, "at_steps": 10}, "at_steps"),
    ({"model": MODEL, "n_samples": 0}, "n_samples"),
    ({"model": MODEL, "bogus": 1}, "bogus"),
    ({"model": {**MODEL, "colour": 1}}, "colour"),
    ({"model": {**MODEL, "data": "digits_pca"}}, "digits_pca"),
    ({"model": {**MODEL, "steps": 40, "continue_from": 30, "late_from": 30, "late_lr": 1e-4}, "at_steps": [35]},
     "continuation"),
    ({"at_steps": [1]}, "model"),
])
def test_bad_specs(spec, name):
    with pytest.raises(ValueError, match=name):
        models.ToyModel.from_dict(spec)
