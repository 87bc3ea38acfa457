"""The ``shapes_model`` experiment: snapshots along one resumable U-Net run, each counted by the chapter's
own code, and clear errors for bad specs."""
import pytest

from mode_interp.experiments import records
from mode_interp.experiments.shapes import ShapesModel
from mode_interp.image_train import ShapesConfig, load_or_train_shapes
from mode_interp.shape_counter import fit_tolerances
from mode_interp.shapes import to_model_space
from mode_interp.shapes_report import LABELS, generate

SPEC = {"model": {"steps": 4, "n_images": 40}, "at_steps": [2], "n_samples": 6, "sample_steps": 5}


def test_every_snapshot_is_the_shorter_run_counted_by_the_chapters_code(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    rec = records.run("shapes_model", SPEC, directory=tmp_path / "out")
    rows = rec["result"]["rows"]
    assert [r["step"] for r in rows] == [2, 4]
    assert rows[1]["train_seconds"] >= rows[0]["train_seconds"]     # one run, resumed: seconds add up
    for row in rows:
        assert row["n_generated"] == 6 and sum(row[f"{name}_count"] for name in LABELS) == 6
        assert row["hallucinated_lo"] <= row["hallucinated_rate"] <= row["hallucinated_hi"]
    # the 2-step snapshot is stored as its own model, and counting it again gives the same numbers
    config = ShapesConfig(steps=2, n_images=40)
    short = load_or_train_shapes(config, progress=False, shipped=False)
    assert short.from_cache
    data = config.data()
    again = generate(short, fit_tolerances(data, to_model_space(data.images, 32)), 6, 0, steps=5).numbers()
    assert again == {k: v for k, v in rows[0].items()
                     if k not in ("step", "final_loss", "train_seconds", "sample_seconds", "source")}
    assert len(rec["result"]["losses"]) == 0 and rec["precision"] == "float32"   # < 50 steps: no loss block
    assert records.run("shapes_model", SPEC, directory=tmp_path / "out")["from_cache"]
    # the run's training is shared work (counted once by a sweep's index), the sampling is the record's own
    assert rec["shared_key"].startswith("shapes-run-") and rec["shared_seconds"] == rows[-1]["train_seconds"]
    assert rec["computed_seconds"] == pytest.approx(sum(r["sample_seconds"] for r in rows), abs=0.2)


def test_a_replicate_draws_its_own_data_and_initialisation():
    spec = ShapesModel.from_dict({**SPEC, "seed": 2})
    assert (spec.config.data_seed, spec.config.seed) == (2, 2)
    assert spec.at_steps == (2, 4) and ShapesModel.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("bad, error, match", [
    ({"at_steps": [5]}, ValueError, "at_steps"),
    ({"at_steps": "12"}, ValueError, "at_steps"),
    ({"sample_steps": 1}, ValueError, "sample_steps"),
    ({"n_samples": 0}, ValueError, "n_samples"),
    ({"z": -1.0}, ValueError, "z"),
    ({"colour": 1}, ValueError, "colour"),
    ({"model": {"steps": 4, "width": 3}}, ValueError, "width"),
    ({"model": None}, ValueError, "ShapesConfig"),
])
def test_bad_specs_are_refused_with_the_field_named(bad, error, match):
    with pytest.raises(error, match=match):
        ShapesModel.from_dict({**SPEC, **bad})


def test_the_model_must_be_a_shapes_config():
    with pytest.raises(TypeError, match="ShapesConfig"):
        ShapesModel(model={"steps": 4})
