"""The trajectory-variance detector (Hal) and the threshold / ROC analysis, on hand-made inputs."""
import math

import numpy as np
import pytest
import torch

import mode_interp as mi
from mode_interp import detect
from conftest import gen


def test_constant_trajectory_has_zero_hal():
    x0_hat = torch.full((10, 5, 3), 0.7)
    assert torch.equal(detect.hal(x0_hat), torch.zeros(5, dtype=torch.float64))


def test_known_oscillation_gives_known_variance():
    # x0_hat alternates +a, -a over 10 steps in dimension 0, constant in dimension 1:
    # population variance a^2 in dim 0, 0 in dim 1 -> Hal = a^2 / 2.
    a = torch.tensor([0.1, 0.5, 2.0])
    sign = torch.tensor([1.0, -1.0] * 5)
    x0_hat = torch.zeros(10, 3, 2)
    x0_hat[:, :, 0] = sign[:, None] * a[None, :]
    x0_hat[:, :, 1] = 3.0
    assert torch.allclose(detect.hal(x0_hat), (a.double() ** 2) / 2)


def test_window_selects_the_right_timesteps():
    # rows are in reverse-time order: row i holds timestep k-1-i; put the step number into the values
    k = 20
    t = torch.arange(k - 1, -1, -1, dtype=torch.float64)
    x0_hat = t[:, None, None].expand(k, 1, 1).clone()
    # timesteps 0..9 hold values 0..9: population variance of 0..9 = (10^2 - 1) / 12
    assert detect.hal(x0_hat, 10).item() == pytest.approx(99 / 12)
    # offset 5: timesteps 5..14, the same spread
    assert detect.hal(x0_hat, 10, offset=5).item() == pytest.approx(99 / 12)
    # a window of 3 at offset 17 (timesteps 17..19): variance 2/3
    assert detect.hal(x0_hat, 3, offset=17).item() == pytest.approx(2 / 3)


@pytest.mark.parametrize("length, offset, match", [(1, 0, "length"), (0, 0, "length"), (11, 0, "length"),
                                                   (5, 6, "offset"), (5, -1, "offset")])
def test_bad_window_is_refused(length, offset, match):
    with pytest.raises(ValueError, match=match):
        detect.hal(torch.zeros(10, 4, 1), length, offset)


def test_bad_trajectories_are_refused():
    with pytest.raises(ValueError, match="at least 2 steps"):
        detect.hal(torch.zeros(1, 4, 1))
    with pytest.raises(ValueError, match="x0_hat"):
        detect.hal(torch.zeros(10, 4))
    with pytest.raises(ValueError, match="no samples"):
        detect.hal(torch.zeros(10, 0, 2))
    with pytest.raises(ValueError, match="x0_hat"):
        detect.hal(None)


def test_streaming_variance_equals_the_recorded_window(schedule):
    mixture = mi.mixture_1d((1.0, 2.0))
    eps_fn = mi.exact_eps_fn(mixture, schedule)
    stream = detect.WindowVariance(300, 1, window=10)
    result = mi.sample(eps_fn, 300, 1, schedule, gen(3), window=10, chunk_size=128, observer=stream)
    assert torch.allclose(stream.hal(), detect.hal(result.x0_hat), rtol=1e-9, atol=1e-15)
    # x_t variant: observed x_t over t = 9..0 equals the chain's inputs; the last step's input is x_0's parent
    stream_x = detect.WindowVariance(50, 1, window=10, of="x_t")
    mi.sample(eps_fn, 50, 1, schedule, gen(4), observer=stream_x)
    assert (stream_x.hal() > 0).all()


def test_streaming_refuses_bad_input():
    with pytest.raises(ValueError, match="window"):
        detect.WindowVariance(10, 1, window=1)
    with pytest.raises(ValueError, match="of must be"):
        detect.WindowVariance(10, 1, of="eps")
    w = detect.WindowVariance(4, 2)
    with pytest.raises(ValueError, match="at least 2 recorded steps"):
        w.hal()
    with pytest.raises(ValueError, match="values must have shape"):
        w.update(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="observer"):
        mi.sample(lambda x, t: x, 2, 1, mi.linear_schedule(10), gen(), observer=3)


def test_normalised_hal_divides_by_forward_noise(schedule):
    x0_hat = torch.zeros(2, 1, 1, dtype=torch.float64)
    x0_hat[0] = 1.0                       # timesteps (1, 0): values 1 and 0, mean 1/2
    ab = schedule.alpha_bar
    expected = 0.5 * (0.25 / ((1 - ab[1]) / ab[1]) + 0.25 / ((1 - ab[0]) / ab[0]))
    assert detect.normalised_hal(x0_hat, schedule, (1, 0)).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="one timestep per row"):
        detect.normalised_hal(x0_hat, schedule, (0,))


def test_region_hal_averages_within_regions():
    x0_hat = torch.zeros(2, 1, 4)
    x0_hat[0, 0] = torch.tensor([1.0, 1.0, 2.0, 0.0])    # per-coordinate variances 1/4, 1/4, 1, 0
    out = detect.region_hal(x0_hat, [0, 0, 1, 1])
    assert torch.allclose(out, torch.tensor([[0.25, 0.5]], dtype=torch.float64))
    with pytest.raises(ValueError, match="regions"):
        detect.region_hal(x0_hat, [0, 1])
    with pytest.raises(ValueError, match="own at least one"):
        detect.region_hal(x0_hat, [0, 0, 2, 2])


def test_removal_retention_counts():
    scores = [0.1, 0.2, 0.3, 0.9, 0.8, 0.25]
    labels = [False, False, False, True, True, True]
    r = detect.removal_retention(scores, labels, 0.5)
    assert r["removed"] == pytest.approx(2 / 3) and r["retained"] == 1.0
    assert r["n_hallucinated"] == 3 and r["n_in_support"] == 3 and r["n_total_removed"] == 2
    r = detect.removal_retention(scores, labels, 0.22)
    assert r["removed"] == 1.0 and r["retained"] == pytest.approx(2 / 3)


def test_threshold_for_removal_is_the_largest_that_reaches_the_target():
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(0, 1, 500), rng.normal(3, 1, 200)]
    labels = np.r_[np.zeros(500, bool), np.ones(200, bool)]
    for target in (0.5, 0.9, 0.95, 1.0):
        thr = detect.threshold_for_removal(scores, labels, target)
        assert detect.removal_retention(scores, labels, thr)["removed"] >= target
        # any larger threshold (the next score up) misses the target
        above = np.sort(scores[scores > thr])[0]
        assert detect.removal_retention(scores, labels, above)["removed"] < target
    thr = detect.threshold_for_retention(scores, labels, 0.96)
    assert detect.removal_retention(scores, labels, thr)["retained"] >= 0.96
    below = np.sort(scores[scores < thr])[-1]
    assert detect.removal_retention(scores, labels, below)["retained"] < 0.96


def test_roc_and_auroc_on_hand_made_scores():
    # perfect separation
    assert detect.auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert detect.auroc([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1]) == 0.0
    # all tied: 1/2
    assert detect.auroc([1.0] * 4, [0, 1, 0, 1]) == 0.5
    # one inversion among 2 x 2 pairs: 3/4
    scores, labels = [0.1, 0.6, 0.5, 0.9], [0, 0, 1, 1]
    assert detect.auroc(scores, labels) == 0.75
    roc = detect.roc_curve(scores, labels)
    assert np.allclose(roc["tpr"], [0, 0.5, 0.5, 1, 1]) and np.allclose(roc["fpr"], [0, 0, 0.5, 0.5, 1])
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(0.75)
    # every threshold of the curve reproduces its point
    for f, t, thr in zip(roc["fpr"][1:], roc["tpr"][1:], roc["thresholds"][1:]):
        r = detect.removal_retention(scores, labels, thr)
        assert r["removed"] == pytest.approx(t) and 1 - r["retained"] == pytest.approx(f)


def test_auroc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, 60).astype(float)       # many ties
    labels = rng.random(60) < 0.3
    pos, neg = scores[labels], scores[~labels]
    brute = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert detect.auroc(scores, labels) == pytest.approx(brute)
    roc = detect.roc_curve(scores, labels)
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(brute)


def test_delong_interval_covers_and_shrinks():
    rng = np.random.default_rng(2)
    small = detect.auroc_interval(np.r_[rng.normal(0, 1, 100), rng.normal(1, 1, 100)],
                                  np.r_[np.zeros(100, bool), np.ones(100, bool)])
    large = detect.auroc_interval(np.r_[rng.normal(0, 1, 4000), rng.normal(1, 1, 4000)],
                                  np.r_[np.zeros(4000, bool), np.ones(4000, bool)])
    true = 0.5 * math.erfc(-1 / 2)                        # P(N(1,1) > N(0,1)) = Phi(1/sqrt 2)
    assert large["lo"] < true < large["hi"] and small["lo"] < true < small["hi"]
    assert large["hi"] - large["lo"] < 0.3 * (small["hi"] - small["lo"])


def test_stratified_auroc_only_compares_within_strata():
    # stratum 0: positives always higher; stratum 1: positives always lower -> pooled pairs 4 of 8 won
    scores = [0.0, 1.0, 1.0, 2.0, 10.0, 11.0, 9.0, 8.0]
    labels = [0, 1, 0, 1, 0, 0, 1, 1]
    strata = [0, 0, 0, 0, 1, 1, 1, 1]
    r = detect.auroc_interval(scores, labels, strata=strata)
    # stratum 0: pairs (1 vs 0) win, (1 vs 1) tie, (2 vs 0) win, (2 vs 1) win -> 3.5 / 4; stratum 1: 0 / 4
    assert r["auroc"] == pytest.approx(3.5 / 8) and r["n_pairs"] == 8
    # a stratum lacking a class is dropped
    r = detect.auroc_interval(scores + [5.0], labels + [1], strata=strata + [2])
    assert r["n_pairs"] == 8 and r["n_hallucinated"] == 4
    with pytest.raises(ValueError, match="no stratum"):
        detect.auroc_interval([0.0, 1.0], [0, 1], strata=[0, 1])
    with pytest.raises(ValueError, match="strata"):
        detect.auroc_interval([0.0, 1.0], [0, 1], strata=[0])


def test_keep_lowest():
    scores = torch.tensor([0.5, 0.1, 0.9, 0.1, 0.3])
    assert detect.keep_lowest(scores, 3).tolist() == [1, 3, 4]
    assert len(detect.keep_lowest(scores, 0)) == 0
    with pytest.raises(ValueError, match="n must be"):
        detect.keep_lowest(scores, 6)


@pytest.mark.parametrize("scores, labels, match", [
    ([0.1, 0.2], [0, 1, 1], "same length"),
    ([0.1, float("nan")], [0, 1], "NaN"),
    ([0.1, 0.2], [0, 2], "boolean"),
    ([0.1, 0.2], [1, 1], "both classes"),
    ([[0.1], [0.2]], [0, 1], "1-D"),
])
def test_threshold_analysis_refuses_bad_input(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        detect.auroc(scores, labels)
    with pytest.raises(ValueError, match=match):
        detect.removal_retention(scores, labels, 0.5)


def test_targets_are_checked():
    with pytest.raises(ValueError, match="target"):
        detect.threshold_for_removal([0.1, 0.2], [0, 1], 0.0)
    with pytest.raises(ValueError, match="target"):
        detect.threshold_for_retention([0.1, 0.2], [0, 1], 1.5)


def test_held_out_filter_chooses_on_calibration_and_measures_on_the_rest():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(2000, bool), np.ones(400, bool)]
    good = np.r_[rng.normal(0, 1, 2000), rng.normal(4, 1, 400)]
    weak = np.r_[rng.normal(0, 1, 2000), rng.normal(1, 1, 400)]
    cal = rng.random(2400) < 0.5
    out = detect.held_out_filter({"weak": weak, "good": good}, labels, cal, 0.9)
    assert out["choice"] == "good"
    assert out["calibration"]["removed"] >= 0.9
    assert out["held_out"]["n"] == int((~cal).sum())
    assert out["held_out"] == detect.removal_retention(good[~cal], labels[~cal], out["threshold"])
    with pytest.raises(ValueError, match="calibration"):
        detect.held_out_filter({"good": good}, labels, cal.astype(int))
    with pytest.raises(ValueError, match="at least one"):
        detect.held_out_filter({}, labels, cal)


def test_width_matched_window(schedule):
    # the paper's 1-D constants give the paper's window of 10 steps; the normalised 2-D grid a shorter one
    assert detect.width_matched_window(schedule, 1.0, 0.05) == 10
    grid = mi.grid_25()
    assert detect.width_matched_window(schedule, 2 / 2.8289, grid.sigma) == 6
    w = mi.transition_width(schedule, 1.0, 0.05)
    assert w[9] <= 0.1 < w[10]
    with pytest.raises(ValueError, match="max_ratio"):
        detect.width_matched_window(schedule, 1.0, 0.05, max_ratio=0.001)


def test_filter_summary_combines_threshold_and_auroc():
    scores, labels = [0.1, 0.6, 0.5, 0.9, 0.95], [0, 0, 1, 1, 1]
    out = detect.filter_summary(scores, labels, target=0.6)
    assert out["removed"] >= 0.6 and out["auroc"] == pytest.approx(detect.auroc(scores, labels))
    assert out["threshold"] == detect.threshold_for_removal(scores, labels, 0.6)


def test_retention_bound_is_the_retention_at_a_lower_hallucinated_score():
    rng = np.random.default_rng(1)
    s = np.r_[rng.normal(0, 1, 50_000), rng.normal(3, 1, 1_000)]
    y = np.r_[np.zeros(50_000, bool), np.ones(1_000, bool)]
    st = detect.in_support_below_hallucinated(s, y)
    assert st["n_in_support"] == 50_000 and st["hallucinated"] == sorted(st["hallucinated"])
    b = detect.retention_bound(st, 0.95, 0.95)
    fitted = detect.removal_retention(s, y, detect.threshold_for_removal(s, y, 0.95))
    at_bound = detect.removal_retention(s, y, b["threshold"])
    assert b["rank"] == 39 and b["retained"] == at_bound["retained"]       # kept: score <= s_(l)
    assert b["retained_lo"] < b["retained"] < fitted["retained"]           # the bound sits below the fit
    # with few hallucinations no rank bounds the threshold at 99.9%: nothing is promised
    few = detect.in_support_below_hallucinated(s[:50_092], y[:50_092] | (np.arange(50_092) >= 50_000))
    none = detect.retention_bound(few, 0.95, 0.999)
    assert none["rank"] == 0 and none["retained"] == 0.0 and none["threshold"] == -math.inf
    with pytest.raises(ValueError, match="in_support_below_hallucinated"):
        detect.retention_bound({"hallucinated": [1.0]})
    with pytest.raises(ValueError, match="one in-support count"):
        detect.retention_bound({"hallucinated": [1.0, 2.0], "in_support_le": [3], "n_in_support": 5})
    with pytest.raises(ValueError, match="target"):
        detect.retention_bound(st, 1.0)
