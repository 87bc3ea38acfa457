import pytest
import torch

from mode_interp import cache
from mode_interp.image_train import ShapesConfig, load_or_train_shapes, train_shapes
from mode_interp.unet import UNet

TINY = dict(n_images=64, channels=(8, 16), batch_size=16)


def test_unet_shapes_parameters_and_flat_interface():
    net = UNet()
    assert 0.3e6 < sum(p.numel() for p in net.parameters()) < 0.7e6
    x = torch.randn(3, 1, 32, 32)
    out = net(x, torch.tensor([0, 10, 999]))
    assert out.shape == x.shape
    assert torch.allclose(net.eps_flat(x.flatten(1), 5), net(x, 5).flatten(1), atol=1e-6)
    assert net(torch.randn(2, 1, 64, 64), 3).shape == (2, 1, 64, 64)
    with pytest.raises(ValueError, match="x must be"):
        net(torch.randn(2, 1, 30, 30), 3)
    with pytest.raises(ValueError, match="channels"):
        UNet((12, 24))


def test_channels_last_layout_gives_the_default_layouts_values():
    """The U-Net keeps its convolution weights channels-last (NHWC, faster oneDNN kernels); the same weights in
    the default layout give the same eps_hat to float rounding, and a state dict from either layout loads."""
    torch.manual_seed(0)
    net = UNet()
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters() if p.ndim == 4)
    plain = UNet().to(memory_format=torch.contiguous_format)
    plain.load_state_dict({k: v.contiguous() for k, v in net.state_dict().items()})
    assert all(p.is_contiguous() for p in plain.parameters())
    x, t = torch.randn(8, 1, 32, 32), torch.tensor([0, 1, 5, 50, 200, 500, 900, 999])
    with torch.no_grad():
        out = net(x, t)
        torch.testing.assert_close(out, plain(x, t), atol=1e-5, rtol=1e-4)
    again = UNet()
    again.load_state_dict(plain.state_dict())          # a checkpoint saved in the default layout
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in again.parameters() if p.ndim == 4)


def test_config_validation_and_run_key():
    with pytest.raises(ValueError, match="resolution"):
        ShapesConfig(resolution=48)
    with pytest.raises(ValueError, match="ema_decay"):
        ShapesConfig(ema_decay=1.0)
    a, b = ShapesConfig(steps=10), ShapesConfig(steps=20)
    assert a.run_dict() == b.run_dict() and a.to_dict() != b.to_dict()


def test_training_reduces_loss_and_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    short = ShapesConfig(steps=50, **TINY)
    long = ShapesConfig(steps=100, **TINY)
    first = train_shapes(short, progress=False, directory=tmp_path / "a", checkpoint_every=25)
    resumed = train_shapes(long, progress=False, directory=tmp_path / "a")
    straight = train_shapes(long, progress=False, directory=tmp_path / "b")
    assert len(first.losses) == 1 and len(resumed.losses) == 2
    for p, q in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)               # resuming == one uninterrupted run
    assert straight.losses[-1] < straight.losses[0]


def test_load_or_train_caches_and_samples(tmp_path):
    cfg = ShapesConfig(steps=3, **TINY)
    trained = load_or_train_shapes(cfg, progress=False, directory=tmp_path, shipped=False)
    again = load_or_train_shapes(cfg, progress=False, directory=tmp_path, shipped=False)
    assert not trained.from_cache and again.from_cache and again.source == "local cache"
    a, b = again.sample(4, seed=1, steps=10, window=3), again.sample(4, seed=1, steps=10)
    assert a.x0.shape == (4, 32 * 32) and a.x0_hat.shape == (3, 4, 32 * 32) and torch.equal(a.x0, b.x0)
    path = tmp_path / cache.file_name(cfg.to_dict(), "shapes-unet")
    path.write_bytes(path.read_bytes()[:100])                  # corrupted: retrained, with a warning
    with pytest.warns(UserWarning, match="unusable"):
        assert not load_or_train_shapes(cfg, progress=False, directory=tmp_path, shipped=False).from_cache


def test_segment_coordinates_and_pca():
    from mode_interp.features import pca_2d, segment_coordinates
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 5, generator=g, dtype=torch.float64) * 0.1
    b = a + torch.tensor([4.0, 0, 0, 0, 0], dtype=torch.float64)
    mid = torch.tensor([[2.0, 0, 0, 0, 0], [2.0, 1.0, 0, 0, 0]], dtype=torch.float64)
    lam, d = segment_coordinates(mid, a, b)
    assert torch.allclose(lam, torch.tensor([0.5, 0.5], dtype=torch.float64), atol=0.02)
    assert d[0] < 0.02 and abs(d[1] - 0.25) < 0.02
    px, pm = pca_2d(torch.cat([a, b]), mid)
    assert px.shape == (400, 2) and pm.shape == (2, 2) and abs(abs(float(pm[0, 0]))) < 0.1
    with pytest.raises(ValueError, match="same centroid"):
        segment_coordinates(mid, a, a)
