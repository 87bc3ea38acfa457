"""Chapter 6's tools: the sampler grid (mode_interp.sampler_study, the sampler_grid experiment) and
smoothness without training (mode_interp.smoothing: the tempered and the empirical optimal denoisers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from mode_interp import optimal, sampler_study as ss, smoothing
from mode_interp.diffusion import x0_from_eps
from mode_interp.experiments import as_spec, compute
from mode_interp.experiments.samplers import SamplerGrid
from mode_interp.train import ToyConfig


@pytest.fixture(scope="module")
def setup():
    return mi.linear_schedule(1000), mi.mixture_1d((1.0, 2.0, 3.0), 0.05)


def _width(eps_fn, schedule, t, mu_a=1.0, mu_b=2.0, sigma=0.05):
    sab = math.sqrt(schedule.alpha_bar[t])
    x_t = torch.linspace(sab * mu_a, sab * mu_b, 200_001, dtype=torch.float64)[:, None]
    r = smoothing.implied_responsibility(x0_from_eps(x_t, t, eps_fn(x_t, t), schedule), x_t, t, mu_a, mu_b, sigma, schedule)
    return optimal.ramp_width(x_t[:, 0].numpy(), r[:, 0].numpy())


# ---------------------------------------------------------------- the tempered denoiser

def test_temperature_one_is_the_exact_denoiser(setup):
    schedule, mixture = setup
    x = torch.linspace(0.0, 4.0, 301, dtype=torch.float64)[:, None]
    for t in (0, 7, 100, 999):
        assert torch.equal(smoothing.tempered_eps(x, t, mixture, schedule, 1.0), optimal.optimal_eps(x, t, mixture, schedule))


@pytest.mark.parametrize("tau", [0.5, 1.5, 3.0])
def test_temperature_multiplies_the_transition_width(setup, tau):
    schedule, mixture = setup
    for t in (0, 5, 9):
        w = _width(lambda x, s: smoothing.tempered_eps(x, s, mixture, schedule, tau), schedule, t)
        assert w == pytest.approx(tau * optimal.transition_width(schedule, 1.0, 0.05)[t], rel=2e-3)


def test_temperature_close_to_one_is_close_to_the_exact_denoiser(setup):
    schedule, mixture = setup
    x = torch.linspace(0.5, 3.5, 301, dtype=torch.float64)[:, None]
    gaps = [float((smoothing.tempered_eps(x, 0, mixture, schedule, 1 + h) - optimal.optimal_eps(x, 0, mixture, schedule))
                  .abs().max()) for h in (1e-1, 1e-2, 1e-3)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-2 * gaps[0] * 10


def test_tempered_chain_hallucinates_more_as_tau_grows(setup):
    schedule, mixture = setup
    rates = []
    for tau in (1.0, 5.0, 10.0):
        x = mi.sample(smoothing.tempered_eps_fn(mixture, schedule, tau), 4_000, 1, schedule,
                      torch.Generator().manual_seed(0)).x0
        rates.append(float(mi.is_hallucinated(x, mixture).double().mean()))
    assert rates[0] < 0.002 and rates[0] < rates[1] < rates[2]


def test_tempered_eps_fn_takes_one_temperature_per_timestep(setup):
    schedule, mixture = setup
    tau = np.linspace(1.0, 3.0, schedule.T)
    fn = smoothing.tempered_eps_fn(mixture, schedule, tau)
    x = torch.linspace(0.5, 3.5, 11, dtype=torch.float64)[:, None]
    assert torch.equal(fn(x, 500), smoothing.tempered_eps(x, 500, mixture, schedule, float(tau[500])))
    with pytest.raises(ValueError, match="tau"):
        smoothing.tempered_eps_fn(mixture, schedule, np.ones(10))
    with pytest.raises(ValueError, match="tau"):
        smoothing.tempered_eps_fn(mixture, schedule, -1.0)
    with pytest.raises(ValueError, match="tau"):
        smoothing.tempered_eps(x, 0, mixture, schedule, 0.0)


def test_matched_temperature_recovers_a_known_temperature(setup):
    schedule, mixture = setup
    model = lambda x, t: smoothing.tempered_eps(x.double(), t, mixture, schedule, 2.0).float()   # a "network"
    tau = smoothing.matched_temperature(model, mixture, schedule, [0, 3, 6, 9])
    assert tau.shape == (schedule.T,)
    assert np.allclose(tau[:10], 2.0, rtol=5e-3) and np.allclose(tau[10:], tau[9])
    with pytest.raises(ValueError, match="ts"):
        smoothing.matched_temperature(model, mixture, schedule, [5, 3])


def test_empirical_denoiser_returns_training_points(setup):
    schedule, mixture = setup
    points = torch.tensor([[1.0], [1.2], [2.0], [2.8], [3.0]], dtype=torch.float64)   # >> sqrt(1 - ab_0) apart
    emp = smoothing.empirical_mixture(points)
    x = mi.sample(mi.exact_eps_fn(emp, schedule), 500, 1, schedule, torch.Generator().manual_seed(1),
                  dtype=torch.float64).x0
    nearest = (x - points.T).abs().min(dim=1).values
    assert float((nearest < 1e-3).double().mean()) > 0.9      # most samples are copies of a training point;
    assert float((nearest < 0.05).double().mean()) > 0.98     # the rest average two close ones (the last step's
                                                              # posterior mean at sqrt(1 - ab_0) = 0.03)
    memo = ss.memorisation(points, mixture, schedule, 400, seed=2)
    assert memo["count"] == 0 and memo["n_points"] == 5 and memo["ratio"] < 0.1 and memo["baseline_median"] > 0.01
    with pytest.raises(ValueError, match="sigma"):
        smoothing.empirical_mixture(points, sigma=0.0)


# ---------------------------------------------------------------- the sampler grid

def test_exact_score_on_all_steps_does_not_hallucinate(setup):
    schedule, mixture = setup
    eps = mi.exact_eps_fn(mixture, schedule)
    for sampler in (ss.Sampler(1000), ss.Sampler(1000, 0.0)):
        row = ss.run(eps, mixture, schedule, sampler, 3_000, 0)
        assert row["count"] <= 3 and row["n_nonfinite"] == 0 and math.isnan(row["auroc"])


def test_few_steps_put_mass_between_the_modes(setup):
    schedule, mixture = setup
    row = ss.run(mi.exact_eps_fn(mixture, schedule), mixture, schedule, ss.Sampler(10, 0.0), 3_000, 0)
    assert row["rate"] > 0.1 and 0.0 <= row["auroc"] <= 1.0


def test_grid_summary_compare_and_table(setup):
    schedule, mixture = setup
    rows = ss.grid(mi.exact_eps_fn(mixture, schedule), mixture, schedule, ss.samplers((10, 20), (None, 0.0)), 500,
                   seeds=(0, 1, 2))
    assert len(rows) == 12 and {r["seed"] for r in rows} == {0, 1, 2}
    summary = ss.summarise(rows)
    ddpm = next(r for r in summary if r["sampler"] == "DDPM" and r["steps"] == 10)
    v = [r["rate"] for r in rows if r["sampler"] == "DDPM" and r["steps"] == 10]
    assert ddpm["mean"] == pytest.approx(np.mean(v)) and ddpm["lo"] < ddpm["mean"] < ddpm["hi"]
    assert ddpm["count"] == sum(r["count"] for r in rows if r["sampler"] == "DDPM" and r["steps"] == 10)
    cmp = ss.compare(rows, "DDPM", "DDIM eta=0", 10)
    assert cmp["d"] == pytest.approx([a - b for a, b in zip(v, [r["rate"] for r in rows
                                                               if r["sampler"] == "DDIM eta=0" and r["steps"] == 10])])
    table = ss.table(summary)
    assert table.count("\n") == 3 and "T' = 10" in table and "DDIM eta=0" in table
    assert "|" in ss.table(ss.summarise(rows, "auroc"), "auroc")
    with pytest.raises(ValueError, match="key"):
        ss.summarise(rows, "loss")
    with pytest.raises(ValueError, match="no rows"):
        ss.compare(rows, "DDPM", "DDIM eta=0.3", 10)


def test_one_model_per_seed(setup):
    schedule, mixture = setup
    eps = mi.exact_eps_fn(mixture, schedule)
    rows = ss.grid({0: eps, 5: eps}, mixture, schedule, [ss.Sampler(10)], 200, seeds=(0, 5))
    assert [r["seed"] for r in rows] == [0, 5]
    with pytest.raises(ValueError, match="seeds"):
        ss.grid({0: eps}, mixture, schedule, [ss.Sampler(10)], 200, seeds=(0, 1))


def test_bad_sampler_input(setup):
    schedule, mixture = setup
    with pytest.raises(ValueError, match="eta"):
        ss.Sampler(10, 1.5)
    with pytest.raises(ValueError, match="steps"):
        ss.Sampler(1)
    with pytest.raises(TypeError, match="sampler"):
        ss.run(mi.exact_eps_fn(mixture, schedule), mixture, schedule, "DDIM", 10, 0)
    with pytest.raises(ValueError, match="steps"):
        ss.chain(mi.exact_eps_fn(mixture, schedule), schedule, 2000)
    with pytest.raises(ValueError, match="etas"):
        ss.samplers((10,), ())


def test_sampler_grid_experiment_on_the_exact_score():
    spec = as_spec("sampler_grid", {"model": {"n_train": 100}, "score": "exact", "steps": [10, 1000],
                                    "etas": [None, 0.0], "n_samples": 400, "seed": 1})
    assert isinstance(spec, SamplerGrid) and spec.config.data_seed == 1
    assert SamplerGrid.from_dict(spec.to_dict()) == spec
    record = compute("sampler_grid", spec)
    rows = record["result"]["rows"]
    assert [(r["sampler"], r["steps"]) for r in rows] == [("DDPM", 10), ("DDPM", 1000), ("DDIM eta=0", 10),
                                                          ("DDIM eta=0", 1000)]
    assert record["result"]["reference"]["gate"]["passed"] in (True, False)
    with pytest.raises(ValueError, match="score"):
        as_spec("sampler_grid", {"model": {}, "score": "learnt"})
    with pytest.raises(ValueError, match="eta"):
        as_spec("sampler_grid", {"model": {}, "etas": [2.0]})
    with pytest.raises(ValueError, match="digits_pca"):
        SamplerGrid(ToyConfig(data="digits_pca", n_train=100))


def test_matched_comparison_and_tables():
    learned = [{"sampler": "DDPM", "steps": 1000, "seed": s, "count": c, "n": 10_000, "rate": c / 10_000}
               for s, c in ((0, 20), (1, 30))]
    matched = [{"seed": s, "count": c, "n": 5_000, "rate": c / 5_000, "tau_0": 20.0 + s} for s, c in ((0, 12), (1, 9))]
    cmp = ss.matched_comparison(matched, learned)
    assert cmp["ratios"] == pytest.approx({0: (12 / 5_000) / 0.002, 1: (9 / 5_000) / 0.003})
    assert cmp["learned"][0] == pytest.approx(50 / 20_000) and cmp["matched"][0] == pytest.approx(21 / 10_000)
    assert cmp["learned"][1] < cmp["learned"][0] < cmp["learned"][2]
    assert cmp["table"].count("\n") == 3
    with pytest.raises(ValueError, match="replicates \\[2\\]"):
        ss.matched_comparison(matched + [{**matched[0], "seed": 2}], learned)
    tempered = ss.summarise([{"tau": t, "seed": s, "count": c, "n": 100, "rate": c / 100}
                             for t, c in ((1.0, 0), (5.0, 3)) for s in (0, 1)], by=("tau",))
    assert [r["tau"] for r in tempered] == [1.0, 5.0] and tempered[1]["count"] == 6
    assert ss.tau_table(tempered).count("\n") == 3
    nums = ss.numbers(ss.summarise([{**r, "auroc": 0.5} for r in learned]), "x_")
    assert nums["x_ddpm_1000"] == pytest.approx(0.0025) and "x_ddpm_1000_pooled_hi" in nums
    assert ss.short_name("DDIM eta=0.5") == "ddim05"


def test_trained_T_table_and_the_learned_excess():
    rows = [{"T": T, "score": score, "sampler": "DDPM", "steps": steps, "seed": seed, "n": 1000,
             "count": c, "rate": c / 1000}
            for T in (100, 1000) for steps in (10, 100) for seed in (0, 1, 2)
            for score, c in (("learned", 20 + seed), ("exact", 5 + 2 * seed))]
    summary = ss.summarise(rows, by=("T", "score", "sampler", "steps"))
    table = ss.trained_T_table(summary)
    assert table.splitlines()[0].startswith("| T (trained) | score | T' = 10 | T' = 100 |")
    assert table.splitlines()[2].startswith("| 100 | learned | 2.10 [")
    excess = ss.learned_excess(rows, 100, 10)
    assert excess["d"] == pytest.approx([0.015, 0.014, 0.013]) and excess["n_agree"] == 3
    with pytest.raises(ValueError, match="seeds"):
        ss.learned_excess(rows, 250, 10)
    with pytest.raises(ValueError, match="sampler"):
        ss.trained_T_table(summary, "DDIM eta=0")


def test_trained_T_numbers_and_claims():
    rate = {("learned", 100): 30, ("exact", 100): 0, ("learned", 1000): 20, ("exact", 1000): 0}
    respaced = {"learned": 400, "exact": 200}         # the T = 1000 model on 100 steps
    rows = []
    for T in (100, 1000):
        for steps in sorted({100, T}):
            for seed in (0, 1, 2):
                for score in ("learned", "exact"):
                    c = rate[score, T] if steps == T else respaced[score]
                    c += seed if score == "learned" else 0
                    rows.append({"T": T, "score": score, "sampler": "DDPM", "steps": steps, "seed": seed,
                                 "n": 10_000, "count": c, "rate": c / 10_000})
    nums = ss.trained_T_numbers(rows, (1000, 100))
    assert nums["T100_learned"] == pytest.approx(0.0031) and nums["T100_excess_agree"] == 3
    assert nums["T1000_learned_at100"] == pytest.approx(0.0401) and nums["verdict_full"] == "higher"
    claims = ss.trained_T_claims(rows, (100, 1000))
    assert all(claims.values())
    rows = [dict(r, count=r["count"] + 5000, rate=(r["count"] + 5000) / 10_000) if (r["score"], r["steps"], r["T"]) ==
            ("exact", 100, 100) else r for r in rows]
    assert not all(ss.trained_T_claims(rows, (100, 1000)).values())


def test_schedule_numbers():
    nums = ss.schedule_numbers((100, 1000))
    assert nums["sum_beta_100"] == pytest.approx(100 * (1e-3 + 0.2) / 2)
    assert 0 < nums["noise_share_100"] < nums["noise_share_1000"] < 1


def test_chapter_numbers_recomputes_each_glued_number_from_its_inputs():
    rng = np.random.default_rng(0)
    rows = [{"sampler": s, "steps": t, "seed": seed, "n": 1000, "count": c, "rate": c / 1000,
             "auroc": (0.5 if t <= 100 else 0.97) + 0.01 * seed}
            for s in ("DDPM", "DDIM eta=0") for t in (10, 100, 1000) for seed in (0, 1, 2)
            for c in [int(rng.integers(1, 50)) + (40 if s == "DDIM eta=0" else 0) + (200 if t == 10 else 0)]]
    learned_grid = [{**r, "count": r["count"] + 7, "rate": (r["count"] + 7) / 1000} for r in rows]
    exact, learned, auroc = ss.summarise(rows), ss.summarise(learned_grid), ss.summarise(rows, "auroc")
    cmp = ss.compare(rows, "DDIM eta=0", "DDPM", 1000)
    learned_rows = [{"sampler": "DDPM", "steps": 1000, "seed": s, "count": c, "n": 10_000, "rate": c / 10_000}
                    for s, c in ((0, 20), (1, 30))]
    comparison = ss.matched_comparison([{"seed": s, "count": c, "n": 5_000, "rate": c / 5_000, "tau_0": 20.0 + s}
                                        for s, c in ((0, 12), (1, 9))], learned_rows)
    memo = [{"n": 2000, "n_points": 100, "count": 0, "median_distance": 0.01, "baseline_median": 0.02, "ratio": 0.5}]
    out = ss.chapter_numbers(exact, learned, auroc, cmp, comparison, memo, [{"spec": {"n_samples": 50_000}}],
                             [{"n": 2_000}])
    assert (out["n_exact"], out["n_seeds"], out["n_live"], out["n_record"]) == (1000, 3, 2_000, 50_000)
    ddpm_10 = np.mean([r["rate"] for r in rows if r["sampler"] == "DDPM" and r["steps"] == 10])
    assert out["exact_ddpm_10"] == pytest.approx(ddpm_10) and out["learned_ddpm_10"] == pytest.approx(ddpm_10 + 0.007)
    assert out["learned_ddim0_1000_lo"] < out["learned_ddim0_1000"]
    assert out["auroc_ddpm_1000"] == pytest.approx(0.98) and out["auroc_few_max"] == pytest.approx(0.51)
    assert out["verdict_steps"].startswith(f"yes: the exact score hallucinates {ddpm_10:.0%} (DDPM) at 10 steps")
    assert out["verdict_ddim"].startswith("yes: DDIM (eta = 0) hallucinates more in every replicate")
    assert out["ddim_diff"] == pytest.approx(cmp["mean"]) and out["ddim_agree"] == 3
    assert out["ratio_min"] == pytest.approx((9 / 5_000) / 0.003) and out["ratio_max"] == pytest.approx(1.2)
    assert out["tau0_min"] == 20.0 and out["tau0_max"] == 21.0
    assert out["verdict_memo"] == "no: N = 100: 0 of 2,000 hallucinated" and out["memo_ratio_0"] == 0.5
