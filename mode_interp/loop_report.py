"""Chapter 5's bookkeeping: the tables and named numbers of the self-consuming loops.

Every function here reads what the loops left behind (the ``recursive_arm`` records of a sweep,
:mod:`mode_interp.sweep`; the generations of a :func:`mode_interp.recursive.run_loop`; the shipped
checkpoints' ``MANIFEST.json``) and returns Markdown tables (strings, for ``IPython.display.Markdown``) and
dicts of named plain numbers, which the chapter glues in one call each
(:func:`mode_interp.report.glue_all`). Nothing is trained here except where a function says so.

* :func:`load_sweep`: a sweep's loop, seeds and records (:class:`LoopSweep`);
* :func:`loop_numbers`: the loop's sizes, seeds and CPU cost;
* :func:`generation_table` / :func:`digits_table`: the per-generation tables across seeds;
* :func:`generation0_gates`: chapter 2's quality gate of every replicate's generation 0;
* :func:`comparison_table`: the paired-by-seed tests of the arms (:mod:`mode_interp.stats`);
* :func:`replicate_tables`: those three tables of one loop together;
* :func:`removal_table`: what the variance filter removes, and at what precision;
* :func:`oversampling_table`: a larger oversampling factor, paired by seed with the smaller one;
* :func:`recorded_train_seconds`, :func:`grid_cost`, :func:`grid_table`: the paper-scale 2-D grid loop;
* :func:`digits_baseline`, :func:`digit_preview`: the digits loop's reference distances and samples;
* :func:`describe_sweep_calls`, :func:`run_sweep_command`: how the records were made.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validate import check_bool, check_float, check_instance, check_int
from .experiments import loops
from .experiments.records import load_index
from .recursive import ARMS, LoopConfig
from .report import markdown_table

ARM_NAMES = {"none": "no filter", "variance": "variance filter (Hal)", "random": "random filter"}
STATS = ("mean", "lo", "hi", "p_one_sided", "p_sign_flip")     # the numbers kept of each paired test
METRIC_NAMES = {"hallucinated": "hallucinated shares", "fd": "Fréchet distances", "spread": "mode spreads / σ"}


def _nanmean(values) -> float:
    """Mean over the finite entries (NaN, without a warning, when there is none)."""
    values = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(values)) if values.size else math.nan


def _check_confidence(confidence) -> float:
    return check_float("confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True)


def _check_alpha(alpha) -> float:
    return check_float("alpha", alpha, 0.0, 1.0, lo_open=True, hi_open=True)


# ---------------------------------------------------------------- a sweep's records

@dataclass(frozen=True)
class LoopSweep:
    """The records of a ``recursive_arm`` sweep: its ``name`` (the results folder), the replicate-0
    ``loop``, the grid's ``seeds`` and ``arms`` (the spec's fixed arm when the grid has none) and the
    ``records`` (one per task, in task order)."""

    name: str
    loop: LoopConfig
    seeds: tuple
    arms: tuple
    records: list

    @property
    def complete(self) -> bool:
        """Every (seed, arm) of the grid has exactly one record, and no record is outside the grid."""
        found = sorted((r["spec"]["seed"], r["spec"]["arm"]) for r in self.records)
        return found == sorted((s, a) for s in self.seeds for a in self.arms)

    def by_arm(self, key: str) -> dict:
        """:func:`mode_interp.experiments.loops.by_arm` of the records."""
        return loops.by_arm(self.records, key)


def load_sweep(sweep, compute: bool = False, directory=None) -> LoopSweep:
    """The records of the ``recursive_arm`` sweep ``sweep`` (a sweep file path or a checked sweep dict),
    found in ``directory`` / the shipped results or, with ``compute``, computed where missing
    (:func:`mode_interp.sweep.sweep_records`)."""
    from . import sweep as sweeps

    compute = check_bool("compute", compute)
    if isinstance(sweep, (str, Path)):
        sweep = sweeps.read_spec(sweep)
    check_instance("sweep", sweep, dict, " (a sweep file path or sweep.read_spec(...))")
    sweep = sweeps.check_sweep(sweep)
    if sweep["experiment"] != "recursive_arm":
        raise ValueError(f"sweep must be a 'recursive_arm' sweep, got experiment {sweep['experiment']!r}")
    if "loop" not in sweep["spec"]:
        raise ValueError("sweep['spec'] must hold the 'loop' of the recursive_arm experiment")
    grid = sweep["grid"]
    seeds = tuple(grid.get("seed", [sweep["spec"].get("seed", 0)]))
    arms = tuple(grid.get("arm", [sweep["spec"].get("arm")]))
    if any(a not in ARMS for a in arms):
        raise ValueError(f"sweep: arms must be names from {ARMS}, got {list(arms)}")
    records = sweeps.sweep_records(sweep, compute=compute, directory=directory)
    return LoopSweep(sweep["name"], loops.loop_from_dict(sweep["spec"]["loop"]), seeds, arms, records)


def _check_sweep(name: str, s) -> LoopSweep:
    return check_instance(name, s, LoopSweep, " (from load_sweep)")


def loop_numbers(s: LoopSweep) -> dict:
    """The loop's sizes: ``n`` (data per generation), ``pool`` (samples drawn), ``generations``,
    ``last_gen``, ``n_seeds``, ``oversample``, ``removed_share`` (1 - 1/oversample: what a filter drops),
    ``steps`` / ``width`` / ``batch`` / ``T`` of the recipe, ``models_per_seed`` (generation 0 shared by the
    three arms), ``signflip_floor`` (2^-n_seeds, the smallest exact sign-flip p-value), for a Gaussian
    mixture ``true_one_in`` (1 / the true mixture's own rate beyond the records' ``k_label``,
    :func:`mode_interp.hallucination.true_hallucination_rate`), and from the shipped index, when there is one,
    ``cpu_h`` (CPU hours) and ``cpu_min_per_model``."""
    from .hallucination import true_hallucination_rate

    s = _check_sweep("s", s)
    loop, base = s.loop, s.loop.base
    out = {"n": loop.n, "pool": loop.n_pool, "generations": loop.generations, "last_gen": loop.generations - 1,
           "n_seeds": len(s.seeds), "oversample": loop.oversample, "removed_share": 1 - 1 / loop.oversample,
           "steps": base.steps, "width": base.width, "batch": base.batch_size, "T": base.T,
           "models_per_seed": 1 + len(s.arms) * (loop.generations - 1), "signflip_floor": 2.0 ** -len(s.seeds)}
    if base.data != "digits_pca":
        out["true_one_in"] = 1 / true_hallucination_rate(base.mixture(), s.records[0]["spec"].get("k_label", 5.0))
    try:
        cpu_h = load_index(s.name)["totals"]["cpu_hours"]
    except FileNotFoundError:
        return out
    return out | {"cpu_h": cpu_h, "cpu_min_per_model": cpu_h * 60 / (len(s.seeds) * out["models_per_seed"])}


def _strict_gate(config: LoopConfig, pool) -> dict:
    """Chapter 2's gate (:func:`mode_interp.interpolation.strict_gate`) on a pool of ``config``'s loop."""
    from .interpolation import mode_summary, strict_gate

    mixture = config.base.mixture()
    return strict_gate(mode_summary(pool, mixture), mixture, config.base.schedule())


def generation0_gates(s: LoopSweep, compute: bool = False) -> tuple:
    """Chapter 2's quality gate (:func:`mode_interp.interpolation.strict_gate`) of every replicate's
    generation 0, measured on its pool (the samples all three arms start from): ``(markdown, numbers)``.

    Generation 0's record is loaded from the cache or the shipped checkpoints; with ``compute`` it is
    trained and sampled where missing (else a missing one raises ``FileNotFoundError``). Columns: seed,
    share within 3 sigma, the median and worst mode spread / the exact chain's, the worst weight / w_k,
    verdict. Numbers: ``gate0_n_passed`` (seeds), ``gate0_passed`` (that as "k of n"), ``gate0_all``,
    ``gate0_median_lo`` / ``gate0_median_hi`` (the median spread ratio's range over the seeds) and
    ``gate0_failed`` (the checks that failed in at least one seed, in words, or "none")."""
    from dataclasses import replace

    from .recursive import run_loop

    s, compute = _check_sweep("s", s), check_bool("compute", compute)
    if s.loop.base.data == "digits_pca":
        raise ValueError("generation0_gates needs a Gaussian-mixture loop (the gate compares modes), got "
                         "data 'digits_pca'")
    rows, gates = [], []
    for seed in s.seeds:
        config = replace(loops.replicate(s.loop, seed), generations=1)
        gens = run_loop(config, arms=("none",), progress=False, compute=compute)["none"]
        if not gens:
            raise FileNotFoundError(f"generation 0 of replicate {seed} of {s.name!r} is neither cached nor "
                                    "shipped (compute=True trains it)")
        gate = _strict_gate(config, gens[0].pool)
        gates.append(gate)
        rows.append([seed, f"{gate['within']:.1%}", f"{gate['median_spread_ratio']:.2f}",
                     f"{gate['worst_spread_ratio']:.2f}", f"{gate['worst_weight_ratio']:.2f}",
                     "passes" if gate["passed"] else "fails"])
    table = markdown_table(["seed", "within 3σ", "median spread / exact chain's", "worst mode's spread / exact chain's",
                            "worst weight / w_k", "gate"], rows)
    medians = [g["median_spread_ratio"] for g in gates]
    failed = sorted({name for g in gates for name, ok in g["checks"].items() if not ok})
    n_passed = sum(g["passed"] for g in gates)
    return table, {"gate0_n_passed": n_passed, "gate0_passed": f"{n_passed} of {len(gates)}",
                   "gate0_all": n_passed == len(gates),
                   "gate0_median_lo": min(medians), "gate0_median_hi": max(medians),
                   "gate0_failed": "; ".join(failed) if failed else "none"}


def describe_sweep_calls(name) -> str:
    """The shipped index of sweep ``name`` in words: its records, CPU hours and every call that made it
    (command, wall seconds, engine, start)."""
    index = load_index(name)
    lines = [f"{index['name']}: {index['totals']['done']} records, {index['totals']['cpu_hours']:.2f} CPU hours of "
             "training and sampling (generation 0 counted once per seed); made by:"]
    lines += [f"  {c['command']}  ({c.get('wall_seconds', 0):,.0f} s wall, {c['engine']}, {c['started']})"
              for c in index["calls"]]
    return "\n".join(lines)


# ---------------------------------------------------------------- tables across seeds

def _range_cell(values, fmt: str) -> str:
    """``mean [lowest – highest]`` of per-seed values."""
    return f"{values.mean():{fmt}} [{values.min():{fmt}} – {values.max():{fmt}}]"


def generation_table(s: LoopSweep) -> tuple:
    """The Gaussian-mixture loop per arm and generation across seeds: ``(markdown, numbers)``. Columns:
    the hallucinated share (mean [lowest – highest seed]), how many seeds pass the records' *loose* check
    (:func:`mode_interp.interpolation.quality_gate`: >= 90% within 3 sigma, every spread within 1 +- 0.3
    sigma, weights within 50% of 1/K; weaker than chapter 2's gate, which :func:`generation0_gates`
    applies), the mean mode spread / sigma. Numbers: ``first`` (generation 0's mean hallucinated share),
    ``last_<arm>`` (the last generation's), ``loose0_all`` (generation 0 passes the loose check in every
    seed) and ``loose`` (that in words, with how many later generations fail it)."""
    s = _check_sweep("s", s)
    h, gate, spread = s.by_arm("hallucinated"), s.by_arm("gate"), s.by_arm("spread")
    rows = [[ARM_NAMES[arm], g, _range_cell(h[arm][1][:, g], ".2%"),
             f"{int(gate[arm][1][:, g].sum())} of {len(gate[arm][0])}", f"{spread[arm][1][:, g].mean():.2f}"]
            for arm in h for g in range(h[arm][1].shape[1])]
    table = markdown_table(["arm", "generation", "hallucinated, mean [lowest – highest seed]", "loose check passed",
                            "spread / σ"], rows)
    first_arm = next(iter(h))                                  # generation 0 is shared by the arms
    gate0 = gate[first_arm][1][:, 0]
    later = np.concatenate([v[:, 1:].ravel() for _, v in gate.values()])
    loose = ("generation 0 passes it in every seed" if gate0.all() else
             f"generation 0 FAILS it in {int((gate0 == 0).sum())} seed(s)")
    numbers = {"first": h[first_arm][1][:, 0].mean(), "loose0_all": bool(gate0.all()),
               "loose": loose + f"; {int((later == 0).sum())} of the {len(later)} later generations (all seeds and "
                                "arms) fail it"}
    numbers |= {f"last_{arm}": v[:, -1].mean() for arm, (_, v) in h.items()}
    return table, numbers


def _verdict(significant: dict) -> str:
    """The last generation's variance arm against the two others, in words (``significant[name]``: the
    one-sided sign-flip test of that comparison is below alpha)."""
    none, rand = significant["variance − no filter"], significant["variance − random"]
    if none and rand:
        return "the variance filter's last generation is lower than both other arms' across seeds"
    if none:
        return ("the variance filter's last generation is lower than no filter's, but **not** significantly lower "
                "than the random filter's")
    if rand:
        return ("the variance filter's last generation is lower than the random filter's, but **not** significantly "
                "lower than no filter's")
    return "the variance filter's last generation is **not** significantly lower than either other arm's"


def paired_numbers(tests: dict) -> dict:
    """``{name_<stat>: value}`` for each paired test (:func:`mode_interp.stats.paired_test`) in ``tests``:
    its mean difference, interval, one-sided t and sign-flip p-values, and ``name_agree`` ("k of n": seeds in
    the tested direction)."""
    check_instance("tests", tests, dict)
    out = {}
    for name, p in tests.items():
        out |= {f"{name}_{stat}": p[stat] for stat in STATS}
        out[f"{name}_agree"] = f"{p['n_agree']} of {p['n']}"
    return out


def comparison_table(s: LoopSweep, key: str = "hallucinated", kept_key: str = "kept_hallucinated",
                     number_format: str = "+.2%", confidence: float = 0.95, alpha: float = 0.05) -> tuple:
    """The arms compared paired by seed on metric ``key``: ``(markdown, numbers)``.

    Rows: at the last generation variance − no filter (``var_none``), variance − random (``var_random``),
    random − no filter (``random_none``, the null yardstick), all one-sided H1 < 0
    (:func:`mode_interp.experiments.loops.compare_arms`); the no-filter arm's last generation − its
    generation 0 (``growth``, H1 > 0); and ``kept_key`` of the data generation 0 hands on, variance −
    random (``handed``, H1 < 0). Numbers: :func:`paired_numbers` of each, and ``verdict`` (the variance arm
    at the last generation in words, each comparison decided by its sign-flip p < ``alpha``)."""
    s = _check_sweep("s", s)
    confidence, alpha = _check_confidence(confidence), _check_alpha(alpha)
    for name, value in (("key", key), ("kept_key", kept_key), ("number_format", number_format)):
        check_instance(name, value, str)
    compared = loops.compare_arms(s.records, key, -1, confidence)
    tests = dict(zip(("var_none", "var_random", "random_none"), compared.values()))
    tests["growth"] = loops.growth(s.records, "none", key, confidence)
    tests["handed"] = loops.paired_at(s.records, kept_key, "variance", "random", 0, confidence)
    labels = [f"last generation: {name}" for name in compared] + [
        "no filter: last generation − generation 0 (growth)", "data handed on by generation 0: variance − random"]
    rows = [[label, f"{p['mean']:{number_format}} [{p['lo']:{number_format}}, {p['hi']:{number_format}}]",
             f"{p['p_one_sided']:.3f}", f"{p['p_sign_flip']:.3f}", f"{p['n_agree']} of {p['n']}"]
            for label, p in zip(labels, tests.values())]
    table = markdown_table([f"comparison of {METRIC_NAMES.get(key, key)} (paired by seed)",
                            f"mean difference [{confidence:.0%} interval]", "one-sided t-test p", "sign-flip p",
                            "seeds in the tested direction"], rows)
    verdict = _verdict({name: p["p_sign_flip"] < alpha for name, p in compared.items()})
    return table, paired_numbers(tests) | {"verdict": verdict}


def replicate_tables(s: LoopSweep, confidence: float = 0.95, alpha: float = 0.05, compute: bool = False) -> tuple:
    """A Gaussian-mixture loop across seeds, as one section shows it: ``(tables, numbers)``. ``tables``:
    ``generations`` (:func:`generation_table`), ``gate0`` (:func:`generation0_gates`; ``compute`` as there)
    and ``comparison`` (:func:`comparison_table` of the hallucinated shares, the data handed on by
    generation 0 as ``kept_hallucinated``); ``numbers``: all three's numbers in one dict (their names do
    not overlap)."""
    generations, numbers = generation_table(s)
    gate0, gate_numbers = generation0_gates(s, compute)
    comparison, compared = comparison_table(s, "hallucinated", "kept_hallucinated", "+.2%", confidence, alpha)
    return ({"generations": generations, "gate0": gate0, "comparison": comparison},
            numbers | gate_numbers | compared)


def removal_table(s: LoopSweep) -> tuple:
    """What the filters drop, per generation (means over seeds): ``(markdown, numbers)``. Columns: the
    share of the pool's hallucinations the variance filter removes (recall) and the random filter removes,
    the share of what the variance filter drops that is hallucinated (precision), and a perfect filter's
    precision at the same budget (min(1, hallucinated share / (1 - 1/oversample))). Numbers:
    ``removed_g0_mean``, ``removed_g0_text`` (per seed, with the pool's hallucination count),
    ``removed_g0_pooled`` (removed of held, over every seed), ``removed_g0_n_seeds`` (seeds whose pool holds a
    hallucination), ``removed_g0_beats_random`` (at generation 0 the variance filter removes more than the
    random one in every such seed; False when no pool holds one), ``precision_g0``, ``ceiling_g0`` and ``random_removed_mean`` (over all generations)."""
    s = _check_sweep("s", s)
    removed, precision = s.by_arm("hallucinated_removed"), s.by_arm("removed_precision")
    for arm in ("variance", "random"):
        if arm not in removed:
            raise ValueError(f"s holds no records of the {arm!r} arm")
    seeds, var_removed = removed["variance"]
    rnd_removed, var_precision = removed["random"][1], precision["variance"][1]
    counts = s.by_arm("count")["variance"][1]
    ceiling = np.minimum(1.0, s.by_arm("hallucinated")["variance"][1] / (1 - 1 / s.loop.oversample))
    rows = [[g, f"{_nanmean(var_removed[:, g]):.0%}", f"{_nanmean(rnd_removed[:, g]):.1%}",
             f"{_nanmean(var_precision[:, g]):.1%}", f"{ceiling[:, g].mean():.1%}"] for g in range(var_removed.shape[1])]
    table = markdown_table(["generation", "variance filter: hallucinations removed", "random filter: removed",
                            "variance filter: precision of what it drops",
                            "a perfect filter's precision at this budget"], rows)
    rnd_seeds = removed["random"][0]
    rnd0 = np.array([rnd_removed[rnd_seeds.index(seed), 0] if seed in rnd_seeds else math.nan for seed in seeds])
    held = counts[:, 0] > 0                       # a pool without hallucinations has nothing to remove
    numbers = {"removed_g0_mean": _nanmean(var_removed[:, 0]),
               "removed_g0_text": ", ".join(f"seed {seed}: {v:.0%} of {int(n)}" if n else f"seed {seed}: none in its pool"
                                            for seed, v, n in zip(seeds, var_removed[:, 0], counts[:, 0])),
               "removed_g0_pooled": f"{int(round(np.nansum(var_removed[:, 0] * counts[:, 0])))} of {int(counts[:, 0].sum())}",
               "removed_g0_n_seeds": int(held.sum()),
               "removed_g0_beats_random": bool(held.any() and (var_removed[held, 0] > rnd0[held]).all()),
               "precision_g0": _nanmean(var_precision[:, 0]), "ceiling_g0": ceiling[:, 0].mean(),
               "random_removed_mean": _nanmean(rnd_removed)}
    return table, numbers


def oversampling_table(small: LoopSweep, large: LoopSweep, confidence: float = 0.95) -> tuple:
    """The variance arm at two oversampling factors, on the seeds both sweeps have: ``(markdown,
    numbers)``. Columns per factor and generation (means over seeds): the hallucinated share, the data
    passed on (hallucinated share, mode spread / sigma), the share of the pool's hallucinations removed
    and the precision of what is dropped. Numbers: ``rho_large_*`` (last generation's hallucinated share,
    large − small, paired by seed, one-sided H1 < 0) and ``rho_spread_*`` (the same for the spread of the
    data passed on), see :func:`paired_numbers`; ``1d_large_last``, ``spread_small``, ``spread_large``,
    ``precision_large`` (over every generation and seed of the large factor), ``large_oversample`` and
    ``large_removed_share``."""
    from .stats import paired_test

    small, large = _check_sweep("small", small), _check_sweep("large", large)
    confidence = _check_confidence(confidence)
    if small.loop.base != large.loop.base:
        raise ValueError("small and large must run the same recipe (loop.base) to be paired by seed")
    variance = lambda s: {r["spec"]["seed"]: r["result"]["rows"] for r in s.records if r["spec"]["arm"] == "variance"}  # noqa: E731
    by_rho = {small.loop.oversample: variance(small), large.loop.oversample: variance(large)}
    seeds = sorted(set.intersection(*(set(v) for v in by_rho.values())))
    if len(seeds) < 2:
        raise ValueError(f"small and large share {len(seeds)} seed(s) of the variance arm; pairing needs >= 2")
    generations = min(len(rows) for v in by_rho.values() for rows in v.values())
    col = lambda rho, g, key: [by_rho[rho][seed][g][key] for seed in seeds]  # noqa: E731
    rows = [[f"ρ = {rho}", g, f"{np.mean(col(rho, g, 'hallucinated')):.2%}",
             f"{np.mean(col(rho, g, 'kept_hallucinated')):.2%}", f"{np.mean(col(rho, g, 'kept_spread')):.3f}",
             f"{_nanmean(col(rho, g, 'hallucinated_removed')):.0%}", f"{_nanmean(col(rho, g, 'removed_precision')):.1%}"]
            for rho in by_rho for g in range(generations)]
    table = markdown_table(["oversampling", "generation", f"hallucinated (mean of {len(seeds)} seeds)",
                            "data passed on: hallucinated", "data passed on: mode spread / σ", "removed",
                            "precision of what it drops"], rows)
    last = lambda rho, key: np.array([by_rho[rho][seed][-1][key] for seed in seeds])  # noqa: E731
    lo_rho, hi_rho = small.loop.oversample, large.loop.oversample
    tests = {"rho_large": paired_test(last(hi_rho, "hallucinated"), last(lo_rho, "hallucinated"), confidence),
             "rho_spread": paired_test(last(hi_rho, "kept_spread"), last(lo_rho, "kept_spread"), confidence)}
    numbers = paired_numbers(tests) | {
        "1d_large_last": last(hi_rho, "hallucinated").mean(), "spread_small": last(lo_rho, "kept_spread").mean(),
        "spread_large": last(hi_rho, "kept_spread").mean(),
        "precision_large": _nanmean([row["removed_precision"] for rows in by_rho[hi_rho].values()
                                     for row in rows[:small.loop.generations]]),
        "large_oversample": hi_rho, "large_removed_share": 1 - 1 / hi_rho}
    return table, numbers


def recipe_table(short: LoopSweep, long: LoopSweep, confidence: float = 0.95) -> tuple:
    """The same loop under two training recipes (``short`` and ``long``: the same data, loop, seeds and
    arms, only the training of each generation differs), paired by seed: ``(markdown, numbers)``. Replicate
    s of both draws the same real data set, so the pairing isolates the recipe. Columns per arm and
    generation (means over the shared seeds): the hallucinated share and the mode spread / sigma under
    each recipe. Numbers per arm at the last generation, long − short paired by seed (one-sided H1 < 0,
    :func:`paired_numbers`): ``recipe_<arm>_*`` (hallucinated share) and ``recipe_spread_<arm>_*`` (mode
    spread / sigma: H1 is *narrower*, which is closer to the truth only where the short recipe's spread
    exceeds 1); ``short_steps``, ``long_steps``, ``recipe_n_seeds`` (the fewest seeds an arm pairs). Raises
    ValueError unless the loops differ in their training recipe only and ``short`` trains fewer steps."""
    from .stats import paired_test

    short, long = _check_sweep("short", short), _check_sweep("long", long)
    confidence = _check_confidence(confidence)
    data_fields = ("data", "means", "sigma", "n_train", "data_seed", "weights")
    differs = [f for f in data_fields if getattr(short.loop.base, f, None) != getattr(long.loop.base, f, None)]
    loop_s, loop_l = ({k: v for k, v in x.loop.to_dict().items() if k != "base"} for x in (short, long))
    differs += [k for k in sorted(loop_s.keys() | loop_l.keys()) if loop_s.get(k) != loop_l.get(k)]
    if differs:
        raise ValueError(f"short and long must run the same data and loop (only the training recipe may differ); "
                         f"they differ in {differs}")
    if short.loop.base.steps >= long.loop.base.steps:
        raise ValueError(f"short must train fewer steps per generation than long, got {short.loop.base.steps:,} "
                         f"and {long.loop.base.steps:,}")
    per = {name: {key: s.by_arm(key) for key in ("hallucinated", "spread")} for name, s in (("short", short), ("long", long))}
    arms = [arm for arm in per["short"]["hallucinated"] if arm in per["long"]["hallucinated"]]
    if not arms:
        raise ValueError("short and long share no arm")
    rows, numbers = [], {}
    for arm in arms:
        (seeds_s, _), (seeds_l, _) = per["short"]["hallucinated"][arm], per["long"]["hallucinated"][arm]
        seeds = sorted(set(seeds_s) & set(seeds_l))
        if len(seeds) < 2:
            raise ValueError(f"arm {arm!r}: short and long share {len(seeds)} seed(s); pairing needs >= 2")
        pick = lambda name, key: per[name][key][arm][1][[per[name][key][arm][0].index(s) for s in seeds]]  # noqa: E731
        h = {name: pick(name, "hallucinated") for name in per}
        spread = {name: pick(name, "spread") for name in per}
        rows += [[ARM_NAMES[arm], g, f"{h['short'][:, g].mean():.2%}", f"{h['long'][:, g].mean():.2%}",
                  f"{spread['short'][:, g].mean():.2f}", f"{spread['long'][:, g].mean():.2f}"]
                 for g in range(min(h["short"].shape[1], h["long"].shape[1]))]
        numbers |= paired_numbers({f"recipe_{arm}": paired_test(h["long"][:, -1], h["short"][:, -1], confidence),
                                   f"recipe_spread_{arm}": paired_test(spread["long"][:, -1], spread["short"][:, -1],
                                                                       confidence)})
        numbers["recipe_n_seeds"] = min(len(seeds), numbers.get("recipe_n_seeds", len(seeds)))
    steps = {name: f"{s.loop.base.steps:,} steps" for name, s in (("short", short), ("long", long))}
    table = markdown_table(["arm", "generation", f"hallucinated, {steps['short']}", f"hallucinated, {steps['long']}",
                            f"spread / σ, {steps['short']}", f"spread / σ, {steps['long']}"], rows)
    return table, numbers | {"short_steps": short.loop.base.steps, "long_steps": long.loop.base.steps}


def recipe_tables(s: LoopSweep, short: LoopSweep, confidence: float = 0.95, alpha: float = 0.05,
                  compute: bool = False) -> tuple:
    """A loop and the same loop under a shorter training recipe, as one section shows them: ``(tables,
    numbers)``. :func:`replicate_tables` of each, its tables and numbers prefixed ``main_`` (``s``) and
    ``short_`` (``short``); :func:`comparison_table` of ``s``'s mode spreads (a filter that lowers the
    hallucinated share may narrow the modes) as table ``main_spread`` with numbers ``main_spread_*``; and
    :func:`recipe_table` (``short`` against ``s``) as table ``recipe`` with its numbers unprefixed."""
    tables, numbers = {}, {}
    for prefix, loop in (("main", s), ("short", short)):
        t, n = replicate_tables(loop, confidence, alpha, compute)
        tables |= {f"{prefix}_{name}": v for name, v in t.items()}
        numbers |= {f"{prefix}_{name}": v for name, v in n.items()}
    spread, spread_numbers = comparison_table(s, "spread", "kept_spread", "+.3f", confidence, alpha)
    table, compared = recipe_table(short, s, confidence)
    spread_numbers = {f"main_spread_{k}": v for k, v in spread_numbers.items()}
    if (numbers.keys() & compared.keys()) or (numbers.keys() & spread_numbers.keys()):
        raise RuntimeError("recipe_tables: two of its parts name a number alike")       # a bug, not bad input
    return tables | {"main_spread": spread, "recipe": table}, numbers | spread_numbers | compared


# ---------------------------------------------------------------- the paper-scale 2-D grid loop

def recorded_train_seconds(config, folder=None) -> float:
    """The training seconds that ``folder``'s ``MANIFEST.json`` (default: the shipped checkpoints) records
    for ``config`` and every config it continues from (:meth:`mode_interp.train.ToyConfig.parent`): the
    cost of training that recipe from scratch. A ValueError when an entry of the chain is missing."""
    from .train import SHIPPED_DIR, ToyConfig

    check_instance("config", config, ToyConfig)
    path = Path(SHIPPED_DIR if folder is None else folder) / "MANIFEST.json"
    if not path.is_file():
        raise ValueError(f"folder must hold a MANIFEST.json, {path} does not exist")
    seconds = {}
    for entry in json.loads(path.read_text()):
        try:
            seconds[ToyConfig.from_dict(entry["config"])] = float(entry["train_seconds"])
        except (KeyError, TypeError, ValueError):
            continue                    # an image model's entry, or one without a time
    total, c = 0.0, config
    while c is not None:
        if c not in seconds:
            raise ValueError(f"{path} records no training time for {c.to_dict()}")
        total, c = total + seconds[c], c.parent()
    return total


def grid_cost(loop: LoopConfig, n_probe: int = 2_000, threads: int = 1, folder=None) -> dict:
    """What the whole loop costs on this machine: generation 0's model is loaded (trained if missing) and
    ``n_probe`` samples with Hal are timed. Numbers: ``grid_steps`` (Adam steps per generation),
    ``grid_train_h`` (recorded training hours of one generation, :func:`recorded_train_seconds`),
    ``grid_rate`` (samples per second now), ``grid_n_models`` (models after generation 0),
    ``grid_estimate_h`` (CPU hours of every model and pool), ``grid_threads`` (as given)."""
    from .detect import WindowVariance
    from .train import load_or_train

    check_instance("loop", loop, LoopConfig)
    n_probe, threads = check_int("n_probe", n_probe, 1, None), check_int("threads", threads, 1, None)
    train_s = recorded_train_seconds(loop.base, folder)
    model = load_or_train(loop.base, progress=False)
    start = time.perf_counter()
    model.sample(n_probe, seed=1, observer=WindowVariance(n_probe, loop.base.dim, loop.window))
    rate = n_probe / (time.perf_counter() - start)
    n_models = len(ARMS) * (loop.generations - 1)
    return {"grid_steps": loop.base.steps, "grid_train_h": train_s / 3600, "grid_rate": rate,
            "grid_n_models": n_models, "grid_threads": threads,
            "grid_estimate_h": (n_models * train_s + (1 + n_models) * loop.n_pool / rate) / 3600}


def grid_table(config: LoopConfig, loop: dict, k_label: float = 5.0, z: float = 3.29) -> tuple:
    """The generations of one seed of a Gaussian-mixture loop (``loop`` from
    :func:`mode_interp.recursive.run_loop`, possibly partly finished): ``(markdown or None, numbers,
    rows)``, ``rows`` from :func:`mode_interp.experiments.loops.loop_rows`. Columns: the hallucinated share
    with its Wilson interval at ``z``, mode spread, the records' loose check (:func:`generation_table`), the
    pool's hallucinations removed, the data passed on, the histogram KL and where each model came from.
    Numbers: ``grid_done`` (generations per arm), ``grid_generations``, ``grid_state``, once generation 0
    exists chapter 2's gate on its pool (``grid_gate0_passed``, ``grid_gate0_median``: the median mode
    spread / the exact chain's, ``grid_gate0_within``), ``grid_verdict`` (the last generation of each arm and the
    drift between the two unfiltered arms as a two-proportion z, once every arm is complete; with then
    ``grid_last_<arm>`` and ``grid_z_drift``) and ``grid_cost_note`` (whether the records' stored training
    seconds cover every step)."""
    from .experiments.loops import kl_grid
    from .stats import two_proportion_z

    check_instance("config", config, LoopConfig)
    check_instance("loop", loop, dict, " ({arm: [Generation, ...]} from run_loop)")
    if not loop or any(arm not in ARMS for arm in loop):
        raise ValueError(f"loop must map arms from {ARMS} to their generations, got keys {list(loop)}")
    done = {arm: len(gens) for arm, gens in loop.items()}
    complete = all(n == config.generations for n in done.values())
    numbers = {"grid_done": ", ".join(f"{ARM_NAMES[a]} {n}" for a, n in done.items()),
               "grid_generations": config.generations, "grid_state": "complete" if complete else "not yet complete"}
    rows, table = [], None
    if any(done.values()):
        rows = loops.loop_rows(config, loop, k_label, z)
        bins = kl_grid(config.base.mixture())[0]
        sources = [gen.model.source for gens in loop.values() for gen in gens]
        gate = _strict_gate(config, next(gens[0] for gens in loop.values() if gens).pool)
        numbers |= {"grid_gate0_passed": gate["passed"], "grid_gate0_median": gate["median_spread_ratio"],
                    "grid_gate0_within": gate["within"]}
        table = markdown_table(
            ["arm", "generation", "model's samples: hallucinated (99.9% interval)", "mode spread / σ", "loose check",
             "pool hallucinations removed", "data passed on: hallucinated",
             f"KL(true ‖ samples), {bins}{'²' if config.base.dim == 2 else ''} bins", "model source"],
            [[ARM_NAMES[r["arm"]], r["generation"],
              f"{r['hallucinated']:.2%} [{r['hallucinated_lo']:.2%}, {r['hallucinated_hi']:.2%}] ({r['count']:,})",
              f"{r['spread']:.2f}", "pass" if r["gate"] else "fail",
              "–" if math.isnan(r["hallucinated_removed"]) else f"{r['hallucinated_removed']:.0%}",
              f"{r['kept_hallucinated']:.2%}", f"{r['kl']:.4f}", source] for r, source in zip(rows, sources)])
    numbers["grid_verdict"] = "the run is not complete, so the arms are not compared yet"
    if complete and {"none", "random", "variance"} <= set(loop):
        last = {r["arm"]: r for r in rows if r["generation"] == config.generations - 1}
        drift = abs(two_proportion_z(last["random"]["count"], last["random"]["n_pool"],
                                     last["none"]["count"], last["none"]["n_pool"]))
        numbers |= {f"grid_last_{arm}": r["hallucinated"] for arm, r in last.items()} | {"grid_z_drift": drift}
        numbers["grid_verdict"] = (
            f"at generation {config.generations - 1} the variance-filtered arm's samples are "
            f"{last['variance']['hallucinated']:.2%} hallucinated, against {last['none']['hallucinated']:.2%} without a "
            f"filter and {last['random']['hallucinated']:.2%} with a random filter ({last['variance']['n_pool']:,} "
            f"samples each, **one seed**). The no-filter and random arms, identical in expectation, differ by z = "
            f"{drift:.1f} in a two-proportion test: one seed's binomial intervals ignore the drift between runs, so "
            "this ordering is shown, not claimed, until the loop is replicated")
    # records written before train() counted an uncached parent's steps store only the continuation's
    # seconds, and their loss curves (one value per 100 steps) are that short too
    base = config.base
    short = [g for gens in loop.values() for g in gens if g.generation and len(g.model.losses) < base.steps // 100]
    numbers["grid_cost_note"] = (
        f"{len(short)} of the later generations' records were written before the package counted the "
        f"{base.late_from:,} steps a later generation trains before its step decay, so their stored training seconds "
        f"cover only the last {base.steps - base.late_from:,} steps; the wall times of the calls listed above are "
        "the full cost." if short else "Their stored training seconds cover every step.")
    return table, numbers, rows


# ---------------------------------------------------------------- the digits loop

def _real_digit_sets(n_fid: int, loop_seed: int):
    """Two disjoint sets of ``n_fid`` shipped digits (uint8 images), in the order the records' reference
    uses (:func:`mode_interp.experiments.loops.digit_scores`)."""
    from .digits import load_digits

    images, _ = load_digits()
    if 2 * n_fid > len(images):
        raise ValueError(f"n_fid={n_fid}: two disjoint sets need {2 * n_fid} digits, {len(images)} are shipped")
    order = np.random.default_rng(10_000 + loop_seed).permutation(len(images))
    return images[order[:n_fid]], images[order[n_fid:2 * n_fid]]


def digits_baseline(s: LoopSweep, loop_seed: int = 0) -> dict:
    """The digits loop's yardsticks (trains the digit classifier if it is not cached): ``latent_dim``,
    ``n_fid``, ``pca_explained`` (pixel variance the decoder keeps), ``clf_accuracy`` (held-out),
    ``fd_real`` (two disjoint sets of decoded real digits: the floor), ``fd_raw_real`` (the same sets, raw),
    ``fd_decoder`` (real digits against the same digits decoded), ``confident_real`` (decoded real digits
    classified with confidence >= 0.9), ``toy_noise_share`` / ``digits_noise_share`` (timesteps with
    alpha_bar < 0.01 under the toy schedule and the loop's) and the schedules' ``toy_beta0/1``,
    ``digits_beta0/1`` as text."""
    from .digits import digits_pca
    from .fid import ClassifierConfig, load_or_train_classifier
    from .train import ToyConfig

    s = _check_sweep("s", s)
    loop_seed = check_int("loop_seed", loop_seed, 0, None)
    base = s.loop.base
    if base.data != "digits_pca":
        raise ValueError(f"s must be a digits loop (data 'digits_pca'), got {base.data!r}")
    n_fid = s.records[0]["spec"]["n_fid"]
    pca = digits_pca(base.latent_dim)
    classifier = load_or_train_classifier(ClassifierConfig(), progress=False)
    first, second = _real_digit_sets(n_fid, loop_seed)
    decoded = lambda images: pca.decode(pca.encode(images / 255))  # noqa: E731
    reference = decoded(first)
    real_scores = loops.digit_scores(pca.encode(second / 255), base.latent_dim, n_fid, loop_seed)
    toy = ToyConfig()
    return {"latent_dim": base.latent_dim, "n_fid": n_fid, "pca_explained": pca.explained,
            "clf_accuracy": classifier.test_accuracy, "fd_real": classifier.fid(reference, decoded(second)),
            "fd_raw_real": classifier.fid(first, second), "fd_decoder": classifier.fid(first, reference),
            "confident_real": real_scores["confident"],
            "toy_noise_share": np.mean(np.asarray(toy.schedule().alpha_bar) < 0.01),
            "digits_noise_share": np.mean(np.asarray(base.schedule().alpha_bar) < 0.01),
            "toy_beta0": f"{toy.beta_start:g}", "toy_beta1": f"{toy.beta_end:g}",
            "digits_beta0": f"{base.beta_start:g}", "digits_beta1": f"{base.beta_end:g}"}


def digits_table(s: LoopSweep) -> tuple:
    """The digits loop per arm and generation across seeds: ``(markdown, numbers)``. Columns: the
    Fréchet distance of the samples (mean [lowest – highest seed]) and of the data passed on, the share
    classified with confidence >= 0.9, the share of the most frequent predicted class. Numbers:
    ``fd_first`` / ``fd_first_range`` / ``confident_first`` / ``confident_first_min`` (generation 0 across
    seeds), ``fd_last_<arm>`` and ``digits_order`` (the arms by their last generation's mean distance)."""
    s = _check_sweep("s", s)
    fd, kept, confident, top = (s.by_arm(k) for k in ("fd", "kept_fd", "confident", "top_class"))
    rows = [[ARM_NAMES[arm], g, _range_cell(fd[arm][1][:, g], ".2f"), f"{kept[arm][1][:, g].mean():.2f}",
             _range_cell(confident[arm][1][:, g], ".0%"), f"{top[arm][1][:, g].mean():.1%}"]
            for arm in fd for g in range(fd[arm][1].shape[1])]
    table = markdown_table(["arm", "generation", "Fréchet distance of the samples, mean [lowest – highest seed]",
                            "of the data passed on", "classified with confidence ≥ 0.9",
                            "most frequent predicted class (share)"], rows)
    first_arm = next(iter(fd))
    fd0, conf0 = fd[first_arm][1][:, 0], confident[first_arm][1][:, 0]
    last = {arm: v[:, -1].mean() for arm, (_, v) in fd.items()}
    numbers = {"fd_first": fd0.mean(), "fd_first_range": f"{fd0.min():.1f} – {fd0.max():.1f}",
               "confident_first": conf0.mean(), "confident_first_min": conf0.min(),
               "digits_order": " < ".join(f"{ARM_NAMES[a]} ({last[a]:.2f})" for a in sorted(last, key=last.get))}
    return table, numbers | {f"fd_last_{arm}": v for arm, v in last.items()}


def digits_tables(s: LoopSweep, loop_seed: int = 0, confidence: float = 0.95, alpha: float = 0.05) -> tuple:
    """The digits loop as one section shows it: ``(tables, numbers)``. Table ``digits``
    (:func:`digits_table`) and ``d_comparison`` (:func:`comparison_table` of the Fréchet distances, the
    data handed on as ``kept_fd``); numbers: :func:`digits_baseline`, :func:`digits_table`'s, and the
    comparison's prefixed ``d_``."""
    table, numbers = digits_table(s)
    comparison, compared = comparison_table(s, "fd", "kept_fd", "+.2f", confidence, alpha)
    return ({"digits": table, "d_comparison": comparison},
            digits_baseline(s, loop_seed) | numbers | {f"d_{k}": v for k, v in compared.items()})


def digit_preview(s: LoopSweep, seed: int | None = None) -> dict:
    """Decoded samples of replicate ``seed`` (default: the first) for
    :func:`mode_interp.plots.plot_digit_generations`: generation 0 (shared by the arms), then each arm's
    later generations, from the records' ``preview`` codes."""
    import torch

    from .digits import digits_pca

    s = _check_sweep("s", s)
    seed = s.seeds[0] if seed is None else check_int("seed", seed, 0, None)
    preview = {r["spec"]["arm"]: r["result"].get("preview") for r in s.records if r["spec"]["seed"] == seed}
    if not preview or any(p is None for p in preview.values()):
        raise ValueError(f"seed {seed}: no digits records with a preview (seeds: {list(s.seeds)})")
    pca = digits_pca(s.loop.base.latent_dim)
    decode = lambda codes: pca.decode(torch.tensor(codes)).numpy()  # noqa: E731
    out = {"gen 0 (all arms)": decode(next(iter(preview.values()))[0])}
    return out | {f"{ARM_NAMES[arm]}, gen {g}": decode(codes) for arm in ARMS if arm in preview
                  for g, codes in enumerate(preview[arm]) if g}


# ---------------------------------------------------------------- the sweep command

def run_sweep_command(spec, workers: int = 2, out=None) -> tuple:
    """Run ``python -m mode_interp.sweep spec`` from scratch in a subprocess (records and models in ``out``,
    default a new temporary folder): ``(markdown, numbers, output)``. The table lists each task's seed, arm,
    status, seconds and record; numbers: ``tasks``, ``done`` and ``seconds`` (wall time of the command);
    ``output`` is the command's last output. A RuntimeError (with the output) when it wrote no index."""
    from . import sweep as sweeps

    workers = check_int("workers", workers, 1, None)
    spec = Path(spec)
    name = sweeps.read_spec(spec)["name"]
    out = Path(tempfile.mkdtemp(prefix="sweep-")) if out is None else Path(out)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mode_interp.sweep", str(spec), "--out", str(out),
                           "--workers", str(workers), "--no-progress"], capture_output=True, text=True,
                          env={**os.environ, "MODE_INTERP_CACHE": str(out / "models")})
    seconds = time.perf_counter() - start
    output = proc.stdout[-2000:] or proc.stderr[-4000:]
    if not (out / name / "index.json").is_file():
        raise RuntimeError(f"the sweep command wrote no index (exit status {proc.returncode}):\n{output}")
    index = load_index(out / name)
    table = markdown_table(["seed", "arm", "status", "seconds", "record"],
                           [[e["seed"], e["grid"].get("arm", ""), e["status"], f"{e['seconds']:.1f}", e["record"]]
                            for e in index["tasks"]])
    return table, {"tasks": index["totals"]["tasks"], "done": index["totals"]["done"], "seconds": seconds}, output
