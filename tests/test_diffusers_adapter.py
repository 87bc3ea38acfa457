"""The detector on a diffusers loop (mode_interp.diffusers_adapter): one of the package's own models,
wrapped as a diffusers model and run through diffusers' DDPMScheduler with the same noise, gives the same
samples and the same Hal as the package's own sampler."""

from __future__ import annotations

import pytest
import torch

import mode_interp as mi
from mode_interp.detect import WindowVariance

pytest.importorskip("diffusers")
from mode_interp.diffusers_adapter import EpsModule, HalObserver, ddpm_scheduler, sample_with_hal  # noqa: E402
from mode_interp.train import ToyConfig, load_or_train  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    schedule = mi.linear_schedule(1000)
    trained = load_or_train(ToyConfig(n_train=20_000, steps=3_000), progress=False)   # a shipped 1-D model
    return schedule, trained.model.eps_for_sampling()


def test_hal_from_diffusers_equals_the_package_hal(setup):
    schedule, eps_fn = setup
    n = 300
    ours_hal = WindowVariance(n, 1, 10)
    ours = mi.sample(eps_fn, n, 1, schedule, torch.Generator().manual_seed(3), observer=ours_hal)
    x, hal = sample_with_hal(EpsModule(eps_fn), ddpm_scheduler(schedule), (n, 1), torch.Generator().manual_seed(3))
    assert torch.allclose(x, ours.x0, rtol=0, atol=1e-6)            # bit-identical here; float tolerance
    assert torch.allclose(hal, ours_hal.hal(), rtol=1e-6, atol=1e-12)
    assert float(hal.std()) > 0                          # not a trivially equal constant


def test_exact_score_through_diffusers_ddim(setup):
    schedule, _ = setup
    mixture = mi.mixture_1d((1.0, 2.0, 3.0), 0.05)
    scheduler = ddpm_scheduler(schedule, "ddim")
    scheduler.set_timesteps(100)
    x, hal = sample_with_hal(EpsModule(mi.exact_eps_fn(mixture, schedule)), scheduler, (200, 1),
                             torch.Generator().manual_seed(0), eta=0.0)
    assert hal.shape == (200,) and bool(torch.isfinite(hal).all()) and bool(torch.isfinite(x).all())


def test_the_papers_schedule_underflows_in_diffusers_own_float32(setup):
    """diffusers computes alpha_bar in float32, where the paper's alpha_bar_{T-1} (about 1e-47) is 0 and
    its first step is 0 / 0; the adapter's scheduler holds the float64 schedule."""
    import diffusers

    schedule, eps_fn = setup
    own = diffusers.DDPMScheduler(num_train_timesteps=1000, trained_betas=schedule.betas.tolist(), clip_sample=False)
    assert float(own.alphas_cumprod[-1]) == 0.0
    x = torch.ones(4, 1)
    assert torch.isnan(own.step(EpsModule(eps_fn)(x, 999).sample, 999, x).prev_sample).all()
    assert float(ddpm_scheduler(schedule).alphas_cumprod[-1]) == pytest.approx(schedule.alpha_bar[-1], rel=1e-12)


def test_bad_input(setup):
    schedule, eps_fn = setup
    with pytest.raises(ValueError, match="kind"):
        ddpm_scheduler(schedule, "euler")
    with pytest.raises(ValueError, match="window"):
        HalObserver(ddpm_scheduler(schedule), 10, window=1)
    with pytest.raises(ValueError, match="observed"):
        HalObserver(ddpm_scheduler(schedule), 10).hal()
    with pytest.raises(TypeError, match="eps_fn"):
        EpsModule(3)
