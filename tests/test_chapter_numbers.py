"""Chapter 1's numbers, tables and control experiment (``mode_interp.optimal``'s chapter functions): the
values they return, checked against the closed forms they summarise, and their input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from mode_interp import optimal
from conftest import gen


def test_mode_gap_is_the_smallest_neighbour_distance():
    assert optimal.mode_gap(mi.mixture_1d((1.0, 2.0, 3.0), 0.05)) == pytest.approx(1.0)
    assert optimal.mode_gap(mi.mixture_1d((5.0, 1.0, 2.0, 4.0), 0.05)) == pytest.approx(1.0)   # unsorted
    assert optimal.mode_gap(mi.mixture_1d((0.0, 0.3, 2.0), 0.05)) == pytest.approx(0.3)


def test_forward_numbers_match_the_schedule(schedule, mixture):
    out = optimal.forward_numbers(schedule, mixture)
    ab = schedule.alpha_bar
    t = out["t_pure_noise"]
    assert ab[t] < 0.01 <= ab[t - 1]
    assert t == 209                                   # the paper's schedule: beta 1e-3 -> 0.2, T = 1000
    assert out["frac_pure_noise"] == pytest.approx(1 - 209 / 1000)
    assert out["gap_in_sigma"] == pytest.approx(20.0)
    assert optimal.forward_numbers(schedule, mixture, threshold=0.5)["t_pure_noise"] == int(np.argmax(ab < 0.5))


def test_noise_level_table_rows(schedule):
    table = optimal.noise_level_table(schedule, (0, 9))
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| $t$")
    assert lines[2] == f"| 0 | {schedule.alpha_bar[0]:.4f} | {math.sqrt(1 - schedule.alpha_bar[0]):.3f} |"
    assert lines[3].startswith("| 9 | 0.9812 | 0.137 |")


def test_step_numbers_read_the_step_profile(schedule, mixture):
    out = optimal.step_numbers(schedule, mixture)
    prof = mi.step_profile(schedule, 1.0, 0.05)
    assert out["width_t0"] == pytest.approx(0.0154, abs=1e-4)       # as tests/test_optimal.py
    assert out["width_t9"] == pytest.approx(0.0943, abs=1e-4)
    assert out["width_t49"] == pytest.approx(prof["width"][49])
    ab, s2 = schedule.alpha_bar, 0.05 ** 2
    assert out["jump_t0"] == pytest.approx((1 - ab[0]) / (ab[0] * s2 + 1 - ab[0]))   # gap 1
    assert out["slope_max"] == pytest.approx(prof["slope"].max()) and out["t_slope_max"] == 1
    assert (out["sharp_lo"], out["sharp_hi"], out["t_smooth"]) == (2, 9, 43)
    for t in range(out["sharp_lo"], out["sharp_hi"] + 1):           # the sharp-step window, by definition
        assert prof["jump"][t] >= 0.5 and prof["width"][t] <= 0.1
    assert prof["width"][42] <= 1 < prof["width"][43]
    assert out["sqrt_beta_t9"] == pytest.approx(math.sqrt(schedule.betas[9]))
    # in units of the gap: doubling every mean doubles the gap, the widths scale as 1 / gap
    wide = optimal.step_numbers(schedule, mi.mixture_1d((2.0, 4.0, 6.0), 0.05))
    assert wide["width_t9"] == pytest.approx(mi.step_profile(schedule, 2.0, 0.05)["width"][9])


def test_step_table_rows(schedule, mixture):
    lines = optimal.step_table(schedule, mixture, (0, 9)).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| 0 | 0.015 | 1.5% | 0.286 |")


def test_posterior_mean_summary_pools_the_bins(schedule, mixture):
    out = optimal.posterior_mean_summary(mixture, schedule, (2, 9), seed=3, n=400_000)
    g = gen(3)
    parts = [mi.posterior_mean_check(mixture, schedule, t, g, n=400_000) for t in (2, 9)]
    bins = sum(b for _, b in parts)
    assert out["mc_bins"] == bins and out["bins_t2"] == parts[0][1] and out["z2_t9"] == parts[1][0]
    assert out["mc_chi2"] == pytest.approx(sum(z * b for z, b in parts) / bins)
    assert out["mc_chi2_limit"] == pytest.approx(1 + 5 * math.sqrt(2 / bins))
    assert out["mc_chi2"] < out["mc_chi2_limit"]                        # the closed form passes


def test_width_formula_error_is_small(schedule, mixture):
    assert optimal.width_formula_error(mixture, schedule, (0, 9)) < 1e-4


def test_exact_score_control_counts_and_numbers(schedule, mixture):
    c = optimal.exact_score_control(mixture, schedule, 3_000, seed=1, ks=(3.0, 5.0), chunk_size=1_000)
    assert c.x.shape == (3_000, 1) and c.n == 3_000 and c.seconds > 0
    again = mi.sample(mi.exact_eps_fn(mixture, schedule), 3_000, 1, schedule, gen(1), chunk_size=1_000).x0
    torch.testing.assert_close(c.x, again)                              # seeded: the same samples
    for k in (3.0, 5.0):
        r = c.rates[k]
        assert r["count"] == int(mi.is_hallucinated(c.x, mixture, k).sum())
        assert (r["ci_lo"], r["ci_hi"]) == pytest.approx(mi.wilson_interval(r["count"], 3_000))
        assert r["true"] == pytest.approx(mi.true_hallucination_rate(mixture, k))
        assert r["expected"] == pytest.approx(r["true"] * 3_000)
    assert c.std_pred == pytest.approx(mi.exact_chain_mode_std(schedule, 0.05))
    assert len(c.mode_std) == 3 and max(abs(s / c.std_pred - 1) for s in c.mode_std) < 0.1
    numbers = c.numbers(5)
    assert numbers["k_label"] == 5.0 and numbers["count_label"] == c.rates[5.0]["count"]
    assert numbers["rate_k3"] == c.rates[3.0]["rate"] and numbers["true_rate_k5"] == c.rates[5.0]["true"]
    assert numbers["mode_std_min"] == min(c.mode_std) and numbers["sample_seconds"] == c.seconds
    lines = c.table().splitlines()
    assert len(lines) == 4 and lines[2].startswith("| $k = 3$ |")
    with pytest.raises(ValueError, match="k_label"):
        c.numbers(4.0)


@pytest.mark.parametrize("call, exc, name", [
    (lambda s, m: optimal.mode_gap("grid"), TypeError, "mixture"),
    (lambda s, m: optimal.mode_gap(mi.grid_25()), ValueError, "mixture"),
    (lambda s, m: optimal.mode_gap(mi.mixture_1d((1.0,), 0.05)), ValueError, "mixture"),
    (lambda s, m: optimal.forward_numbers(s, m, threshold=1.5), ValueError, "threshold"),
    (lambda s, m: optimal.forward_numbers(s, m, threshold=1e-300), ValueError, "threshold"),
    (lambda s, m: optimal.noise_level_table(s, (0, 1000)), ValueError, "ts"),
    (lambda s, m: optimal.noise_level_table(s, "0"), ValueError, "ts"),
    (lambda s, m: optimal.step_numbers(mi.linear_schedule(20), m), ValueError, "schedule"),
    (lambda s, m: optimal.step_numbers(None, m), TypeError, "schedule"),
    (lambda s, m: optimal.step_table(s, m, ()), ValueError, "ts"),
    (lambda s, m: optimal.posterior_mean_summary(m, s, (9,), seed=-1), ValueError, "seed"),
    (lambda s, m: optimal.posterior_mean_summary(m, s, (), seed=0), ValueError, "ts"),
    (lambda s, m: optimal.width_formula_error(m, s, (1000,)), ValueError, "ts"),
    (lambda s, m: optimal.exact_score_control(m, s, 0, 0), ValueError, "n"),
    (lambda s, m: optimal.exact_score_control(m, s, 10, 1.5), ValueError, "seed"),
    (lambda s, m: optimal.exact_score_control(m, s, 10, 0, ks=()), ValueError, "ks"),
    (lambda s, m: optimal.exact_score_control(m, s, 10, 0, ks=(-1.0,)), ValueError, "ks"),
    (lambda s, m: optimal.exact_score_control(mi.grid_25(), s, 10, 0), ValueError, "mixture"),
])
def test_bad_input_names_the_parameter(schedule, mixture, call, exc, name):
    with pytest.raises(exc, match=name):
        call(schedule, mixture)


def test_the_chapters_dicts_glue_under_distinct_keys(schedule, mixture):
    """Chapter 1 glues these dicts under one prefix: a key in two of them is a duplicate glue key, which
    fails the -W book build."""
    control = optimal.exact_score_control(mixture, schedule, 200, seed=0, ks=(3.0, 4.0, 5.0))
    dicts = [{"n_samples": 0, "n_monte_carlo": 0, "width_rel_err": 0.0},     # glued by the chapter itself
             optimal.forward_numbers(schedule, mixture), optimal.step_numbers(schedule, mixture),
             optimal.posterior_mean_summary(mixture, schedule, (2, 9, 49), seed=0), control.numbers(5.0)]
    keys = [k for d in dicts for k in d]
    assert len(keys) == len(set(keys)), sorted(k for k in set(keys) if keys.count(k) > 1)
