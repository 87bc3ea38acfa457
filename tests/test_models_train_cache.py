from dataclasses import replace
import warnings

import numpy as np
import pytest
import torch

import mode_interp as mi
from conftest import gen
from mode_interp import cache
from mode_interp.models import ToyMLP, timestep_embedding
from mode_interp.plain import plain_eps, plain_sample
from mode_interp.train import ToyConfig, load_or_train, train


def test_parameter_count_and_weight_sharing():
    shared, separate = ToyMLP(2), ToyMLP(2, share_blocks=False)
    n_shared = sum(p.numel() for p in shared.parameters())
    n_separate = sum(p.numel() for p in separate.parameters())
    assert 66_000 < n_shared < 68_000                  # paper-notes: ~67k
    block = sum(p.numel() for p in shared.blocks[0].parameters())
    assert n_separate - n_shared == 2 * block
    seq = shared.block_sequence()
    assert len(seq) == 3 and seq[0] is seq[1] is seq[2]
    assert len({id(b) for b in separate.block_sequence()}) == 3


def test_init_and_shapes():
    m = ToyMLP(1)
    assert torch.all(m.t_proj.bias == 0) and torch.all(m.out_fc.bias == 0)
    assert m.in_fc.bias is None and m.blocks[0].fc1.bias is None
    out = m(torch.randn(7, 1), torch.randint(0, 1000, (7,)))
    assert out.shape == (7, 1)
    e = timestep_embedding(torch.tensor([0, 5]), 8)
    assert e.shape == (2, 8) and torch.allclose(e[0], torch.tensor([0., 0, 0, 0, 1, 1, 1, 1]))


@pytest.mark.parametrize("share", [True, False])
def test_fast_forward_equals_plain(share):
    m = ToyMLP(2, share_blocks=share)
    x = torch.randn(300, 2, generator=gen(0))
    t = torch.randint(0, 1000, (300,), generator=gen(1))
    torch.testing.assert_close(m(x, t), plain_eps(m, x, t), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m(x, 17), plain_eps(m, x, torch.full((300,), 17)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_sampler_equals_plain_sampler(seed):
    s = mi.linear_schedule(T=60, beta_start=1e-3, beta_end=0.3)
    with torch.random.fork_rng(devices=[]):        # weights independent of the tests run before this one
        torch.manual_seed(seed)
        m = ToyMLP(2)
    x0, traj = plain_sample(m, 256, s, gen(5))
    for eps_fn, chunk in [(m, 256), (m.eps_for_sampling(), 100), (m.eps_for_sampling(), 7)]:
        fast = mi.sample(eps_fn, 256, 2, s, gen(5), window=10, chunk_size=chunk)
        torch.testing.assert_close(fast.x0, x0, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fast.x0_hat, traj[-10:], rtol=1e-4, atol=1e-4)


def test_trainer_reduces_loss_and_is_seeded(tmp_path):
    cfg = ToyConfig(n_train=2_000, steps=200, batch_size=500)
    a = train(cfg, progress=False, log_every=50)
    assert len(a.losses) == 4 and a.losses[-1] < 0.8 * a.losses[0]
    b = train(cfg, progress=False, log_every=50)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    state = torch.random.get_rng_state()
    train(ToyConfig(n_train=100, steps=2, batch_size=50), progress=False)
    assert torch.equal(state, torch.random.get_rng_state())      # global RNG untouched


def test_cache_hit_miss_and_corruption(tmp_path):
    cfg = ToyConfig(n_train=500, steps=3, batch_size=250)
    first = load_or_train(cfg, progress=False, directory=tmp_path)
    assert not first.from_cache
    second = load_or_train(cfg, progress=False, directory=tmp_path)
    assert second.from_cache and second.path == first.path
    for p, q in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(p, q)
    other = load_or_train(ToyConfig(n_train=500, steps=4, batch_size=250), progress=False, directory=tmp_path)
    assert not other.from_cache and other.path != first.path
    # truncate the file: it is detected, a warning is shown and the model retrained
    path = first.path
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="unusable cache file"):
        third = load_or_train(cfg, progress=False, directory=tmp_path)
    assert not third.from_cache
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_or_train(cfg, progress=False, directory=tmp_path).from_cache
    assert not list(tmp_path.glob("*.tmp"))


def test_cache_detects_flipped_byte_and_config_mismatch(tmp_path):
    cfg = {"a": 1}
    path = tmp_path / "x.pt"
    cache.save_atomic({"w": torch.ones(3)}, path, cfg)
    assert torch.equal(cache.load_verified(path, cfg)["w"], torch.ones(3))
    with pytest.warns(UserWarning, match="config mismatch"):
        assert cache.load_verified(path, {"a": 2}) is None
    wrapper = torch.load(path, weights_only=True)
    payload = bytearray(wrapper["payload"])
    payload[len(payload) // 2] ^= 0xFF
    wrapper["payload"] = bytes(payload)
    torch.save(wrapper, path)
    with pytest.warns(UserWarning, match="checksum"):
        assert cache.load_verified(path, cfg) is None


def test_config_key_depends_on_every_field():
    base = ToyConfig()
    keys = {cache.config_key(base.to_dict())}
    for change in [dict(n_train=1), dict(seed=1), dict(steps=1), dict(share_blocks=False), dict(width=64),
                   dict(sigma=0.1), dict(means=(1, 2)), dict(data_seed=3), dict(T=500), dict(input_bias=True),
                   dict(weights=(0.8, 0.1, 0.1))]:
        keys.add(cache.config_key(ToyConfig(**change).to_dict()))
    assert len(keys) == 12


def test_weights_are_an_option_that_keeps_the_balanced_keys():
    assert "weights" not in ToyConfig().to_dict()
    assert ToyConfig(weights=(1, 1, 1)).to_dict()["weights"] == [1.0, 1.0, 1.0]    # stated, so its own key
    config = ToyConfig(weights=(0.8, 0.1, 0.1))
    assert ToyConfig.from_dict(config.to_dict()) == config
    assert np.allclose(config.mixture().weights, [0.8, 0.1, 0.1]) and ToyConfig().mixture().balanced
    labels = config.mixture().sample(20_000, torch.Generator().manual_seed(0), return_labels=True)[1]
    assert abs(float((labels == 0).float().mean()) - 0.8) < 0.02
    with pytest.raises(ValueError, match="weights"):
        ToyConfig(weights=(0.5, 0.5))
    heavy = (4.0,) + (1.0,) * 24                       # the 2-D grids take weights too, one per mode
    for data in ("grid_25", "rotated_grid_25"):
        grid = ToyConfig(data=data, weights=heavy)
        assert ToyConfig.from_dict(grid.to_dict()) == grid and grid.to_dict()["weights"][0] == 4.0
        assert np.allclose(grid.mixture().weights, np.array(heavy) / 28)
        assert np.allclose(grid.mixture().means, ToyConfig(data=data).mixture().means)
    with pytest.raises(ValueError, match="weights"):
        ToyConfig(data="grid_25", weights=(1.0,) * 24)
    with pytest.raises(ValueError, match="Gaussian mixtures only"):
        ToyConfig(data="digits_pca", n_train=100, weights=(1.0,) * 10)


def test_input_bias_is_an_option_that_keeps_the_paper_networks_keys():
    assert "input_bias" not in ToyConfig().to_dict() and ToyConfig().build_model().in_fc.bias is None
    config = ToyConfig(data="grid_25", input_bias=True)
    assert config.to_dict()["input_bias"] is True and ToyConfig.from_dict(config.to_dict()) == config
    model = config.build_model()
    assert model.in_fc.bias is not None and not model.in_fc.bias.any()     # zero at initialisation
    # without the bias, the first block's LayerNorm sees only the direction of x_t
    x = torch.tensor([[0.3, -0.2]])
    plain = ToyMLP(2)
    h1, h2 = plain.in_fc(x), plain.in_fc(4 * x)
    norm = torch.nn.functional.layer_norm
    assert torch.allclose(norm(h1, (128,)), norm(h2, (128,)), atol=1e-2)    # up to LayerNorm's eps (1e-5)
    with pytest.raises(ValueError, match="input_bias"):
        ToyConfig(input_bias=1)


@pytest.mark.parametrize("call, name", [
    (lambda: ToyConfig(data="moons"), "data"),
    (lambda: ToyConfig(sigma=0), "sigma"),
    (lambda: ToyConfig(n_train=0), "n_train"),
    (lambda: ToyConfig(steps=0), "steps"),
    (lambda: ToyConfig(lr=0), "lr"),
    (lambda: train(ToyConfig(steps=1, n_train=10, batch_size=5), device="tpu", progress=False), "device"),
    (lambda: ToyMLP(0), "dim"),
    (lambda: ToyMLP(2, width=7), "width"),
    (lambda: ToyMLP(2)(torch.zeros(3, 1), 0), "x_t"),
    (lambda: ToyMLP(2)(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long)), "t"),
    (lambda: ToyMLP(2)(torch.zeros(3, 2), -1), "t"),
    (lambda: ToyMLP(2).eps_for_sampling()(torch.zeros(3, 2), -1), "t"),
    (lambda: ToyMLP(2).eps_for_sampling()(torch.zeros(3, 1), 5), "x_t"),
    (lambda: timestep_embedding(torch.zeros(2, dtype=torch.long), 7), "dim"),
    (lambda: timestep_embedding(torch.zeros(2), 8), "t"),
    (lambda: cache.config_key({"a": object()}), "config"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_shipped_folder_is_read_only_fallback_and_retrain(tmp_path):
    cfg = ToyConfig(n_train=400, steps=2, batch_size=200)
    shipped = tmp_path / "shipped"
    obj, path, hit = cache.load_or_create(cfg.to_dict(), lambda: {"w": torch.ones(1)}, name="toy",
                                          directory=shipped)
    assert not hit
    calls = []
    obj, found, hit = cache.load_or_create(cfg.to_dict(), lambda: calls.append(1), name="toy",
                                           directory=tmp_path / "cache", read_only=(shipped,))
    assert hit and found == path and not calls and not (tmp_path / "cache").exists()
    obj, found, hit = cache.load_or_create(cfg.to_dict(), lambda: {"w": torch.zeros(1)}, name="toy",
                                           directory=tmp_path / "cache", read_only=(shipped,), refresh=True)
    assert not hit and found.parent == tmp_path / "cache" and torch.equal(obj["w"], torch.zeros(1))


def test_training_command_writes_checkpoint_and_manifest(tmp_path, monkeypatch):
    import json

    from mode_interp import train as train_module
    args = ["--n-train", "300", "--steps", "2", "--batch-size", "150", "--means", "1", "3", "--out", str(tmp_path)]
    train_module._cli(args)
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert len(manifest) == 1 and manifest[0]["config"]["means"] == [1.0, 3.0]
    assert manifest[0]["command"] == "python -m mode_interp.train " + " ".join(args)
    cfg = ToyConfig(means=(1.0, 3.0), n_train=300, steps=2, batch_size=150)
    assert (tmp_path / manifest[0]["file"]).exists()
    monkeypatch.setattr(train_module, "SHIPPED_DIR", tmp_path)
    loaded = load_or_train(cfg, progress=False, directory=tmp_path / "empty")
    assert loaded.from_cache and loaded.source == "shipped checkpoint"
    assert load_or_train(cfg, progress=False, directory=tmp_path / "empty", shipped=False).source == "trained in this run"
    assert load_or_train(cfg, progress=False, directory=tmp_path / "empty", shipped=False).source == "local cache"
    train_module._cli(args)                                        # same config again: one manifest entry
    assert len(json.loads((tmp_path / "MANIFEST.json").read_text())) == 1


def test_trained_model_sample_is_seeded():
    trained = train(ToyConfig(n_train=200, steps=2, batch_size=100, T=20), progress=False)
    a, b = trained.sample(50, seed=3, window=2), trained.sample(50, seed=3)
    assert torch.equal(a.x0, b.x0) and a.x0_hat.shape == (2, 50, 1)
    with pytest.raises(ValueError, match="seed"):
        trained.sample(5, seed=-1)


def test_a_cached_draw_is_read_back_only_for_the_same_weights_and_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    trained = train(ToyConfig(n_train=200, steps=2, batch_size=100, T=20), progress=False)
    first = trained.sample(40, seed=3, window=4, keep_x_t=True, cache=True)
    again = trained.sample(40, seed=3, window=4, keep_x_t=True, cache=True)
    assert not first.from_cache and again.from_cache and again.seconds == first.seconds
    for name in ("x0", "x0_hat", "x_t"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert again.timesteps == first.timesteps == (3, 2, 1, 0)
    assert torch.equal(trained.sample(40, seed=3, window=4).x0, first.x0)      # the cache changes nothing
    assert not trained.sample(40, seed=4, window=4, keep_x_t=True, cache=True).from_cache   # another seed
    assert not trained.sample(40, seed=3, window=5, keep_x_t=True, cache=True).from_cache   # another window
    with torch.no_grad():
        trained.model.out_fc.bias.add_(0.5)                  # other weights: never another model's samples
    changed = trained.sample(40, seed=3, window=4, keep_x_t=True, cache=True)
    assert not changed.from_cache and not torch.equal(changed.x0, first.x0)
    with pytest.raises(ValueError, match="observer"):
        trained.sample(40, seed=3, cache=True, observer=lambda t, x_t, x0_hat: None)
    with pytest.raises(ValueError, match="cache"):
        trained.sample(40, seed=3, cache="yes")


def test_continue_from_starts_at_the_parent_weights(tmp_path, monkeypatch):
    from mode_interp import train as train_module
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    parent_cfg = ToyConfig(n_train=200, steps=3, batch_size=100)
    child_cfg = ToyConfig(n_train=200, steps=5, batch_size=100, continue_from=3)
    assert child_cfg.parent() == parent_cfg and parent_cfg.parent() is None
    assert "continue_from" not in parent_cfg.to_dict() and child_cfg.to_dict()["continue_from"] == 3
    assert cache.config_key(parent_cfg.to_dict()) != cache.config_key(child_cfg.to_dict())
    parent = load_or_train(parent_cfg, progress=False)
    seen = {}
    original = train_module.ToyMLP.load_state_dict

    def spy(self, state, *a, **k):
        seen["w"] = state["in_fc.weight"].clone()
        return original(self, state, *a, **k)

    monkeypatch.setattr(train_module.ToyMLP, "load_state_dict", spy)
    child = train(child_cfg, progress=False)
    assert torch.equal(seen["w"], parent.model.in_fc.weight)      # initialised from the cached parent
    assert not torch.equal(child.model.in_fc.weight, parent.model.in_fc.weight)   # then trained on
    with pytest.raises(ValueError, match="continue_from"):
        ToyConfig(steps=5, continue_from=5)


def _adam_rates(monkeypatch) -> list:
    """A list that each Adam step appends its learning rate to."""
    rates = []
    original = torch.optim.Adam.step

    def spy(self, *a, **k):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    return rates


def test_parent_from_chains_two_continuations(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    first = ToyConfig(n_train=200, steps=5, batch_size=100, continue_from=3, late_from=3, late_lr=1e-4)
    second = ToyConfig(n_train=200, steps=7, batch_size=100, continue_from=5, parent_from=3, late_from=3,
                       late_lr=1e-4)
    assert second.parent() == first and first.parent() == ToyConfig(n_train=200, steps=3, batch_size=100)
    assert second.restarts == (3, 5) and first.restarts == (3,) and first.parent().restarts == ()
    assert "parent_from" not in first.to_dict() and second.to_dict()["parent_from"] == 3
    stored = load_or_train(first, progress=False)
    rates = _adam_rates(monkeypatch)
    child = train(second, progress=False)
    assert rates == [1e-4, 1e-4]                     # the stored continuation was reused, then trained at late_lr
    assert not torch.equal(child.model.in_fc.weight, stored.model.in_fc.weight)
    finer = replace(second, continue_lr=1e-5)        # its own rate; the parent is the same stored model
    assert finer.parent() == first and finer.to_dict()["continue_lr"] == 1e-5 and "continue_lr" not in second.to_dict()
    train(finer, progress=False)
    assert rates[2:] == [1e-5, 1e-5]
    with pytest.raises(ValueError, match="continue_lr"):
        ToyConfig(steps=7, continue_lr=1e-5)
    for bad in (dict(continue_from=0, parent_from=3), dict(continue_from=3, parent_from=3),
                dict(continue_from=5, parent_from=-1)):
        with pytest.raises(ValueError, match="parent_from"):
            ToyConfig(steps=7, **bad)


@pytest.mark.parametrize("config", [
    ToyConfig(n_train=200, steps=6, batch_size=100),
    ToyConfig(n_train=200, steps=6, batch_size=100, late_from=4, late_lr=1e-4),
    ToyConfig(n_train=200, steps=6, batch_size=100, continue_from=2, late_from=4, late_lr=1e-4),
    ToyConfig(n_train=200, steps=7, batch_size=100, continue_from=5, parent_from=3, late_from=3, late_lr=1e-4),
    ToyConfig(n_train=200, steps=7, batch_size=100, continue_from=5, parent_from=3, late_from=3, late_lr=1e-4,
              continue_lr=1e-5),
])
def test_phases_are_the_rates_adam_trains_at(config, tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))       # an empty cache: the whole chain trains
    rates = _adam_rates(monkeypatch)
    load_or_train(config, progress=False)
    assert rates == [lr for start, end, lr in config.phases() for _ in range(start, end)]
    assert config.phases()[0][0] == 0 and config.phases()[-1][1] == config.steps


def test_a_parent_trained_on_given_data_counts_in_the_cost(tmp_path, monkeypatch):
    from mode_interp import train as train_module
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    ticks = iter(range(1_000))                     # a clock that advances 1 s per reading: each train() call
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: float(next(ticks)))   # reads it twice
    child_cfg = ToyConfig(n_train=200, steps=6, batch_size=100, continue_from=3)
    data = child_cfg.training_data()
    parent = train(child_cfg.parent(), progress=False, log_every=1, data=data)
    child = train(child_cfg, progress=False, log_every=1, data=data)
    assert len(child.losses) == 6 and child.losses[:3] == parent.losses     # the whole chain's loss curve
    assert parent.seconds == 1.0 and child.seconds == 2.0                  # the uncached parent's time counts
    cached = train(child_cfg, progress=False, log_every=1)                 # cached parent: own cost only
    assert len(cached.losses) == 3 and cached.seconds == 1.0


def test_late_lr_is_a_step_decay_the_parent_does_not_see(monkeypatch):
    child = ToyConfig(n_train=200, steps=6, batch_size=100, continue_from=3, late_from=4, late_lr=1e-5)
    assert child.parent() == ToyConfig(n_train=200, steps=3, batch_size=100)
    assert "late_from" not in child.parent().to_dict() and child.to_dict()["late_lr"] == 1e-5
    assert ToyConfig(steps=9, continue_from=6, late_from=4, late_lr=1e-5).parent().late_from == 4
    rates = _adam_rates(monkeypatch)
    train(ToyConfig(n_train=200, steps=5, batch_size=100, late_from=3, late_lr=1e-5), progress=False)
    assert rates == [1e-3, 1e-3, 1e-3, 1e-5, 1e-5]
    with pytest.raises(ValueError, match="late_lr"):
        ToyConfig(steps=5, late_lr=1e-4)
    with pytest.raises(ValueError, match="late_from"):
        ToyConfig(steps=5, late_from=5, late_lr=1e-4)


def test_continued_config():
    base = ToyConfig(n_train=200, steps=3)
    c = base.continued(2, 1e-4)
    assert (c.steps, c.continue_from, c.late_from, c.late_lr) == (5, 3, 3, 1e-4) and c.parent() == base
    with pytest.raises(ValueError, match="extra_steps"):
        base.continued(0, 1e-4)
    with pytest.raises(ValueError, match="plain config"):
        c.continued(1, 1e-4)
