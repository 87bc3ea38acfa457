"""Table-driven bad input across the public API: every call must fail with a ValueError or TypeError whose
message names the parameter, never return a (wrong) result or fail deep inside torch / numpy.

Each case is a public function or config, a factory for one *valid* call (checked to succeed), and for
each parameter the kinds of bad value to try. A kind turns the parameter's valid value into labelled bad
ones (:data:`KINDS`), so one line of the table stands for several calls; ``test_table_size`` checks the
table's total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import torch

from mode_interp import (data, detect, diffusion, digits, features, fid, hallucination,
                         image_train, interpolation, models, optimal, precision, recursive, report, schedule,
                         shape_counter, shapes, smoothing, stats, train, unet)
from mode_interp.experiments import loops
from mode_interp.experiments import models as toy_experiment

NAN, INF = float("nan"), float("inf")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


SCH = schedule.linear_schedule(20, 1e-3, 0.2)
MIX1 = data.mixture_1d()
MIX2 = data.grid_25()
X1 = MIX1.sample(60, gen(0))
X2 = MIX2.sample(60, gen(1))
LABELS = np.array([False] * 10 + [True] * 10)
SCORES = np.linspace(0.0, 1.0, 20)
WINDOW = torch.randn(10, 30, 2, generator=gen(2))


# ---------------------------------------------------------------- kinds of bad value

def _int(lo=None, hi=None, none_ok=False):
    def bad(_):
        out = [("str", "3"), ("float", 2.5), ("bool", True), ("nan", NAN), ("complex", 1 + 0j), ("list", [1])]
        if not none_ok:
            out.append(("none", None))
        if lo is not None:
            out.append(("below", lo - 1))
        if hi is not None:
            out.append(("above", hi + 1))
        return out
    return bad


def _float(lo=None, hi=None, lo_open=False, hi_open=False, none_ok=False):
    def bad(_):
        out = [("str", "0.5"), ("nan", NAN), ("inf", INF), ("-inf", -INF), ("complex", 0.5 + 0j),
               ("bool", True), ("list", [0.5])]
        if not none_ok:
            out.append(("none", None))
        if lo is not None:
            out.append(("below", lo if lo_open else lo - 1.0))
        if hi is not None:
            out.append(("above", hi if hi_open else hi + 1.0))
        return out
    return bad


def _bool(_):
    return [("none", None), ("str", "no"), ("int", 1), ("zero", 0), ("float", 1.0), ("npint", np.int64(0))]


def _choice(_):
    return [("none", None), ("int", 3), ("bogus", "bogus"), ("empty", "")]


def _points(cols: int | None = None, empty: bool = True):
    """A float tensor (n, d): everything that is not one, or holds NaN / inf / the wrong d, or no rows
    (``empty=False`` for an elementwise function, which maps no rows to no results)."""
    def bad(x):
        nan, inf = x.clone(), x.clone()
        nan[0, 0], inf[-1, -1] = NAN, INF
        out = [("none", None), ("str", "x"), ("ndarray", x.numpy()), ("list", x.tolist()),
               ("1d", x[:, 0]), ("3d", x[None]), ("long", x.long()), ("bool", x > 0),
               ("complex", x.to(torch.complex64)), ("half", x.half()), ("nan", nan), ("inf", inf)]
        if empty:
            out.append(("empty", x[:0]))
        if cols is not None:
            out.append(("cols", torch.cat([x, x], dim=1)))
        return out
    return bad


def _tensor(_x):
    """A float tensor of a fixed shape: the wrong type, dtype, shape or a non-finite entry."""
    def bad(x):
        nan = x.clone()
        nan.view(-1)[0] = NAN
        return [("none", None), ("ndarray", x.numpy()), ("long", x.long()), ("complex", x.to(torch.complex64)),
                ("half", x.half()), ("nan", nan), ("shape", x.reshape(-1)[:-1])]
    return bad(_x)


def _array1d(x):
    """A 1-D array of finite reals: strings, NaN, inf, complex, 2-D, empty, object arrays, wrong length."""
    x = np.asarray(x, dtype=np.float64)
    nan, inf = x.copy(), x.copy()
    nan[0], inf[-1] = NAN, INF
    return [("none", None), ("str", "abc"), ("nan", nan), ("inf", inf), ("complex", x.astype(np.complex128)),
            ("2d", x[:, None]), ("empty", x[:0]), ("object", np.array(["a"] * len(x), dtype=object)),
            ("short", x[:-1])]


def _labels(y):
    return [("none", None), ("str", "abc"), ("floats", np.where(y, 0.5, 0.0)), ("twos", y.astype(int) * 2),
            ("nan", np.where(y, NAN, 0.0)), ("short", y[:-1]), ("2d", y[:, None]), ("empty", y[:0])]


def _generator(_):
    return [("none", None), ("int", 0), ("numpy", np.random.default_rng(0)), ("str", "seed")]


def _schedule(_):
    return [("none", None), ("str", "linear"), ("int", 1000), ("array", np.full(10, 0.01)), ("mixture", MIX1)]


def _mixture(_):
    return [("none", None), ("str", "grid_25"), ("schedule", SCH), ("array", np.zeros((3, 1)))]


def _timestep(T):
    def bad(_):
        return [("none", None), ("float", 1.5), ("str", "3"), ("bool", True), ("neg", -1), ("T", T),
                ("float_tensor", torch.full((3,), 1.0))]
    return bad


def _config(_):
    return [("none", None), ("dict", {"steps": 3}), ("str", "config"), ("int", 3)]


def _steps_list(_):
    return [("none", None), ("str", "12"), ("floats", [1.5]), ("neg", [-1]), ("bools", [True])]


# ---------------------------------------------------------------- the table

@dataclass
class Case:
    name: str
    call: Callable            # call(**kwargs)
    valid: Callable           # () -> kwargs of one valid call
    bad: dict = field(default_factory=dict)      # parameter -> kind (valid value -> [(label, bad value)])


def C(_name, _call, _valid, **bad):
    return Case(_name, _call, _valid, bad)


def _window_variance_update(values):
    detect.WindowVariance(30, 2).update(values)


def _toy_config(**kw):
    return train.ToyConfig(**kw)


def _shapes_config(**kw):
    return image_train.ShapesConfig(**kw)


SMALL_UNET = unet.UNet((8, 16), 1)
SMALL_MLP = models.ToyMLP(1, 16, 1)
SHAPES_DATA = shapes.simple_shapes(40, np.random.default_rng(0))
SHAPES_X = shapes.to_model_space(SHAPES_DATA.images[:8], 32)
TOL = shape_counter.fit_tolerances(SHAPES_DATA, shapes.to_model_space(SHAPES_DATA.images, 32))
RECS = [{"spec": {"arm": arm, "seed": seed}, "result": {"rows": [{"hallucinated": 0.1 * seed + i + j}
                                                                   for j in range(2)]}}
        for i, arm in enumerate(("none", "variance", "random")) for seed in range(3)]
IMAGE = shapes.to_intensity(SHAPES_X[:1])[0]

CASES = [
    # data
    C("data.GaussianMixture", data.GaussianMixture, lambda: dict(means=np.array([[0.0], [1.0]]), sigma=0.05),
      means=lambda m: [("none", None), ("str", "ab"), ("nan", np.array([[NAN], [1.0]])),
                       ("complex", m.astype(complex)), ("empty", np.zeros((0, 1))), ("3d", m[None])],
      sigma=_float(0.0, lo_open=True),
      weights=lambda _: [("str", "ab"), ("nan", np.array([NAN, 1.0])), ("inf", np.array([INF, 1.0])),
                         ("neg", np.array([-1.0, 2.0])), ("zero", np.zeros(2)), ("short", np.ones(1)),
                         ("complex", np.ones(2, dtype=complex))]),
    C("data.mixture_1d", data.mixture_1d, lambda: dict(means=(1.0, 2.0)),
      means=lambda m: [("none", None), ("str", "ab"), ("nan", (1.0, NAN)), ("complex", (1 + 1j, 2.0)),
                       ("empty", ()), ("2d", [[1.0, 2.0]])],
      sigma=_float(0.0, lo_open=True)),
    C("data.grid_25", data.grid_25, lambda: dict(), sigma=_float(0.0, lo_open=True),
      spacing=_float(0.0, lo_open=True), normalise=_bool),
    C("data.rotated_grid_25", data.rotated_grid_25, lambda: dict(), sigma=_float(0.0, lo_open=True),
      spacing=_float(0.0, lo_open=True), normalise=_bool),
    C("data.toy_dataset", data.toy_dataset, lambda: dict(name="grid_25"), name=_choice),
    C("GaussianMixture.sample", lambda n, generator: MIX1.sample(n, generator),
      lambda: dict(n=5, generator=gen()), n=_int(1), generator=_generator),
    C("GaussianMixture.log_prob", lambda x: MIX2.log_prob(x), lambda: dict(x=X2), x=_points(2)),
    # schedule
    C("schedule.Schedule", schedule.Schedule, lambda: dict(betas=np.full(10, 0.01)),
      betas=lambda b: [("none", None), ("str", "abc"), ("nan", np.r_[NAN, b[1:]]), ("complex", b.astype(complex)),
                       ("one", b[:1]), ("zero", np.zeros(10)), ("one_or_more", np.ones(10)), ("2d", b[None])]),
    C("schedule.linear_schedule", schedule.linear_schedule, lambda: dict(T=20),
      T=_int(2, 100_000), beta_start=_float(0.0, 1.0, True, True), beta_end=_float(0.0, 1.0, True, True)),
    C("schedule.respace", schedule.respace, lambda: dict(schedule=SCH, steps=5), schedule=_schedule,
      steps=_int(2, 20)),
    C("Schedule.reverse_variance", lambda variance: SCH.reverse_variance(variance),
      lambda: dict(variance="fixed_large"), variance=_choice),
    # diffusion
    C("diffusion.q_sample", diffusion.q_sample, lambda: dict(x0=X1, t=3, eps=torch.randn_like(X1), schedule=SCH),
      x0=_points(), t=_timestep(20), eps=_tensor, schedule=_schedule),
    C("diffusion.x0_from_eps", diffusion.x0_from_eps,
      lambda: dict(x_t=X1, t=3, eps=torch.randn_like(X1), schedule=SCH),
      x_t=_points(), t=_timestep(20), eps=_tensor, schedule=_schedule),
    C("diffusion.eps_mse_loss", diffusion.eps_mse_loss,
      lambda: dict(eps_fn=lambda x, t: torch.zeros_like(x), x0=X1, schedule=SCH, generator=gen()),
      eps_fn=lambda _: [("none", None), ("str", "eps"), ("flat", lambda x, t: torch.zeros(len(x))),
                        ("nan", lambda x, t: torch.full_like(x, NAN)), ("array", lambda x, t: np.zeros(x.shape))],
      x0=_points(), schedule=_schedule, generator=_generator),
    C("diffusion.posterior_step_mean", diffusion.posterior_step_mean,
      lambda: dict(x_t=X1, t=3, eps_hat=torch.zeros_like(X1), schedule=SCH),
      x_t=_points(), t=_timestep(20), eps_hat=_tensor, schedule=_schedule,
      clip_x0=_float(0.0, lo_open=True, none_ok=True)),
    C("diffusion.reverse_step", diffusion.reverse_step,
      lambda: dict(x_t=X1, t=3, eps_hat=torch.zeros_like(X1), schedule=SCH, generator=gen()),
      x_t=_points(), t=_timestep(20), eps_hat=_tensor, schedule=_schedule, generator=_generator,
      variance=_choice, clip_x0=_float(0.0, lo_open=True, none_ok=True)),
    C("diffusion.sample", diffusion.sample,
      lambda: dict(eps_fn=lambda x, t: torch.zeros_like(x), n=4, dim=1, schedule=SCH, generator=gen()),
      eps_fn=lambda _: [("none", None), ("str", "eps"), ("flat", lambda x, t: torch.zeros(len(x))),
                        ("wide", lambda x, t: torch.zeros(len(x), 3))],
      n=_int(1), dim=_int(1), schedule=_schedule, generator=_generator, window=_int(0, 20),
      chunk_size=_int(1, none_ok=True), variance=_choice,
      dtype=lambda _: [("none", None), ("str", "float32"), ("long", torch.long), ("complex", torch.complex64)],
      clip_x0=_float(0.0, lo_open=True, none_ok=True), progress=_bool),
    # optimal
    C("optimal.posterior_mean", optimal.posterior_mean, lambda: dict(x_t=X1, t=3, mixture=MIX1, schedule=SCH),
      x_t=_points(1), t=_timestep(20), mixture=_mixture, schedule=_schedule),
    C("optimal.responsibilities", optimal.responsibilities, lambda: dict(x_t=X2, t=3, mixture=MIX2, schedule=SCH),
      x_t=_points(2), t=_timestep(20), mixture=_mixture, schedule=_schedule),
    C("optimal.score", optimal.score, lambda: dict(x_t=X1, t=3, mixture=MIX1, schedule=SCH),
      x_t=_points(1), mixture=_mixture, schedule=_schedule),
    C("optimal.optimal_eps", optimal.optimal_eps, lambda: dict(x_t=X1, t=3, mixture=MIX1, schedule=SCH),
      x_t=_points(1), mixture=_mixture, schedule=_schedule),
    C("optimal.exact_eps_fn", optimal.exact_eps_fn, lambda: dict(mixture=MIX1, schedule=SCH),
      mixture=_mixture, schedule=_schedule),
    C("optimal.transition_width", optimal.transition_width, lambda: dict(schedule=SCH, gap=1.0, sigma=0.05),
      schedule=_schedule, gap=_float(0.0, lo_open=True), sigma=_float(0.0, lo_open=True),
      q=_float(0.5, 1.0, True, True)),
    C("optimal.ramp_width", optimal.ramp_width,
      lambda: dict(x=np.linspace(0, 1, 11), r=np.linspace(0, 1, 11)),
      x=lambda x: _array1d(x) + [("decreasing", x[::-1].copy())], r=_array1d, q=_float(0.5, 1.0, True, True)),
    C("optimal.measured_transition_width", optimal.measured_transition_width,
      lambda: dict(mixture=MIX1, schedule=SCH, t=3, n_grid=1001),
      mixture=lambda m: _mixture(m) + [("2d", MIX2)], schedule=_schedule, t=_timestep(20),
      pair=lambda _: [("none", None), ("equal", (0, 0)), ("reversed", (1, 0)), ("far", (0, 7)),
                      ("floats", (0.0, 1.0)), ("str", "01"), ("neg", (-1, 0))],
      q=_float(0.5, 1.0, True, True), n_grid=_int(3)),
    C("optimal.posterior_mean_check", optimal.posterior_mean_check,
      lambda: dict(mixture=MIX1, schedule=SCH, t=3, generator=gen(), n=2000, min_count=10),
      mixture=lambda m: _mixture(m) + [("2d", MIX2)], schedule=_schedule, t=_timestep(20),
      generator=_generator, n=_int(1), bin_width=_float(0.0, lo_open=True), min_count=_int(1),
      denoiser=lambda _: [("str", "D"), ("int", 3)]),
    C("optimal.step_profile", optimal.step_profile, lambda: dict(schedule=SCH, gap=1.0, sigma=0.05),
      schedule=_schedule, gap=_float(0.0, lo_open=True), sigma=_float(0.0, lo_open=True)),
    C("optimal.exact_chain_mode_std", optimal.exact_chain_mode_std, lambda: dict(schedule=SCH, sigma=0.05),
      schedule=_schedule, sigma=_float(0.0, lo_open=True), variance=_choice),
    # hallucination
    C("hallucination.nearest_mode_distance", hallucination.nearest_mode_distance,
      lambda: dict(x=X2, mixture=MIX2), x=_points(2, empty=False), mixture=_mixture),
    C("hallucination.is_hallucinated", hallucination.is_hallucinated, lambda: dict(x=X1, mixture=MIX1),
      x=_points(1, empty=False), mixture=_mixture, k=_float(0.0, lo_open=True)),
    C("hallucination.chi_tail", hallucination.chi_tail, lambda: dict(k=5.0, dim=2),
      k=_float(0.0), dim=_int(1)),
    C("hallucination.true_hallucination_rate", hallucination.true_hallucination_rate,
      lambda: dict(mixture=MIX1), mixture=_mixture, k=_float(0.0, lo_open=True)),
    # detect
    C("detect.hal", detect.hal, lambda: dict(x0_hat=WINDOW),
      x0_hat=lambda w: [("none", None), ("ndarray", w.numpy()), ("2d", w[0]), ("long", w.long()),
                        ("complex", w.to(torch.complex64)), ("nan", torch.where(w > 2, NAN, w)),
                        ("one_step", w[:1]), ("empty", w[:, :0])],
      length=_int(2, 10, none_ok=True), offset=_int(0, 8)),
    C("detect.pointwise_variance", detect.pointwise_variance, lambda: dict(x0_hat=WINDOW),
      x0_hat=lambda w: [("none", None), ("inf", torch.where(w > 2, INF, w)), ("half", w.half())],
      length=_int(2, 10, none_ok=True), offset=_int(0, 8)),
    C("detect.normalised_hal", detect.normalised_hal,
      lambda: dict(x0_hat=WINDOW, schedule=SCH, timesteps=list(range(9, -1, -1))),
      x0_hat=lambda w: [("none", None), ("nan", torch.where(w > 2, NAN, w))], schedule=_schedule,
      timesteps=lambda ts: [("none", None), ("floats", [t + 0.5 for t in ts]), ("short", ts[1:]),
                            ("str", "9876543210"), ("neg", [-1] * 10), ("big", [20] * 10)],
      length=_int(2, 10, none_ok=True), offset=_int(0, 8)),
    C("detect.region_hal", detect.region_hal, lambda: dict(x0_hat=WINDOW, regions=np.array([0, 1])),
      regions=lambda r: [("none", None), ("floats", np.array([0.7, 1.2])), ("neg", np.array([-1, 0])),
                         ("short", np.array([0])), ("gap", np.array([0, 2])), ("str", "ab"),
                         ("bool", np.array([True, False])), ("nan", np.array([NAN, 0.0]))]),
    C("detect.width_matched_window", detect.width_matched_window, lambda: dict(schedule=SCH, gap=1.0, sigma=0.05),
      schedule=_schedule, gap=_float(0.0, lo_open=True), sigma=_float(0.0, lo_open=True),
      max_ratio=_float(0.0, lo_open=True)),
    C("detect.WindowVariance", detect.WindowVariance, lambda: dict(n=5, dim=2),
      n=_int(1), dim=_int(1), window=_int(2), of=_choice),
    C("WindowVariance.update", _window_variance_update, lambda: dict(values=torch.zeros(30, 2)),
      values=_tensor),
    C("detect.removal_retention", detect.removal_retention,
      lambda: dict(scores=SCORES, labels=LABELS, threshold=0.5),
      scores=_array1d, labels=_labels, threshold=_float()),
    C("detect.threshold_for_removal", detect.threshold_for_removal, lambda: dict(scores=SCORES, labels=LABELS),
      scores=_array1d, labels=_labels, target=_float(0.0, 1.0, lo_open=True)),
    C("detect.threshold_for_retention", detect.threshold_for_retention, lambda: dict(scores=SCORES, labels=LABELS),
      scores=_array1d, labels=_labels, target=_float(0.0, 1.0, lo_open=True)),
    C("detect.roc_curve", detect.roc_curve, lambda: dict(scores=SCORES, labels=LABELS),
      scores=_array1d, labels=_labels),
    C("detect.auroc", detect.auroc, lambda: dict(scores=SCORES, labels=LABELS), scores=_array1d, labels=_labels),
    C("detect.auroc_interval", detect.auroc_interval, lambda: dict(scores=SCORES, labels=LABELS),
      scores=_array1d, labels=_labels, z=_float(0.0, lo_open=True),
      strata=lambda _: [("short", np.zeros(19)), ("2d", np.zeros((20, 1))), ("nan", np.full(20, NAN))]),
    C("detect.keep_lowest", detect.keep_lowest, lambda: dict(scores=SCORES, n=5),
      scores=lambda s: [v for v in _array1d(s) if v[0] not in ("empty", "short")], n=_int(0, 20)),
    C("detect.filter_summary", detect.filter_summary, lambda: dict(scores=SCORES, labels=LABELS),
      scores=_array1d, labels=_labels, target=_float(0.0, 1.0, lo_open=True), z=_float(0.0, lo_open=True)),
    C("detect.held_out_filter", detect.held_out_filter,
      lambda: dict(scores={"a": SCORES}, labels=LABELS, calibration=np.arange(20) % 2 == 0),
      scores=lambda _: [("none", None), ("empty", {}), ("list", [SCORES]), ("nan", {"a": np.full(20, NAN)})],
      labels=_labels,
      calibration=lambda c: [("none", None), ("ints", c.astype(int)), ("short", c[:-1]), ("2d", c[:, None])],
      target=_float(0.0, 1.0, lo_open=True)),
    # stats
    C("stats.wilson_interval", stats.wilson_interval, lambda: dict(count=3, n=10),
      count=_int(0, 10), n=_int(1), z=_float(0.0, lo_open=True)),
    C("stats.two_proportion_z", stats.two_proportion_z, lambda: dict(count_a=3, n_a=10, count_b=4, n_b=10),
      count_a=_int(0, 10), n_a=_int(1), count_b=_int(0, 10), n_b=_int(1)),
    C("stats.delong_interval", stats.delong_interval, lambda: dict(s=SCORES, y=LABELS),
      s=_array1d, y=_labels, z=_float(0.0, lo_open=True)),
    C("stats.histogram_kl", stats.histogram_kl, lambda: dict(x=X1, reference=X1, bins=10, lo=0.0, hi=4.0),
      x=_points(1), reference=_points(1), bins=_int(1, 10_000), lo=_float(), hi=_float()),
    C("stats.frechet_distance", stats.frechet_distance,
      lambda: dict(features_a=np.random.default_rng(0).normal(size=(20, 3)),
                   features_b=np.random.default_rng(1).normal(size=(20, 3))),
      features_a=lambda f: [("none", None), ("str", "abc"), ("nan", np.where(f > 1, NAN, f)),
                            ("complex", f.astype(complex)), ("1d", f[:, 0]), ("one_row", f[:1]),
                            ("cols", f[:, :2]), ("inf", np.where(f > 1, INF, f))],
      features_b=lambda f: [("none", None), ("nan", np.where(f > 1, NAN, f)), ("complex", f.astype(complex))]),
    C("stats.incomplete_beta", stats.incomplete_beta, lambda: dict(a=1.0, b=2.0, x=0.3),
      a=_float(0.0, lo_open=True), b=_float(0.0, lo_open=True), x=_float(0.0, 1.0)),
    C("stats.student_t_cdf", stats.student_t_cdf, lambda: dict(x=0.3, df=3.0), x=_float(),
      df=_float(0.0, lo_open=True)),
    C("stats.student_t_quantile", stats.student_t_quantile, lambda: dict(p=0.3, df=3.0),
      p=_float(0.0, 1.0, True, True), df=_float(0.0, lo_open=True)),
    C("stats.mean_interval", stats.mean_interval, lambda: dict(values=[1.0, 2.0, 4.0]),
      values=lambda v: _array1d(v)[:-1] + [("one", [1.0])], confidence=_float(0.0, 1.0, True, True)),
    C("stats.paired_test", stats.paired_test, lambda: dict(a=[1.0, 2.0, 4.0], b=[0.5, 2.5, 3.0]),
      a=_array1d, b=_array1d, confidence=_float(0.0, 1.0, True, True), alternative=_choice),
    C("stats.seed_spread", stats.seed_spread, lambda: dict(values=[1.0, 2.0]),
      values=lambda v: _array1d(v)[:-1]),
    # interpolation
    C("interpolation.mode_summary", interpolation.mode_summary, lambda: dict(x=X2, mixture=MIX2),
      x=_points(2), mixture=_mixture, k=_float(0.0, lo_open=True)),
    C("interpolation.quality_gate", interpolation.quality_gate,
      lambda: dict(summary=interpolation.mode_summary(X2, MIX2)),
      summary=lambda _: [("none", None), ("empty", {}), ("str", "summary"), ("list", [1, 2])],
      min_within=_float(0.0, 1.0), std_tol=_float(0.0, lo_open=True), weight_tol=_float(0.0, lo_open=True)),
    C("interpolation.strict_gate", interpolation.strict_gate,
      lambda: dict(summary=interpolation.mode_summary(X2, MIX2), mixture=MIX2, schedule=SCH),
      summary=lambda _: [("none", None), ("empty", {}), ("str", "summary")], mixture=_mixture,
      schedule=_schedule, variance=_choice, min_within=_float(0.0, 1.0), median_tol=_float(0.0, lo_open=True),
      mode_tol=_float(0.0, lo_open=True), weight_tol=_float(0.0, lo_open=True)),
    C("interpolation.hallucination_summary", interpolation.hallucination_summary,
      lambda: dict(x=X1, mixture=MIX1), x=_points(1), mixture=_mixture, k=_float(0.0, lo_open=True),
      z=_float(0.0, lo_open=True)),
    C("interpolation.gap_counts", interpolation.gap_counts, lambda: dict(x=X1, mixture=MIX1),
      x=_points(1), mixture=lambda m: _mixture(m) + [("2d", MIX2)], k=_float(0.0, lo_open=True)),
    C("interpolation.neighbour_pairs", interpolation.neighbour_pairs, lambda: dict(mixture=MIX2),
      mixture=_mixture, rtol=_float(0.0, 1.0, lo_open=True, hi_open=True)),
    C("interpolation.midpoint_mass", interpolation.midpoint_mass, lambda: dict(x=X2, mixture=MIX2),
      x=_points(2), mixture=_mixture, radius_sigma=_float(0.0, lo_open=True)),
    C("interpolation.segment_distance", interpolation.segment_distance,
      lambda: dict(x=X2, a=MIX2.means[:3], b=MIX2.means[1:4]),
      x=_points(2, empty=False), a=lambda a: [("none", None), ("str", "ab"), ("nan", np.where(a < 0, NAN, a)),
                                  ("cols", a[:, :1]), ("short", a[:2]), ("complex", a.astype(complex))],
      b=lambda b: [("none", None), ("inf", np.where(b < 0, INF, b)), ("same", MIX2.means[:3])], chunk=_int(1)),
    C("interpolation.off_mode_breakdown", interpolation.off_mode_breakdown, lambda: dict(x=X2, mixture=MIX2, lattice=50),
      x=_points(2), mixture=lambda m: _mixture(m) + [("1d", MIX1)], core=_float(0.0, lo_open=True),
      shoulder=_float(0.0, lo_open=True), band=_float(0.0, lo_open=True), z=_float(0.0, lo_open=True),
      lattice=_int(2)),
    C("interpolation.truncated_spread", interpolation.truncated_spread, lambda: dict(spread=0.05, k=3.0, dim=2),
      spread=_float(0.0, lo_open=True), k=_float(0.0, lo_open=True), dim=_int(1)),
    # models and networks
    C("models.timestep_embedding", models.timestep_embedding, lambda: dict(t=torch.arange(4), dim=8),
      t=lambda t: [("none", None), ("float", t.float() + 0.5), ("2d", t[None]), ("list", [1, 2]),
                   ("neg", t - 10)],
      dim=_int(2)),
    C("models.ToyMLP", models.ToyMLP, lambda: dict(dim=1, width=8, n_blocks=1),
      dim=_int(1), width=_int(1), n_blocks=_int(1), share_blocks=_bool),
    C("ToyMLP.forward", lambda x_t, t: SMALL_MLP(x_t, t), lambda: dict(x_t=X1, t=3),
      x_t=_points(1), t=lambda _: [("none", None), ("float", 1.5), ("str", "3"), ("neg", -1),
                                   ("float_tensor", torch.full((60,), 1.0)), ("short", torch.zeros(3, dtype=torch.long))]),
    C("unet.UNet", unet.UNet, lambda: dict(channels=(8, 16)),
      channels=lambda _: [("none", None), ("floats", (8.7, 16)), ("empty", ()), ("zero", (0, 16)),
                          ("str", "816"), ("odd", (7, 16)), ("bools", (True, 16))],
      in_channels=_int(1)),
    C("UNet.forward", lambda x, t: SMALL_UNET(x, t), lambda: dict(x=torch.zeros(2, 1, 16, 16), t=3),
      x=lambda x: [("none", None), ("flat", x.reshape(2, -1)), ("channels", torch.zeros(2, 3, 16, 16)),
                   ("odd", torch.zeros(2, 1, 15, 15)), ("long", x.long())],
      t=lambda _: [("none", None), ("float", 1.5), ("neg", -1)]),
    # training configs
    C("train.ToyConfig", _toy_config, lambda: dict(),
      data=_choice, means=lambda _: [("none", None), ("str", "123"), ("nan", (1.0, NAN)), ("empty", ())],
      weights=lambda _: [("none", None), ("str", "abc"), ("count", (1.0, 1.0)), ("negative", (1.0, -1.0, 1.0)),
                         ("nan", (1.0, NAN, 1.0)), ("zero", (0.0, 0.0, 0.0))],
      sigma=_float(0.0, lo_open=True), n_train=_int(1), data_seed=_int(0), width=_int(4), n_blocks=_int(1),
      share_blocks=_bool, steps=_int(1), batch_size=_int(1), lr=_float(0.0, 1.0, lo_open=True), seed=_int(0),
      T=_int(2), beta_start=_float(0.0, 1.0, True, True), beta_end=_float(0.0, 1.0, True, True),
      continue_from=_int(0, 4999), late_from=_int(0, 4999), latent_dim=_int(1, 784), precision=_choice),
    C("train.train", lambda config, **kw: train.train(config, **kw),
      lambda: dict(config=train.ToyConfig(steps=1, n_train=10, batch_size=10), progress=False),
      config=_config, device=_choice, progress=_bool, log_every=_int(1), checkpoint_every=_int(0),
      snapshots=_steps_list,
      data=lambda _: [("ndarray", np.zeros((10, 1))), ("nan", torch.full((10, 1), NAN)), ("rows", torch.zeros(3, 1)),
                      ("cols", torch.zeros(10, 2))]),
    C("train.load_or_train", lambda config, **kw: train.load_or_train(config, **kw),
      lambda: dict(config=train.ToyConfig(steps=1, n_train=10, batch_size=10), progress=False, shipped=False),
      config=_config, device=_choice, shipped=_bool, retrain=_bool, checkpoint_every=_int(0)),
    C("image_train.ShapesConfig", _shapes_config, lambda: dict(),
      resolution=lambda _: [("none", None), ("odd", 33), ("str", "32"), ("float", 32.0), ("zero", 0)],
      n_images=_int(1), data_seed=_int(0),
      channels=lambda _: [("none", None), ("floats", (8.7, 16)), ("empty", ()), ("str", "816"), ("neg", (-8, 16))],
      steps=_int(1), batch_size=_int(1), lr=_float(0.0, 1.0, lo_open=True), ema_decay=_float(0.0, 1.0, hi_open=True),
      seed=_int(0), T=_int(2), beta_start=_float(0.0, 1.0, True, True), beta_end=_float(0.0, 1.0, True, True),
      precision=_choice),
    # SIMPLE SHAPES
    C("shapes.draw_panel", shapes.draw_panel, lambda: dict(kind="square", x=3, y=10),
      kind=_choice, x=_int(1, 7), y=_int(1, 49)),
    C("shapes.simple_shapes", shapes.simple_shapes, lambda: dict(n=4, rng=np.random.default_rng(0)),
      n=_int(1), rng=lambda _: [("none", None), ("int", 0), ("torch", gen())], max_draws=_int(1)),
    C("shapes.to_model_space", shapes.to_model_space, lambda: dict(images=SHAPES_DATA.images[:2]),
      images=lambda im: [("none", None), ("str", "abc"), ("nan", np.where(im > 0.5, NAN, im).astype(np.float32)),
                         ("2d", im[0]), ("empty", im[:0]), ("complex", im.astype(complex))],
      resolution=_int(1)),
    C("shapes.to_intensity", shapes.to_intensity, lambda: dict(x=SHAPES_X[:2]),
      x=lambda x: [("none", None), ("str", "abc"), ("empty", x[:0]), ("nan", torch.full_like(x, NAN)),
                   ("complex", x.to(torch.complex64)), ("nan_array", np.full(x.shape, NAN))]),
    C("shapes.pixel_columns", shapes.pixel_columns, lambda: dict(resolution=32), resolution=_int(1, 64)),
    C("shapes.column_regions", shapes.column_regions, lambda: dict(resolution=32), resolution=_int(1, 64)),
    C("shapes.keep_column", shapes.keep_column, lambda: dict(x=SHAPES_X[:2], column=1),
      x=lambda x: [("none", None), ("flat", x.flatten(1)), ("nan", torch.full_like(x, NAN))], column=_int(0, 2)),
    C("shapes.column_ink", shapes.column_ink, lambda: dict(x=SHAPES_X[:2]),
      x=lambda x: [("none", None), ("str", "abc"), ("nan", torch.full_like(x, NAN)), ("empty", x[:0])]),
    C("shape_counter.blobs", shape_counter.blobs, lambda: dict(image=IMAGE),
      image=lambda im: [("none", None), ("nan", np.where(im > 0.5, NAN, im)), ("1d", im[0]), ("str", "abc"),
                        ("complex", im.astype(complex)), ("empty", im[:0])],
      level=_float(0.0, 1.0, True, True)),
    C("shape_counter.residual", shape_counter.residual, lambda: dict(image=IMAGE),
      image=lambda im: [("none", None), ("nan", np.where(im > 0.5, NAN, im)), ("1d", im[0])],
      level=_float(0.0, 1.0, True, True)),
    C("shape_counter.read_image", shape_counter.read_image, lambda: dict(image=IMAGE, tol=TOL),
      image=lambda im: [("none", None), ("nan", np.where(im > 0.5, NAN, im)), ("1d", im[0]),
                        ("inf", np.where(im > 0.5, INF, im))],
      tol=lambda _: [("none", None), ("dict", {}), ("str", "tol")]),
    C("shape_counter.count_shapes", shape_counter.count_shapes, lambda: dict(x=SHAPES_X[:2], tol=TOL),
      x=lambda x: [("none", None), ("nan", torch.full_like(x, NAN)), ("str", "abc")],
      tol=lambda _: [("none", None), ("dict", {})]),
    C("shape_counter.label_rates", shape_counter.label_rates,
      lambda: dict(readings=shape_counter.count_shapes(SHAPES_X[:2], TOL)),
      readings=lambda _: [("none", None), ("empty", []), ("str", "abc"), ("dicts", [{}])]),
    # digits and classifier
    C("fid.to_unit", fid.to_unit, lambda: dict(images=np.zeros((2, 28, 28), dtype=np.uint8)),
      images=lambda im: [("none", None), ("int16", np.full((2, 28, 28), 300, dtype=np.int16)),
                         ("int64_neg", np.full((2, 28, 28), -1)), ("nan", np.full((2, 28, 28), NAN)),
                         ("complex", im.astype(complex)),
                         ("empty", im[:0]), ("str", "abc"), ("shape", np.zeros((2, 27, 28), dtype=np.uint8))]),
    C("fid.ClassifierConfig", fid.ClassifierConfig, lambda: dict(),
      n_test=_int(1), steps=_int(1), batch_size=_int(1), lr=_float(0.0, 1.0, lo_open=True), seed=_int(0)),
    C("digits.DigitsPCA", digits.DigitsPCA, lambda: dict(k=4), k=_int(1, 784)),
    # recursion
    C("recursive.LoopConfig", recursive.LoopConfig, lambda: dict(base=train.ToyConfig()),
      base=_config, generations=_int(1), oversample=_float(1.0), window=_int(2, 1000), seed=_int(0),
      sample_precision=_choice),
    C("recursive.select", recursive.select, lambda: dict(arm="random", hal=torch.rand(20), n=5, generator=gen()),
      arm=_choice, hal=lambda h: [("none", None), ("ndarray", h.numpy()), ("nan", torch.full_like(h, NAN)),
                                  ("2d", h[None]), ("complex", h.to(torch.complex64))],
      n=_int(1, 20), generator=_generator),
    C("loops.paired_at", loops.paired_at,
      lambda: dict(recs=RECS, key="hallucinated", a="variance", b="random"),
      recs=lambda _: [("none", None), ("str", "abc"), ("empty", [])], key=lambda _: [("none", None), ("int", 3)],
      a=lambda _: [("none", None), ("bogus", "bogus")], generation=_int(-2, 1),
      confidence=_float(0.0, 1.0, True, True), alternative=_choice),
    # smoothing
    C("smoothing.implied_responsibility", smoothing.implied_responsibility,
      lambda: dict(x0_hat=X1, x_t=X1, t=3, mu_a=1.0, mu_b=2.0, sigma=0.05, schedule=SCH),
      x0_hat=_points(1), x_t=_points(1), t=_timestep(20), mu_a=_float(), mu_b=_float(),
      sigma=_float(0.0, lo_open=True), schedule=_schedule),
    C("smoothing.network_eps", smoothing.network_eps, lambda: dict(model=SMALL_MLP, x_t=X1, t=3),
      model=lambda _: [("none", None), ("str", "model")], x_t=_points(1),
      t=lambda _: [("none", None), ("float", 1.5), ("str", "3"), ("neg", -1), ("tensor", torch.zeros(60))]),
    # features
    C("features.segment_coordinates", features.segment_coordinates,
      lambda: dict(f=torch.randn(10, 3, generator=gen()), group_a=torch.randn(5, 3, generator=gen(1)),
                   group_b=torch.randn(5, 3, generator=gen(2)) + 3),
      f=lambda f: [("none", None), ("nan", torch.full_like(f, NAN)), ("cols", f[:, :2]), ("str", "abc")],
      group_a=lambda g: [("none", None), ("empty", g[:0]), ("complex", g.to(torch.complex64))]),
    C("features.pca_2d", features.pca_2d, lambda: dict(x=torch.randn(10, 3, generator=gen())),
      x=lambda x: [("none", None), ("nan", torch.full_like(x, NAN)), ("1d", x[:, 0]), ("one_row", x[:1]),
                   ("complex", x.to(torch.complex64))]),
    # precision, report, experiments
    C("precision.resolve", precision.resolve, lambda: dict(precision="float32"),
      precision=_choice, device=_choice),
    C("report.markdown_table", report.markdown_table, lambda: dict(headers=["a", "b"], rows=[[1, 2]]),
      headers=lambda _: [("none", None), ("str", "ab"), ("empty", [])],
      rows=lambda _: [("none", None), ("ragged", [[1]]), ("str", "ab")]),
    C("experiments.ToyModel", toy_experiment.ToyModel, lambda: dict(model=train.ToyConfig()),
      model=_config, at_steps=_steps_list, seed=_int(0, 999), n_samples=_int(1, 10_000_000),
      sample_seed=_int(0), k_label=_float(0.0, lo_open=True), k_gate=_float(0.0, lo_open=True),
      z=_float(0.0, lo_open=True), checkpoint_every=_int(1)),
]


def _calls():
    for case in CASES:
        for param, kind in case.bad.items():
            valid = case.valid()
            for label, value in kind(valid.get(param)):
                yield pytest.param(case, param, value, id=f"{case.name}-{param}-{label}")


CALLS = list(_calls())


def test_table_size():
    """The table holds at least 500 distinct bad calls (the count per module is printed)."""
    per_module: dict = {}
    for p in CALLS:
        module = p.values[0].name.split(".")[0]
        per_module[module] = per_module.get(module, 0) + 1
    print(per_module)
    assert len({p.id for p in CALLS}) == len(CALLS) >= 500


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_valid_call_succeeds(case, tmp_path, monkeypatch):
    """The table's valid call works, so each bad call below fails because of its one bad parameter."""
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    case.call(**case.valid())


@pytest.mark.parametrize("case, param, value", CALLS)
def test_bad_input_is_a_clear_error(case, param, value, tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path))
    kwargs = case.valid()
    kwargs[param] = value
    with pytest.raises((ValueError, TypeError)) as info:
        case.call(**kwargs)
    message = str(info.value)
    assert param in message or param.replace("_", " ") in message, \
        f"{type(info.value).__name__} does not name {param!r}: {message}"


# ---------------------------------------------------------------- the defect classes of the hostile-input report

def _raises(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_reported_silent_wrong_results_are_errors_or_right(tmp_path):
    # overflow on valid input
    assert 0.0 <= hallucination.chi_tail(5.0, 344) <= 1.0 and hallucination.chi_tail(5.0, 4096) == 1.0
    assert hallucination.chi_tail(1e200, 4) == 0.0
    assert 0.0 <= hallucination.true_hallucination_rate(data.GaussianMixture(np.zeros((2, 1024)), 0.1)) <= 1.0
    # shapes that broadcast
    _raises(lambda: diffusion.eps_mse_loss(lambda x, t: torch.zeros(len(x)), X1, SCH, gen()), "eps_fn")
    # edge targets: the threshold removes / keeps at least one sample
    assert detect.removal_retention(SCORES, LABELS, detect.threshold_for_removal(SCORES, LABELS, 1e-12))["n_removed"] >= 1
    assert detect.removal_retention(SCORES, LABELS, detect.threshold_for_retention(SCORES, LABELS, 1e-12))["n_retained"] >= 1
    # truthy coercion and truncation
    _raises(lambda: train.ToyConfig(share_blocks="no"), "share_blocks")
    _raises(lambda: image_train.ShapesConfig(channels=(8.7, 16)), "channels")
    _raises(lambda: detect.normalised_hal(WINDOW, SCH, [t + 0.5 for t in range(9, -1, -1)]), "timesteps")
    _raises(lambda: detect.region_hal(WINDOW, np.array([0.7, 1.2])), "regions")
    _raises(lambda: train.train(train.ToyConfig(steps=1, n_train=10, batch_size=10), progress=False, log_every=-1),
            "log_every")
    # NaN / inf accepted or hidden
    _raises(lambda: data.GaussianMixture(np.zeros((2, 1)), 0.1, [NAN, 1.0]), "weights")
    _raises(lambda: data.GaussianMixture(np.zeros((2, 1)), 0.1, [INF, 1.0]), "weights")
    for clip in (-1.0, NAN):
        _raises(lambda: diffusion.posterior_step_mean(X1, 3, torch.zeros_like(X1), SCH, clip), "clip_x0")
    nan_x = X1.clone()
    nan_x[0] = NAN
    _raises(lambda: diffusion.reverse_step(nan_x, 3, torch.zeros_like(X1), SCH, gen()), "x_t")
    _raises(lambda: diffusion.x0_from_eps(X1, 3, nan_x, SCH), "eps")
    _raises(lambda: detect.hal(torch.full((4, 3, 1), NAN)), "x0_hat")
    _raises(lambda: detect.WindowVariance(30, 2).update(torch.full((30, 2), NAN)), "values")
    _raises(lambda: shape_counter.read_image(np.full_like(IMAGE, NAN), TOL), "image")
    _raises(lambda: stats.histogram_kl(nan_x, X1, 10, 0.0, 4.0), "x")
    # complex inputs made real
    _raises(lambda: schedule.Schedule(np.full(10, 0.01, dtype=complex)), "betas")
    _raises(lambda: data.mixture_1d((1 + 1j, 2.0)), "means")
    _raises(lambda: detect.auroc(SCORES.astype(complex), LABELS), "scores")
    _raises(lambda: stats.frechet_distance(np.ones((5, 2), dtype=complex), np.ones((5, 2))), "features_a")
    # generator=None
    _raises(lambda: diffusion.reverse_step(X1, 3, torch.zeros_like(X1), SCH, None), "generator")
    _raises(lambda: recursive.select("random", torch.rand(20), 5, None), "generator")
    # wrap-around
    _raises(lambda: fid.to_unit(np.full((2, 28, 28), 300, dtype=np.int16)), "images")
    floats = tmp_path / "images.idx"
    floats.write_bytes(bytes([0, 0, 0x0D, 3]) + np.asarray((1, 28, 28), ">i4").tobytes()
                       + np.full(784, 300.7, ">f4").tobytes())
    labels = tmp_path / "labels.idx"
    digits.write_idx(labels, np.array([11]))
    _raises(lambda: digits.load_digits(floats, labels), "images_idx")
    good = tmp_path / "good.idx"
    digits.write_idx(good, np.zeros((1, 28, 28), dtype=np.uint8))
    _raises(lambda: digits.load_digits(good, labels), "labels_idx")
    _raises(lambda: digits.write_idx(tmp_path / "x.idx", np.array([300.7])), "array")
    # unvalidated knobs
    _raises(lambda: optimal.posterior_mean_check(MIX1, SCH, 3, gen(), n=100, min_count=-1), "min_count")
    _raises(lambda: optimal.measured_transition_width(MIX1, SCH, 3, pair=(1, 0)), "pair")
    _raises(lambda: optimal.measured_transition_width(MIX1, SCH, 3, pair=(1, 1)), "pair")
    _raises(lambda: optimal.ramp_width(np.linspace(1, 0, 5), np.linspace(0, 1, 5)), "x")
    _raises(lambda: optimal.ramp_width(np.linspace(0, 1, 5), np.linspace(0, 1, 4)), "r")
    model = train.train(train.ToyConfig(steps=1, n_train=10, batch_size=10, width=8, T=20), progress=False)
    _raises(lambda: recursive.draw_pool(model, 4, 0, window=30), "window")
    # empty input
    _raises(lambda: interpolation.midpoint_mass(X2[:0], MIX2), "x")
    _raises(lambda: interpolation.quality_gate({}), "summary")
    _raises(lambda: shapes.to_intensity(SHAPES_X[:0]), "x")
