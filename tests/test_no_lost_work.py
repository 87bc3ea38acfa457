"""No finished work is lost to the cache folder: it is checked before training, a failed final write is
rescued, a killed writer's temporary files are cleaned up, and a loadable-but-wrong file is retrained."""

import os
import stat
import time
import warnings

import pytest
import torch

from mode_interp import cache
from mode_interp.train import ToyConfig, load_or_train

TINY = ToyConfig(n_train=40, steps=2, batch_size=20, width=8)


def test_an_unwritable_cache_fails_before_training(tmp_path, monkeypatch):
    calls = []
    target = tmp_path / "a_file"
    target.write_text("not a folder")
    monkeypatch.setenv("MODE_INTERP_CACHE", str(target))
    with pytest.raises(ValueError, match="MODE_INTERP_CACHE"):
        cache.load_or_create({"a": 1}, lambda: calls.append(1) or {"x": 1})
    assert calls == []                                 # create() never ran
    with pytest.raises(ValueError, match="MODE_INTERP_CACHE"):
        load_or_train(TINY, progress=False, shipped=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_fails_before_training(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ValueError, match="directory"):
            cache.load_or_create({"a": 1}, lambda: {"x": 1}, directory=folder)
    finally:
        folder.chmod(stat.S_IRWXU)


def test_a_failed_final_write_is_rescued_and_returned(tmp_path, monkeypatch):
    real = cache.save_atomic
    rescue_dir = tmp_path / "tmp"
    monkeypatch.setattr(cache.tempfile, "gettempdir", lambda: str(rescue_dir))

    def full_disk(obj, path, config):
        if rescue_dir not in path.parents:
            raise OSError(28, "No space left on device")
        real(obj, path, config)

    monkeypatch.setattr(cache, "save_atomic", full_disk)
    with pytest.warns(RuntimeWarning, match="mode_interp_rescue"):
        obj, path, hit = cache.load_or_create({"a": 1}, lambda: {"x": torch.ones(2)}, directory=tmp_path / "c")
    assert not hit and torch.equal(obj["x"], torch.ones(2))
    assert path.parent == rescue_dir / "mode_interp_rescue" and path.exists()
    assert torch.equal(cache.load_verified(path, {"a": 1})["x"], torch.ones(2))


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path):
    target = tmp_path / "model-abc.pt"
    stale, fresh = tmp_path / "model-abc.ptq1w2e3.tmp", tmp_path / "model-abc.ptzzz.tmp"
    other = tmp_path / "other.ptq1w2e3.tmp"
    for f in (stale, fresh, other):
        f.write_bytes(b"partial")
    old = time.time() - 2 * cache.STALE_SECONDS
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    cache.save_atomic({"x": 1}, target, {"a": 1})
    assert not stale.exists() and fresh.exists() and other.exists()     # only this file's, only old ones
    assert cache.remove_stale_temporaries(tmp_path) == [other]


def test_a_loadable_but_wrong_file_is_retrained_with_a_warning(tmp_path):
    first = load_or_train(TINY, progress=False, directory=tmp_path, shipped=False)
    stored = first.stored()
    stored["state_dict"] = {k: v[..., :1] if v.ndim else v for k, v in stored["state_dict"].items()}  # wrong shapes
    cache.save_atomic(stored, first.path, TINY.to_dict())             # right checksum and config
    with pytest.warns(RuntimeWarning, match="loads but is unusable"):
        again = load_or_train(TINY, progress=False, directory=tmp_path, shipped=False)
    assert not again.from_cache
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = load_or_train(TINY, progress=False, directory=tmp_path, shipped=False)
    assert fixed.from_cache
    for p, q in zip(first.model.parameters(), fixed.model.parameters()):
        assert torch.equal(p, q)
