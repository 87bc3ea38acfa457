import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from conftest import gen


def test_chi_tail_closed_forms():
    assert mi.chi_tail(5, 1) == pytest.approx(math.erfc(5 / math.sqrt(2)), rel=1e-12)
    assert mi.chi_tail(5, 2) == pytest.approx(math.exp(-12.5), rel=1e-12)
    assert mi.chi_tail(3, 1) == pytest.approx(0.0026998, rel=1e-4)
    assert mi.chi_tail(3, 2) == pytest.approx(0.011109, rel=1e-4)
    assert mi.chi_tail(0, 3) == pytest.approx(1.0)
    z = torch.randn(2_000_000, 3, generator=gen(0), dtype=torch.float64).norm(dim=1)
    for dim, k in [(3, 2.0), (3, 3.0)]:
        assert mi.chi_tail(k, dim) == pytest.approx((z > k).double().mean().item(), rel=0.03)
    z4 = torch.randn(2_000_000, 4, generator=gen(1), dtype=torch.float64).norm(dim=1)
    assert mi.chi_tail(3.0, 4) == pytest.approx((z4 > 3).double().mean().item(), rel=0.03)


def test_true_rate_1d_exact():
    m = mi.mixture_1d()
    assert mi.true_hallucination_rate(m, 5) == pytest.approx(math.erfc(5 / math.sqrt(2)), rel=1e-9)
    assert mi.true_hallucination_rate(m, 3) == pytest.approx(math.erfc(3 / math.sqrt(2)), rel=1e-9)
    # overlapping windows: modes 0.2 apart, sigma 0.05, k = 3 -> windows merge into one
    close = mi.mixture_1d((0.0, 0.2), 0.05)
    x = close.sample(2_000_000, gen(0))
    mc = mi.is_hallucinated(x, close, 3).double().mean().item()
    assert mi.true_hallucination_rate(close, 3) == pytest.approx(mc, rel=0.05)
    assert mi.true_hallucination_rate(close, 3) < math.erfc(3 / math.sqrt(2))


def test_true_rate_2d_is_chi_tail_and_matches_samples():
    g = mi.grid_25()
    x = g.sample(1_000_000, gen(1))
    mc = mi.is_hallucinated(x, g, 3).double().mean().item()
    assert mi.true_hallucination_rate(g, 3) == pytest.approx(mc, rel=0.03)
    assert mi.true_hallucination_rate(g, 5) == pytest.approx(math.exp(-12.5))


def test_labels_on_hand_made_points():
    m = mi.mixture_1d()
    x = torch.tensor([[1.0], [1.24], [1.26], [1.5], [0.74], [3.3]])
    assert mi.is_hallucinated(x, m, 5).tolist() == [False, False, True, True, True, True]
    torch.testing.assert_close(mi.nearest_mode_distance(x, m),
                               torch.tensor([0.0, 0.24, 0.26, 0.5, 0.26, 0.3], dtype=torch.float64))
    g = mi.grid_25()
    mid = torch.tensor([[0.5 * (g.means[0, 0] + g.means[1, 0]), 0.5 * (g.means[0, 1] + g.means[1, 1])]])
    assert mi.is_hallucinated(mid, g).item()


def test_wilson_interval():
    lo, hi = mi.wilson_interval(0, 100_000)
    assert lo == 0.0 and 0 < hi < 2e-4
    lo, hi = mi.wilson_interval(500, 1000, z=1.96)
    assert lo == pytest.approx(0.469, abs=1e-3) and hi == pytest.approx(0.531, abs=1e-3)


@pytest.mark.parametrize("call, name", [
    (lambda m: mi.is_hallucinated(torch.zeros(2, 1), m, k=0), "k"),
    (lambda m: mi.is_hallucinated(torch.zeros(2, 2), m), "x"),
    (lambda m: mi.nearest_mode_distance(np.zeros((2, 1)), m), "x"),
    (lambda m: mi.chi_tail(-1, 1), "k"),
    (lambda m: mi.chi_tail(1, 0), "dim"),
    (lambda m: mi.true_hallucination_rate(m, k=-2), "k"),
    (lambda m: mi.wilson_interval(5, 3), "count"),
    (lambda m: mi.wilson_interval(0, 0), "n"),
    (lambda m: mi.wilson_interval(1, 10, z=0), "z"),
])
def test_bad_input(mixture, call, name):
    with pytest.raises(ValueError, match=name):
        call(mixture)


def test_two_proportion_z():
    from mode_interp.stats import two_proportion_z
    # hand computation: p_a = 0.01, p_b = 0.02, n = 1000 each: p = 0.015, se = sqrt(0.015*0.985*0.002)
    assert two_proportion_z(10, 1000, 20, 1000) == pytest.approx(0.01 / math.sqrt(0.015 * 0.985 * 0.002))
    assert two_proportion_z(20, 1000, 10, 1000) == pytest.approx(-two_proportion_z(10, 1000, 20, 1000))
    assert two_proportion_z(0, 50, 0, 80) == 0.0
    with pytest.raises(ValueError, match="count_b"):
        two_proportion_z(1, 10, 11, 10)
