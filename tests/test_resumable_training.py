"""Resumable toy and SHAPES training: a killed run resumes bit-identically (loss history included),
snapshots equal the shorter runs they stand for, and a long run is never lost or overwritten."""
from dataclasses import replace

import pytest
import torch

from mode_interp import image_train, train as train_module
from mode_interp.image_train import ShapesConfig, train_shapes
from mode_interp.train import ToyConfig, load_or_train, train

# 50 points, batch 20: two batches an epoch and a dropped remainder, so kills land mid-epoch
CFG = ToyConfig(n_train=50, batch_size=20, steps=9, width=16)


class Killed(Exception):
    pass


def kill_at(monkeypatch, module, step):
    """Make the ``step``-th loss evaluation (1-based) of this process raise Killed."""
    real, calls = module.eps_mse_loss, {"n": 0}

    def loss(*a, **k):
        calls["n"] += 1
        if calls["n"] == step:
            raise Killed
        return real(*a, **k)
    monkeypatch.setattr(module, "eps_mse_loss", loss)
    return real


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))


@pytest.mark.parametrize("kill", [2, 4, 7, 9])
def test_a_killed_toy_run_resumes_bit_identically(tmp_path, monkeypatch, kill):
    straight = train(CFG, progress=False, log_every=2)
    real = kill_at(monkeypatch, train_module, kill)
    with pytest.raises(Killed):
        train(CFG, progress=False, log_every=2, checkpoint_every=3, directory=tmp_path)
    monkeypatch.setattr(train_module, "eps_mse_loss", real)
    resumed = train(CFG, progress=False, log_every=2, checkpoint_every=3, directory=tmp_path)
    assert same(resumed, straight)
    assert resumed.losses == straight.losses and len(resumed.losses) == 4
    again = train(CFG, progress=False, log_every=2, checkpoint_every=3, directory=tmp_path)   # finished: loads
    assert same(again, straight) and again.losses == straight.losses


def test_snapshots_are_the_shorter_runs_and_load_from_the_cache(tmp_path):
    cfg = replace(CFG, late_from=5, late_lr=1e-4)
    train(cfg, progress=False, snapshots=(3, 5, 7), directory=tmp_path)
    assert cfg.at_step(3) == replace(CFG, steps=3) and cfg.at_step(5) == replace(CFG, steps=5)
    assert cfg.at_step(7) == replace(cfg, steps=7)
    for step in (3, 5, 7):
        snap = load_or_train(cfg.at_step(step), progress=False, directory=tmp_path, shipped=False)
        assert snap.from_cache
        direct = train(cfg.at_step(step), progress=False)
        assert same(snap, direct) and snap.losses == direct.losses


@pytest.mark.parametrize("call, name", [
    (lambda d: train(CFG, progress=False, snapshots=(9,), directory=d), "snapshots"),
    (lambda d: train(CFG, progress=False, snapshots=(0,), directory=d), "snapshots"),
    (lambda d: train(CFG, progress=False, snapshots=3, directory=d), "snapshots"),
    (lambda d: train(CFG, progress=False, checkpoint_every=-1, directory=d), "checkpoint_every"),
    (lambda d: train(CFG, progress=False, log_every=0), "log_every"),
    (lambda d: train(CFG, progress=False, checkpoint_every=2, data=CFG.training_data()), "data=None"),
    (lambda d: CFG.at_step(10), "step"),
])
def test_bad_resumable_arguments(tmp_path, call, name):
    with pytest.raises(ValueError, match=name):
        call(tmp_path)


def test_an_unwritable_cache_fails_before_training(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setattr(train_module, "eps_mse_loss", lambda *a, **k: pytest.fail("trained before failing"))
    with pytest.raises(ValueError, match="directory.*file"):
        train(CFG, progress=False, checkpoint_every=2, directory=not_a_folder)
    monkeypatch.setenv("MODE_INTERP_CACHE", str(not_a_folder))
    with pytest.raises(ValueError, match="MODE_INTERP_CACHE"):
        train(CFG, progress=False, snapshots=(2,))
    with pytest.raises(SystemExit) as e:
        train_module._cli(["--n-train", "50", "--steps", "2", "--out", str(not_a_folder)])
    assert e.value.code == 2


def test_the_command_records_its_snapshots(tmp_path, monkeypatch):
    import json
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / "cache"))
    args = ["--n-train", "50", "--batch-size", "20", "--steps", "6", "--width", "16", "--checkpoint-every", "2",
            "--snapshots", "2", "4", "--out", str(tmp_path / "out")]
    train_module._cli(args)
    manifest = json.loads((tmp_path / "out" / "MANIFEST.json").read_text())
    assert sorted(m["config"]["steps"] for m in manifest) == [2, 4, 6]
    assert all((tmp_path / "out" / m["file"]).exists() for m in manifest)


TINY = dict(n_images=64, channels=(8, 16), batch_size=16)


def test_a_killed_shapes_run_keeps_its_loss_history(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    cfg = ShapesConfig(steps=120, **TINY)
    straight = train_shapes(cfg, progress=False, directory=tmp_path / "b")
    real = kill_at(monkeypatch, image_train, 71)         # after the checkpoint at 70, off the 50-step log
    with pytest.raises(Killed):
        train_shapes(cfg, progress=False, directory=tmp_path / "a", checkpoint_every=35)
    monkeypatch.setattr(image_train, "eps_mse_loss", real)
    resumed = train_shapes(cfg, progress=False, directory=tmp_path / "a", checkpoint_every=35)
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-6) and len(resumed.losses) == 2
    for p, q in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_a_shorter_shapes_request_leaves_the_longer_run(tmp_path):
    torch.set_num_threads(1)
    long = ShapesConfig(steps=20, **TINY)
    first = train_shapes(long, progress=False, directory=tmp_path, checkpoint_every=10)
    with pytest.warns(RuntimeWarning, match="longer run"):
        short = train_shapes(replace(long, steps=10), progress=False, directory=tmp_path)
    assert short.config.steps == 10
    again = train_shapes(long, progress=False, directory=tmp_path)     # resumes nothing: already at 20
    assert all(torch.equal(p, q) for p, q in zip(again.model.parameters(), first.model.parameters()))


@pytest.mark.parametrize("module, args, word", [
    ("train", ["--steps", "-1"], "steps"),
    ("train", ["--data", "bogus"], "data"),
    ("train", ["--sigma", "-0.1"], "sigma"),
    ("train", ["--lr", "nan"], "lr"),
    ("train", ["--threads", "0"], "threads"),
    ("train", ["--share-blocks", "maybe"], "share-blocks"),
    ("train", ["--snapshots", "0"], "snapshots"),
    ("train", ["--checkpoint-every", "-5"], "checkpoint_every"),
    ("recursive", ["--generations", "0"], "generations"),
    ("recursive", ["--arms", "all"], "arms"),
    ("recursive", ["--oversample", "0.5"], "oversample"),
    ("image_train", ["--steps", "0"], "steps"),
    ("image_train", ["--resolution", "48"], "resolution"),
])
def test_command_value_errors_are_one_line_usage_errors(tmp_path, capsys, module, args, word):
    import importlib
    cli = importlib.import_module(f"mode_interp.{module}")._cli
    with pytest.raises(SystemExit) as e:
        cli(args + ["--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"python -m mode_interp.{module}: error:") and word in err[-1]
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("module, flags", [
    ("train", ["--checkpoint-every", "--snapshots", "--share-blocks", "--out", "--threads"]),
    ("recursive", ["--generations", "--oversample", "--window", "--loop-seed", "--sample-precision", "--arms",
                   "--n-train", "--out"]),
    ("image_train", ["--steps", "--resolution", "--out", "--threads"]),
])
def test_help_lists_every_flag(capsys, module, flags):
    import importlib
    with pytest.raises(SystemExit):
        importlib.import_module(f"mode_interp.{module}")._cli(["--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in flags), [f for f in flags if f not in text]


def test_shares_blocks_takes_explicit_booleans(tmp_path):
    from mode_interp.cli import parse_config
    for text, value in [("true", True), ("No", False), ("1", True), ("0", False)]:
        assert parse_config(ToyConfig, ["--share-blocks", text], "p", "", tmp_path)[0].share_blocks is value
