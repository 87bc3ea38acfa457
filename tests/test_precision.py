"""The fast engine: bfloat16 products and compiled kernels against float32, fallbacks, cache keys, the one
reverse-step loop. On a CPU without native bfloat16 the bfloat16 path is forced (oneDNN emulation: the same
rounding, slower), so these tests check the numerics on every machine."""
import warnings

import pytest
import torch

import mode_interp as mi
from mode_interp import cache, engine_check, precision
from mode_interp.diffusion import posterior_step_mean, sample_progressive
from mode_interp.image_train import ShapesConfig
from mode_interp.models import ToyMLP
from mode_interp.train import ToyConfig, train
from mode_interp.unet import UNet

from dataclasses import replace

from conftest import gen


@pytest.fixture
def bf16(monkeypatch):
    """bfloat16 treated as native (emulated where it is not), with fresh one-time warnings."""
    monkeypatch.setattr(precision, "bf16_native", lambda device_type="cpu": True)
    monkeypatch.setattr(precision, "_WARNED", set())


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(precision, "bf16_native", lambda device_type="cpu": False)
    monkeypatch.setattr(precision, "_WARNED", set())


def _model(dim=2, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ToyMLP(dim, width=64).eval()


def test_bfloat16_eps_matches_float32_within_bfloat16_rounding(bf16):
    model = _model()
    x, t = torch.randn(3000, 2, generator=gen(1)), torch.randint(0, 1000, (3000,), generator=gen(2))
    with torch.no_grad():
        ref, low = model(x, t), model(x, t, "bfloat16")
    assert low.dtype == torch.float32                      # the output layer and LayerNorms stay float32
    rel = (low - ref).norm() / ref.norm()
    assert 1e-5 < rel < 2e-2                               # it did run in bfloat16 (not exact), ~2^-8 errors
    eps = model.eps_for_sampling("bfloat16")
    assert eps.precision == "bfloat16" and not eps.compiled()
    with torch.no_grad():
        assert torch.allclose(eps(x[:100], 5), model(x[:100], torch.full((100,), 5), "bfloat16"), atol=1e-6)


def test_bfloat16_keeps_the_input_layer_and_residual_stream_in_float32(bf16):
    model = _model(dim=1)
    x = torch.full((4, 1), 3.0) + torch.tensor([[0.0], [1e-3], [2e-3], [3e-3]])   # finer than bf16's 1/64 at 3
    with torch.no_grad():
        out = model(x, torch.zeros(4, dtype=torch.long), "bfloat16")
    assert len(set(out.flatten().tolist())) == 4            # the four inputs stay distinct


def test_bfloat16_unet_eps_matches_float32(bf16):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = UNet((8, 16)).eval()
    x = torch.randn(4, 16 * 16, generator=gen(3))
    with torch.no_grad():
        ref = net.eps_flat(x, torch.full((4,), 10))
        low = net.eps_flat(x, torch.full((4,), 10), "bfloat16")
        eps = net.eps_for_sampling(torch.arange(1000), "bfloat16")
        assert torch.equal(eps(x, 10), low)
    assert low.dtype == torch.float32 and eps.precision == "bfloat16"
    assert 1e-5 < (low - ref).norm() / ref.norm() < 3e-2


def test_bfloat16_sampling_of_a_trained_model_passes_the_validation(bf16):
    config = ToyConfig(width=32, n_train=2_000, batch_size=500, steps=300, lr=3e-3, T=100)
    trained = train(config, progress=False)
    # 3,000 samples (about 1,000 a mode): with 600, the modes' spreads of the two precisions differed by 7.1% on
    # a CPU with native bfloat16 (AVX-512 / AMX, one thread), sampling noise of ~200 points a mode, not bf16
    out = engine_check.compare_toy(trained, 3_000, seed=3, window=5, spread_tol=0.05)
    assert out["float32"]["precision"] == "float32" and out["bfloat16"]["precision"] == "bfloat16"
    assert out["rates_equal"] and out["aurocs_overlap"] if out["float32"]["hallucinated"] else out["rates_equal"]
    assert out["spread_max_rel"] < 0.05
    assert 0 < out["max_abs_x0"] < 0.5                       # same noise: the samples move, but only a little


def test_bfloat16_training_is_close_to_its_float32_twin(bf16):
    config = ToyConfig(width=32, n_train=2_000, batch_size=500, steps=40, T=100)
    a = train(config, progress=False, log_every=10)
    b = train(ToyConfig(**{**config.__dict__, "precision": "bfloat16"}), progress=False, log_every=10)
    assert a.precision == "float32" and b.precision == "bfloat16"
    assert abs(a.losses[-1] - b.losses[-1]) < 0.05 * a.losses[-1]
    pa, pb = (torch.cat([p.flatten() for p in m.model.parameters()]) for m in (a, b))
    assert 0 < (pa - pb).norm() < 0.05 * pa.norm()           # different arithmetic, nearly the same weights


def test_missing_bfloat16_falls_back_to_float32_with_one_warning(no_bf16):
    model = _model()
    with pytest.warns(RuntimeWarning, match="no native bfloat16"):
        eps = model.eps_for_sampling("bfloat16")
    assert eps.precision == "float32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # the second time: silent
        assert model.eps_for_sampling("bfloat16").precision == "float32"
        assert precision.resolve("auto") == "float32"       # auto never warns
    r = mi.sample(eps, 50, 2, mi.linear_schedule(T=5), gen(0))
    ref = mi.sample(model.eps_for_sampling("float32"), 50, 2, mi.linear_schedule(T=5), gen(0))
    assert r.precision == "float32" and torch.equal(r.x0, ref.x0)
    config = ToyConfig(width=32, n_train=500, batch_size=250, steps=4, T=20, precision="bfloat16")
    trained = train(config, progress=False, log_every=2)
    assert trained.precision == "float32"                    # recorded as what ran


def test_auto_is_bfloat16_only_where_native(bf16):
    assert precision.resolve("auto") == "bfloat16"
    assert _model().eps_for_sampling("auto").precision == "bfloat16"


def test_a_failing_compile_falls_back_to_eager(monkeypatch):
    monkeypatch.setattr(precision, "_WARNED", set())

    def broken(fn, **kwargs):
        def run(*a, **k):
            raise RuntimeError("BackendCompilerFailed: no C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    model = _model()
    eps = model.eps_for_sampling("float32", compile=True)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        r = mi.sample(eps, 30, 2, mi.linear_schedule(T=4), gen(0))
    ref = mi.sample(model.eps_for_sampling(), 30, 2, mi.linear_schedule(T=4), gen(0))
    assert torch.equal(r.x0, ref.x0) and r.compiled is False


def test_compiled_passes_the_functions_own_errors_through(monkeypatch):
    def compiled_raises_value_error(fn, **kwargs):
        def run(*a, **k):
            raise ValueError("x must be positive")           # as the compiled function's own input check would
        return run

    monkeypatch.setattr(torch, "compile", compiled_raises_value_error)
    compiled = precision.Compiled(lambda x: x)
    with pytest.raises(ValueError, match="x must be positive"):
        compiled(1)
    assert compiled.active                                  # not mistaken for a compiler failure


def test_compiled_sampling_matches_eager():
    model = _model()
    schedule = mi.linear_schedule(T=3)
    eps = model.eps_for_sampling("float32", compile=True)
    r = mi.sample(eps, 300, 2, schedule, gen(5), chunk_size=128)
    ref = mi.sample(model.eps_for_sampling(), 300, 2, schedule, gen(5), chunk_size=128)
    if r.compiled:                                           # (compilation may be unavailable: then eager)
        assert torch.allclose(r.x0, ref.x0, atol=1e-4)
    else:
        assert torch.equal(r.x0, ref.x0)


def test_training_precision_is_part_of_the_cache_key_and_float32_keys_are_unchanged():
    shipped = ToyConfig(n_train=20_000, steps=3_000).continued(1_000, 1e-4)
    assert cache.file_name(shipped.to_dict(), "toy-mixture_1d") == "toy-mixture_1d-1bda70943f1f306b349e.pt"
    low = ToyConfig(n_train=20_000, steps=3_000, precision="bfloat16").continued(1_000, 1e-4)
    assert low.to_dict()["precision"] == "bfloat16" and "precision" not in shipped.to_dict()
    assert cache.config_key(low.to_dict()) != cache.config_key(shipped.to_dict())
    assert low.parent().precision == "bfloat16"              # a continuation's parent shares its precision
    assert cache.file_name(ShapesConfig().to_dict(), "shapes-unet") == "shapes-unet-ceb81a855a7ee0a863f4.pt"
    assert ShapesConfig(precision="bfloat16").to_dict() != ShapesConfig().to_dict()


@pytest.mark.parametrize("call, name", [
    (lambda: precision.check_precision("fp16"), "precision"),
    (lambda: precision.check_precision(None), "precision"),
    (lambda: precision.check_compile("yes"), "compile"),
    (lambda: precision.check_compile(1), "compile"),
    (lambda: ToyConfig(precision="half"), "precision"),
    (lambda: ToyConfig(precision="auto"), "precision"),
    (lambda: ShapesConfig(precision="auto"), "precision"),
    (lambda: ShapesConfig(precision=16), "precision"),
    (lambda: _model().eps_for_sampling("float16"), "precision"),
    (lambda: _model().eps_for_sampling("float32", compile="true"), "compile"),
    (lambda: precision.autocast("auto"), "resolved precision"),
    (lambda: mi.sample(lambda x, t: x[:, :1], 4, 2, mi.linear_schedule(T=3), gen()), "eps_fn must return"),
    (lambda: mi.sample(3, 4, 2, mi.linear_schedule(T=3), gen()), "eps_fn must be callable"),
    (lambda: mi.sample(lambda x, t: x, 4, 2, mi.linear_schedule(T=3), gen(), observer=[print, 3]), "observer"),
])
def test_bad_engine_options_are_refused(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_the_training_cli_takes_a_precision_flag(tmp_path):
    from mode_interp.cli import parse_config
    config, out, _, _ = parse_config(ToyConfig, ["--precision", "bfloat16", "--steps", "5"], "p", "", tmp_path)
    assert config.precision == "bfloat16" and config.steps == 5
    with pytest.raises(SystemExit) as e:                 # a usage error: one line, exit status 2
        parse_config(ToyConfig, ["--precision", "fp8"], "p", "", tmp_path)
    assert e.value.code == 2


def _old_sample(eps_fn, n, dim, schedule, generator, window, chunk_size, clip_x0=None):
    """The sampler before it ran on reverse_step (stop 14), kept verbatim as the reference."""
    sigma = schedule.reverse_variance("fixed_large") ** 0.5
    x = torch.randn(n, dim, generator=generator)
    x0_hat = torch.empty(window, n, dim) if window else None
    chunks = [slice(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    with torch.inference_mode():
        for t in range(schedule.T - 1, -1, -1):
            z = torch.randn(n, dim, generator=generator) if t > 0 else None
            for rows in chunks:
                mean, x0_pred = posterior_step_mean(x[rows], t, eps_fn(x[rows], t), schedule, clip_x0)
                x[rows] = mean + float(sigma[t]) * z[rows] if t > 0 else mean
                if t < window:
                    x0_hat[window - 1 - t, rows] = x0_pred
    return x, x0_hat


def test_bfloat16_training_where_it_is_not_native_is_not_cached(no_bf16, tmp_path, monkeypatch):
    from mode_interp.recursive import LoopConfig, run_loop
    from mode_interp.train import load_or_train
    config = ToyConfig(width=32, n_train=500, batch_size=250, steps=4, T=20, precision="bfloat16")
    with pytest.warns(RuntimeWarning, match="not cached"):
        trained = load_or_train(config, progress=False, directory=tmp_path)
    assert trained.precision == "float32" and not trained.from_cache and not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="not native"):     # a record keyed by bfloat16 is never made here
        run_loop(LoopConfig(replace(config, precision="float32"), generations=1, window=2,
                            sample_precision="bfloat16"), progress=False, directory=tmp_path)
    with pytest.raises(ValueError, match="not native"):
        precision.require_native("bfloat16")


def test_sampling_leaves_no_inference_or_no_grad_mode_behind():
    model = _model()
    with pytest.raises(ZeroDivisionError):
        mi.sample(model.eps_for_sampling(), 10, 2, mi.linear_schedule(T=4), gen(), observer=lambda *a: 1 / 0)
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    steps = sample_progressive(model.eps_for_sampling(), 10, 2, mi.linear_schedule(T=4), gen())
    next(steps)                                              # suspended inside the chain
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    r = mi.sample(model.eps_for_sampling(), 10, 2, mi.linear_schedule(T=4), gen())
    r.x0.add_(1.0)                                           # an ordinary tensor (not an inference tensor)


@pytest.mark.parametrize("chunk_size, clip_x0", [(64, None), (1000, None), (37, 1.5)])
def test_samples_are_bit_identical_to_the_previous_sampler(chunk_size, clip_x0):
    model, schedule = _model(), mi.linear_schedule(T=30)
    x_ref, w_ref = _old_sample(model.eps_for_sampling(), 200, 2, schedule, gen(9), 6, chunk_size, clip_x0)
    r = mi.sample(model.eps_for_sampling(), 200, 2, schedule, gen(9), window=6, chunk_size=chunk_size,
                  clip_x0=clip_x0)
    assert torch.equal(r.x0, x_ref) and torch.equal(r.x0_hat, w_ref)


def test_sample_progressive_yields_every_step_and_observers_see_them():
    model, schedule = _model(), mi.linear_schedule(T=12)
    steps = list(sample_progressive(model.eps_for_sampling(), 40, 2, schedule, gen(1), chunk_size=16))
    assert [s.t for s in steps] == list(range(11, -1, -1))
    assert all(torch.equal(a.x_prev, b.x_t) for a, b in zip(steps, steps[1:]))    # one chain
    seen = []
    stream = mi.detect.WindowVariance(40, 2, window=5)
    r = mi.sample(model.eps_for_sampling(), 40, 2, schedule, gen(1), chunk_size=16, window=5,
                  observer=[stream, lambda t, x_t, x0_hat: seen.append(t)])
    assert seen == list(range(11, -1, -1)) and torch.equal(r.x0, steps[-1].x_prev)
    assert torch.allclose(stream.hal(), mi.detect.hal(r.x0_hat), rtol=1e-9)
    assert torch.equal(torch.stack([s.x0_hat for s in steps[-5:]]), r.x0_hat)
    with pytest.raises(ValueError, match="chunk_size"):
        sample_progressive(model.eps_for_sampling(), 4, 2, schedule, gen(), chunk_size=0)   # eager check


def test_allow_emulated_forces_bfloat16_only_inside_the_block(no_bf16):
    with precision.allow_emulated():
        assert precision.resolve("bfloat16") == "bfloat16"
        assert precision.resolve("auto") == "float32"
    with pytest.warns(RuntimeWarning):
        assert precision.resolve("bfloat16") == "float32"


def test_loop_records_keep_their_float32_keys():
    from mode_interp.recursive import LoopConfig
    loop = LoopConfig(ToyConfig(n_train=1_000))
    low = LoopConfig(ToyConfig(n_train=1_000), sample_precision="bfloat16")
    assert "sample_precision" not in loop.key("none", 1) and low.key("none", 1)["sample_precision"] == "bfloat16"
    with pytest.raises(ValueError, match="sample_precision"):
        LoopConfig(ToyConfig(), sample_precision="auto")


def test_benchmark_table_reads_the_record_format():
    from mode_interp.report import benchmark_table
    rows = [{"kind": "sampling", "batch": 100_000, "variant": "plain", "ran_as": "plain", "per_second": 128.0,
             "ratio_vs_plain": 1.0},
            {"kind": "sampling", "batch": 100_000, "variant": "bfloat16+compile", "ran_as": "float32+compile",
             "per_second": 700.0, "ratio_vs_plain": 5.47, "compile_seconds": 20.0, "break_even_samples": 12_345.6},
            {"kind": "training", "batch": 10_000, "variant": "bfloat16", "ran_as": "bfloat16", "s_per_step": 0.025,
             "ratio_vs_plain": 4.0},
            {"kind": "memory", "batch": 500_000, "variant": "float32", "ran_as": "float32", "peak_rss_mib": 280.0}]
    text = benchmark_table(rows).splitlines()
    assert len(text) == 5                                   # header, rule, three measured rows (memory apart)
    assert "| sampling, batch 100,000 | bfloat16+compile | float32+compile | 700 samples/s | 5.47x | 20.0 | 12,346 |" in text
    assert "| training, batch 10,000 | bfloat16 | bfloat16 | 25.0 ms/step | 4.00x |  |  |" in text
