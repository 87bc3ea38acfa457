"""Imbalanced mixtures (chapter 6, section 6.5): where the in-between mass goes when the modes' weights differ.

Between neighbouring 1-D modes mu_a < mu_b with weights w_a, w_b the exact responsibilities (chapter 1)
are equal where log w_a - (x_t - sqrt(ab) mu_a)^2 / (2 v_t) = log w_b - (x_t - sqrt(ab) mu_b)^2 / (2 v_t),
v_t = ab sigma^2 + 1 - ab. In data units (x_t / sqrt(ab)) that boundary is

    x*(t) = (mu_a + mu_b) / 2 + v_t log(w_a / w_b) / (ab (mu_b - mu_a)),

so the step of the optimal denoiser sits off the midpoint, towards the lighter mode, by an amount that grows
with the noise level. The functions here read ``toy_model`` records of an imbalanced mixture and its
balanced control (:mod:`mode_interp.experiments.models`: per gap, the count of samples more than
``k_label`` sigma from both neighbours and their mean position; with ``hal_window``, the detector's
removals per mode), and compare the two gaps of each model across replicates.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import check_int, check_records
from .data import GaussianMixture, check_mixture
from .report import markdown_table
from .schedule import Schedule, check_schedule
from .stats import mean_interval, paired_test, wilson_interval


def boundary(mixture: GaussianMixture, schedule: Schedule, t: int, pair=(0, 1)) -> float:
    """x*(t) of the module docstring for modes ``pair`` (indices into the sorted 1-D means): where the exact
    responsibilities of the two modes are equal at step t, in data units."""
    check_mixture(mixture, dim=1)
    check_schedule(schedule)
    t = check_int("t", t, 0, schedule.T - 1)
    order = np.argsort(mixture.means[:, 0])
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(i, int) for i in pair)
            and 0 <= pair[0] < pair[1] < mixture.n_modes):
        raise ValueError(f"pair must be two mode indices i < j below {mixture.n_modes}, got {pair!r}")
    a, b = order[pair[0]], order[pair[1]]
    mu_a, mu_b = float(mixture.means[a, 0]), float(mixture.means[b, 0])
    ab = float(schedule.alpha_bar[t])
    v = ab * mixture.sigma ** 2 + 1.0 - ab
    return (mu_a + mu_b) / 2 + v * math.log(mixture.weights[a] / mixture.weights[b]) / (ab * (mu_b - mu_a))


def boundary_table(mixture: GaussianMixture, schedule: Schedule, ts) -> str:
    """The exact boundary's distance from each gap's midpoint, in sigma, at each t of ``ts`` (positive:
    towards the right-hand mode)."""
    pairs = [(i, i + 1) for i in range(check_mixture(mixture, dim=1).n_modes - 1)]
    mus = np.sort(mixture.means[:, 0])
    rows = [[f"{t}", *[f"{(boundary(mixture, schedule, t, p) - (mus[p[0]] + mus[p[1]]) / 2) / mixture.sigma:+.2f}"
                       for p in pairs]] for t in ts]
    return markdown_table(["t", *[f"gap {mus[a]:g}–{mus[b]:g}: shift (σ)" for a, b in pairs]], rows)


def _arm(weights) -> str:
    return "/".join(f"{w:g}" for w in weights) if weights else "equal"


def record_rows(records) -> list:
    """One row per ``toy_model`` record (its last measured step): ``arm`` (the weights, or "equal"),
    ``weights``, ``seed``, ``n``, ``count``, ``rate``, ``gaps`` (per gap: ``between``, ``count``,
    ``position``), ``gate`` (passed, within, worst weight ratio) and ``detector`` (or None)."""
    rows = []
    for rec in check_records("records", records, "toy_model"):
        model, row = rec["spec"]["model"], rec["result"]["rows"][-1]
        if not model["means"] or "position" not in row["gaps"][0]:
            raise ValueError("records must be 1-D toy_model records that hold the gap profile (measured since "
                             "the weights option), got one without")
        rows.append({"arm": _arm(model.get("weights", [])), "weights": model.get("weights", []),
                     "seed": rec["spec"]["seed"], "n": row["hallucination"]["n"],
                     "count": row["hallucination"]["count"], "rate": row["hallucination"]["rate"],
                     "gaps": row["gaps"], "gate": row["gate"], "detector": row.get("detector")})
    return sorted(rows, key=lambda r: (r["arm"] == "equal", r["seed"]))


def log_ratio(row: dict, gaps=(0, 1)) -> float:
    """log10 of (count in gap i + 0.5) / (count in gap j + 0.5), ``gaps = (i, j)``, for one row."""
    i, j = gaps
    return math.log10((row["gaps"][i]["count"] + 0.5) / (row["gaps"][j]["count"] + 0.5))


def arms(rows) -> dict:
    """``{arm: rows sorted by seed}``."""
    out = {}
    for r in rows:
        out.setdefault(r["arm"], []).append(r)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in out.items()}


def gap_comparison(rows, arm: str, control: str = "equal") -> dict:
    """The two gaps of ``arm`` against each other, and against ``control``'s, across replicates:
    ``ratio`` (geometric mean of count(gap 0) / count(gap 1) over replicates, with its 95% t-interval),
    ``control_ratio`` (the same for the control) and ``vs_control`` (:func:`mode_interp.stats.paired_test`
    of the per-replicate log10 ratios, arm - control, one-sided "greater": the heavy gap gains more)."""
    by = arms(rows)
    for name in (arm, control):
        if name not in by or len(by[name]) < 2:
            raise ValueError(f"need >= 2 replicates of arm {name!r}, got {len(by.get(name, []))} (arms: {sorted(by)})")
    if [r["seed"] for r in by[arm]] != [r["seed"] for r in by[control]]:
        raise ValueError(f"arm {arm!r} and control {control!r} must have the same replicates")
    out = {}
    for key, name in (("ratio", arm), ("control_ratio", control)):
        m = mean_interval([log_ratio(r) for r in by[name]])
        out[key] = {"mean": 10 ** m["mean"], "lo": 10 ** m["lo"], "hi": 10 ** m["hi"], "p": m["p"],
                    "values": [10 ** log_ratio(r) for r in by[name]]}
    out["vs_control"] = paired_test([log_ratio(r) for r in by[arm]], [log_ratio(r) for r in by[control]],
                                    alternative="greater")
    return out


def weight_predictions(weights, pairs=((0, 1), (1, 2))) -> dict:
    """What count(gap 0) / count(gap 1) would be if a gap's mass scaled with its two modes' weights as their
    geometric mean sqrt(w_a w_b), their arithmetic mean, or their smaller weight."""
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    (a0, b0), (a1, b1) = pairs
    return {"geometric": math.sqrt(w[a0] * w[b0] / (w[a1] * w[b1])),
            "arithmetic": (w[a0] + w[b0]) / (w[a1] + w[b1]),
            "smaller": min(w[a0], w[b0]) / min(w[a1], w[b1])}


def gap_table(rows) -> str:
    """Per model: hallucinated fraction, each gap's count and mean position (0 = left mode, 1 = right mode),
    the ratio of the two gaps' counts, and the strict gate."""
    n_gaps = len(rows[0]["gaps"])
    table = []
    for r in rows:
        gaps = [f"{g['count']:,} ({g['position']:.2f})" if g["position"] is not None else "0 (–)" for g in r["gaps"]]
        table.append([r["arm"], r["seed"], f"{r['rate']:.3%}", *gaps, f"{10 ** log_ratio(r):.2f}",
                      "passes" if r["gate"]["passed"] else "fails"])
    heads = [f"gap {g['between'][0]:g}–{g['between'][1]:g}: count (position)" for g in rows[0]["gaps"]][:n_gaps]
    return markdown_table(["weights", "replicate", "hallucinated", *heads, "ratio of the gaps", "strict gate"], table)


def tempered_table(tempered_rows, weights_by_arm: dict) -> str:
    """The tempered exact denoiser (:func:`mode_interp.sampler_study.tempered_rates` rows tagged with an
    ``arm``): per arm and temperature, each gap's count summed over seeds, mean position and the ratio."""
    cells = {}
    for r in tempered_rows:
        cells.setdefault((r["arm"], r["tau"]), []).append(r)
    out = []
    for (arm, tau), rs in sorted(cells.items(), key=lambda kv: (kv[0][0] == "equal", kv[0][1])):
        counts = [sum(r["gaps"][i]["count"] for r in rs) for i in range(len(rs[0]["gaps"]))]
        pos = [np.nanmean([np.nan if r["gaps"][i]["position"] is None else r["gaps"][i]["position"] for r in rs])
               for i in range(len(counts))]
        out.append([arm, f"{tau:g}", f"{sum(r['n'] for r in rs):,}",
                    *[f"{c:,} ({p:.2f})" for c, p in zip(counts, pos)], f"{(counts[0] + 0.5) / (counts[1] + 0.5):.2f}"])
    return markdown_table(["weights", "τ", "samples", "gap 1–2: count (position)", "gap 2–3: count (position)",
                           "ratio of the gaps"], out)


def tempered_ratios(tempered_rows, arm: str) -> dict:
    """``{tau: mean_interval of the per-seed log10 gap ratios}`` of one arm of tagged tempered rows."""
    out = {}
    for tau in sorted({r["tau"] for r in tempered_rows if r["arm"] == arm}):
        out[tau] = mean_interval([log_ratio(r) for r in tempered_rows if r["arm"] == arm and r["tau"] == tau])
    return out


def detector_rows(rows, key: str = "at_retention") -> list:
    """Per model with detector numbers: the share of each mode's in-support samples that Hal's filter
    removes at threshold ``key`` ("at_retention": the paper's 96% kept overall; "at_removal": 95% of the
    hallucinations removed), with 95% Wilson intervals: ``{"arm", "seed", "auroc", "loss": [per mode],
    "lo", "hi", "n_in_support"}``."""
    out = []
    for r in rows:
        if r["detector"] is None:
            continue
        d = r["detector"][key]
        loss = [k / max(n, 1) for k, n in zip(d["n_removed"], d["n_in_support"])]
        ci = [wilson_interval(k, max(n, 1), 1.96) for k, n in zip(d["n_removed"], d["n_in_support"])]
        out.append({"arm": r["arm"], "seed": r["seed"], "auroc": r["detector"]["auroc"], "loss": loss,
                    "lo": [c[0] for c in ci], "hi": [c[1] for c in ci], "n_in_support": d["n_in_support"],
                    "target": d["target"]})
    return out


def detector_table(det_rows, means) -> str:
    """Per model: Hal's AUROC and the share of each mode's in-support samples removed (95% Wilson)."""
    heads = [f"mode {m:g}: removed (n)" for m in means]
    return markdown_table(["weights", "replicate", "AUROC", *heads],
                          [[d["arm"], d["seed"], f"{d['auroc']:.3f}",
                            *[f"{l:.1%} [{lo:.1%}, {hi:.1%}] ({n:,})" for l, lo, hi, n in
                              zip(d["loss"], d["lo"], d["hi"], d["n_in_support"])]] for d in det_rows])


def light_vs_heavy(det_rows, arm: str, light: int, heavy: int) -> dict:
    """Across replicates of ``arm``: :func:`mode_interp.stats.paired_test` of the share removed from mode
    ``light`` against mode ``heavy`` (one-sided "greater": the light mode pays more)."""
    rs = [d for d in det_rows if d["arm"] == arm]
    return paired_test([d["loss"][light] for d in rs], [d["loss"][heavy] for d in rs], alternative="greater")
