import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from conftest import gen
from mode_interp import interpolation as interp


def test_mode_summary_of_true_samples(mixture):
    x = mixture.sample(300_000, gen(1))
    s = interp.mode_summary(x, mixture, k=3.0)
    assert abs(s["within"] - (1 - mi.true_hallucination_rate(mixture, 3.0))) < 5e-4
    # truncated Gaussian: std = sqrt(1 - 2k phi(k) / (2 Phi(k) - 1)) sigma
    k = 3.0
    phi, Phi2 = math.exp(-k * k / 2) / math.sqrt(2 * math.pi), math.erf(k / math.sqrt(2))
    assert np.allclose(s["std"], math.sqrt(1 - 2 * k * phi / Phi2), atol=0.01)
    assert np.allclose(s["weights"], 1 / 3, atol=0.005)
    assert all(interp.quality_gate(s).values())


def test_quality_gate_fails_on_blur_wrong_width_and_missing_mode(mixture):
    blur = mi.mixture_1d((1.0, 2.0, 3.0), 0.3).sample(30_000, gen(2))
    assert not list(interp.quality_gate(interp.mode_summary(blur, mixture)).values())[0]
    narrow = mi.mixture_1d((1.0, 2.0, 3.0), 0.02).sample(30_000, gen(3))
    checks = list(interp.quality_gate(interp.mode_summary(narrow, mixture)).values())
    assert checks[0] and not checks[1]
    two = mi.mixture_1d((1.0, 2.0), 0.05).sample(30_000, gen(4))
    checks = list(interp.quality_gate(interp.mode_summary(two, mixture)).values())
    assert checks[0] and not checks[2]


def test_hallucination_summary_counts_and_ratio(mixture):
    x = torch.tensor([[1.0], [1.5], [2.26], [3.3], [2.0]])
    h = interp.hallucination_summary(x, mixture, k=5.0)
    assert (h["count"], h["n"]) == (3, 5) and h["rate"] == 0.6
    assert h["lo"] < 0.6 < h["hi"]
    assert h["true_rate"] == pytest.approx(mi.true_hallucination_rate(mixture, 5.0))
    assert h["ratio_lo"] == pytest.approx(h["lo"] / h["true_rate"])
    h2 = interp.hallucination_summary(torch.zeros(4, 2), mi.grid_25(), k=5.0)
    assert h2["true_rate"] == pytest.approx(math.exp(-12.5))


def test_gap_counts():
    mix = mi.mixture_1d((1.0, 2.0, 4.0, 5.0), 0.05)
    x = torch.tensor([[1.5], [1.6], [3.0], [4.5], [0.0], [6.0], [1.02], [1.24]])
    assert interp.gap_counts(x, mix, k=5.0) == {(1.0, 2.0): 2, (2.0, 4.0): 1, (4.0, 5.0): 1, "outside": 2}
    with pytest.raises(ValueError, match="1-D"):
        interp.gap_counts(torch.zeros(3, 2), mi.grid_25())


def test_gap_profile():
    mix = mi.mixture_1d((1.0, 2.0, 4.0), 0.05)
    x = torch.tensor([[1.3], [1.3], [1.7], [3.0], [0.0], [1.02]])
    profile = interp.gap_profile(x, mix, k=5.0, bins=3)       # open gaps (1.25, 1.75) and (2.25, 3.75)
    assert profile[(1.0, 2.0)]["counts"] == [2, 0, 1] and profile[(2.0, 4.0)]["counts"] == [0, 1, 0]
    assert profile[(1.0, 2.0)]["position"] == pytest.approx((0.3 + 0.3 + 0.7) / 3)
    assert profile[(2.0, 4.0)]["position"] == pytest.approx(0.5)
    assert interp.gap_profile(torch.tensor([[1.0]]), mix)[(1.0, 2.0)] == {"counts": [0] * 10, "position": None}
    with pytest.raises(ValueError, match="bins"):
        interp.gap_profile(x, mix, bins=0)


@pytest.mark.parametrize("mix, first_len, second_len, first_gap", [
    (mi.grid_25(), 40, 16, 2 / mi.data.GRID_SCALE), (mi.rotated_grid_25(), 40, 16, math.sqrt(2) / mi.data.GRID_SCALE)])
def test_neighbour_midpoints(mix, first_len, second_len, first_gap):
    first, second = interp.neighbour_midpoints(mix)
    assert (len(first), len(second)) == (first_len, second_len)
    d_first = np.linalg.norm(first[:, None] - mix.means[None], axis=-1).min(axis=1)
    assert np.allclose(d_first, first_gap / 2)            # halfway along a nearest-neighbour segment
    assert np.allclose(np.linalg.norm(second[:, None] - mix.means[None], axis=-1).min(axis=1),
                       math.sqrt(2) * first_gap / 2)


def test_diamond_second_neighbours_are_axis_aligned():
    mix = mi.rotated_grid_25()
    mu = mix.means
    d = np.linalg.norm(mu[:, None] - mu[None], axis=-1)
    first = d[d > 0].min()
    i, j = np.nonzero(np.isclose(d, math.sqrt(2) * first))
    delta = mu[i] - mu[j]
    assert np.all(np.isclose(delta, 0).any(axis=1))       # one coordinate equal: horizontal or vertical


def test_midpoint_mass_counts_points_placed_on_midpoints():
    mix = mi.grid_25()
    first, second = interp.neighbour_midpoints(mix)
    x = torch.as_tensor(np.concatenate([first[:10], second[:2], mix.means[:8]]))
    m = interp.midpoint_mass(x, mix, radius_sigma=5.0)
    assert m["first"]["count"] == 10 and m["second"]["count"] == 2 and m["n"] == 20
    assert m["first"]["per_midpoint"] == pytest.approx(10 / 20 / 40)
    with pytest.raises(ValueError, match="radius_sigma"):
        interp.midpoint_mass(x, mix, radius_sigma=0.0)
    with pytest.raises(ValueError, match="two distinct"):
        interp.neighbour_midpoints(mi.mixture_1d((1.0, 2.0)))


@pytest.mark.parametrize("call, name", [
    (lambda m: interp.mode_summary(torch.zeros(3, 2), m), "x"),
    (lambda m: interp.mode_summary(torch.zeros(3, 1), m, k=0.0), "k"),
    (lambda m: interp.hallucination_summary(torch.zeros(3, 1), m, k=-1.0), "k"),
    (lambda m: interp.quality_gate(interp.mode_summary(torch.ones(3, 1), m), min_within=1.5), "min_within"),
])
def test_bad_input(mixture, call, name):
    with pytest.raises(ValueError, match=name):
        call(mixture)


def test_off_mode_breakdown_places_points_in_their_regions():
    mix = mi.grid_25()
    s, sig = mix.means[1, 1] - mix.means[0, 1], mix.sigma           # the spacing (modes 0, 1 share x)
    base = mix.means[12]                                            # the centre mode (0, 0)
    pts = [base + [0, s / 2],                    # an edge midpoint: first-neighbour segment
           base + [s / 2, s / 2],                # a cell centre: second-neighbour (diagonal) segment
           base + [0.25 * s, 0.6 * s],           # inside a cell, off every segment
           base + [4 * sig, 0],                  # a shoulder
           base + [0, 0], base + [10.0, 10.0]]   # a mode's core; far outside the lattice
    b = interp.off_mode_breakdown(torch.tensor(np.array(pts)), mix)
    assert (b["core"], b["shoulder"], b["off"]) == (1, 1, 4)
    assert [b["regions"][r]["count"] for r in interp.REGIONS] == [1, 1, 1, 1]
    assert b["true_shoulder_share"] == pytest.approx(math.exp(-4.5) - math.exp(-12.5))


@pytest.mark.parametrize("mix", [mi.grid_25(), mi.rotated_grid_25()], ids=["grid", "diamond"])
def test_uniform_points_are_not_enriched_anywhere(mix):
    radius = mix.sigma * interp.off_mode_breakdown(torch.zeros(1, 2), mix)["radius"]
    lo, hi = mix.means.min(0) - radius, mix.means.max(0) + radius
    u = torch.rand(100_000, 2, dtype=torch.float64, generator=gen(5)) * torch.tensor(hi - lo) + torch.tensor(lo)
    b = interp.off_mode_breakdown(u, mix)
    for name in ("first", "second", "elsewhere"):
        assert b["regions"][name]["enrichment_lo"] < 1 < b["regions"][name]["enrichment_hi"], name
    assert sum(b["regions"][r]["area_share"] for r in ("first", "second", "elsewhere")) == pytest.approx(1)


def test_segment_distance():
    a, b = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]])
    x = torch.tensor([[0.5, 2.0], [-3.0, 4.0], [2.0, 0.0]])
    assert interp.segment_distance(x, a, b).tolist() == pytest.approx([2.0, 5.0, 1.0])


def test_segment_profile_assigns_off_mode_points_to_their_nearest_segment():
    mix = mi.grid_9()
    mu = torch.as_tensor(mix.means)
    pairs = interp.neighbour_pairs(mix)[0].tolist()
    assert len(pairs) == 12 and [4, 5] in pairs and [0, 4] not in pairs       # axis-aligned only
    on = lambda a, b, s: (mu[a] + s * (mu[b] - mu[a]))[None]
    x = torch.cat([on(4, 5, 0.3).repeat(5, 1), on(0, 1, 0.5).repeat(3, 1),
                   on(4, 5, 0.3) + torch.tensor([[4 * mix.sigma, 0.0]]),        # beyond the band: no segment
                   (mu[0] + mu[4]) / 2 + torch.zeros(2, 2),                      # a cell centre: no segment
                   mu[:9], on(4, 5, 0.02)])                                      # on or near a mode: not off-mode
    prof = {tuple(g["between"]): g for g in interp.segment_profile(x, mix)}
    assert prof[(4, 5)]["count"] == 5 and prof[(4, 5)]["position"] == pytest.approx(0.3)
    assert prof[(0, 1)]["count"] == 3 and prof[(0, 1)]["position"] == pytest.approx(0.5)
    assert sum(g["count"] for g in prof.values()) == 8 and prof[(7, 8)]["position"] is None
    true = mix.sample(20_000, gen(3))
    assert sum(g["count"] for g in interp.segment_profile(true, mix)) == 0       # the true mixture: none
    with pytest.raises(ValueError, match="2-D"):
        interp.segment_profile(torch.zeros(3, 1), mi.mixture_1d((1.0, 2.0), 0.05))
    with pytest.raises(ValueError, match="band"):
        interp.segment_profile(x, mix, band=0.0)


def test_truncated_spread_matches_the_truncated_gaussian():
    k = 3.0
    phi, Phi2 = math.exp(-k * k / 2) / math.sqrt(2 * math.pi), math.erf(k / math.sqrt(2))
    assert interp.truncated_spread(1.0, k, 1) == pytest.approx(math.sqrt(1 - 2 * k * phi / Phi2))
    z = torch.randn(400_000, 2, generator=gen(6), dtype=torch.float64) * 0.8
    r2 = (z ** 2).sum(1)
    kept = r2[r2.sqrt() <= 2.0]
    assert interp.truncated_spread(0.8, 2.0, 2) == pytest.approx(float((kept.mean() / 2).sqrt()), rel=2e-3)


def test_strict_gate_passes_the_exact_chain_and_names_a_blurred_mode(mixture):
    schedule = mi.linear_schedule(1000, 1e-3, 0.2)
    chain = mi.sample(mi.exact_eps_fn(mixture, schedule), 6_000, 1, schedule, gen(7)).x0.double()
    g = interp.strict_gate(interp.mode_summary(chain, mixture), mixture, schedule)
    assert g["passed"] and abs(g["median_spread_ratio"] - 1) < 0.05 and g["blurred"] == []
    width = mi.exact_chain_mode_std(schedule, mixture.sigma)
    parts = [mu + width * (2.0 if i == 1 else 1.0) * torch.randn(2_000, 1, generator=gen(8 + i), dtype=torch.float64)
             for i, mu in enumerate(mixture.means[:, 0])]
    g = interp.strict_gate(interp.mode_summary(torch.cat(parts), mixture), mixture, schedule)
    assert not g["passed"] and g["blurred"] == [1] and g["worst_spread_mode"] == 1
    assert g["checks"]["every mode's weight within 20% of 1/K"]
    lopsided = torch.cat([parts[0], parts[0], parts[2]])
    g = interp.strict_gate(interp.mode_summary(lopsided, mixture), mixture, schedule)
    assert not g["checks"]["every mode's weight within 20% of 1/K"] and g["worst_weight_mode"] == 1


@pytest.mark.parametrize("call, name", [
    (lambda m: interp.off_mode_breakdown(torch.zeros(3, 1), m), "2-D"),
    (lambda m: interp.off_mode_breakdown(torch.zeros(3, 2), mi.grid_25(), shoulder=2.0), "shoulder"),
    (lambda m: interp.off_mode_breakdown(torch.zeros(0, 2), mi.grid_25()), "x"),
    (lambda m: interp.off_mode_breakdown(torch.zeros(3, 2), mi.grid_25(), lattice=3), "lattice"),
    (lambda m: interp.segment_distance(torch.zeros(3, 2), np.zeros((2, 2)), np.zeros((3, 2))), "a and b"),
    (lambda m: interp.strict_gate({"within": 1.0}, m, mi.linear_schedule(10)), "summary"),
    (lambda m: interp.strict_gate(interp.mode_summary(torch.ones(3, 1), m), mi.grid_25(), mi.linear_schedule(10)),
     "modes"),
    (lambda m: interp.strict_gate(interp.mode_summary(torch.ones(3, 1), m), m, mi.linear_schedule(10),
                                  mode_tol=0.0), "mode_tol"),
    (lambda m: interp.truncated_spread(0.0, 3.0, 1), "spread"),
])
def test_bad_breakdown_and_gate_input(mixture, call, name):
    with pytest.raises(ValueError, match=name):
        call(mixture)
