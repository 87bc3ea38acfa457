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

On a 2-D grid with one heavy mode (chapter 6's 3 x 3 grid, :func:`mode_interp.data.grid_9`) the same
questions are asked of the segments between nearest neighbours (:func:`mode_interp.interpolation.segment_profile`),
in two classes: those that touch the heavy mode ("heavy–light") and the rest ("light–light"); the
balanced control's segments are classed by the same positions (:func:`grid_rows`).
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import check_int, check_ints
from .data import GaussianMixture, check_mixture
from .interpolation import neighbour_pairs
from .report import markdown_table
from .schedule import Schedule, check_schedule
from .stats import mean_interval, paired_test, wilson_interval
from .toy_report import recipe_text, record_models


def boundary(mixture: GaussianMixture, schedule: Schedule, t: int, pair=(0, 1)) -> float:
    """x*(t) of the module docstring for modes ``pair`` (indices into the sorted 1-D means): where the exact
    responsibilities of the two modes are equal at step t, in data units."""
    check_mixture(mixture, dim=1)
    check_schedule(schedule)
    t = check_int("t", t, 0, schedule.T - 1)
    order = np.argsort(mixture.means[:, 0])
    pair = check_ints("pair", pair, 0, mixture.n_modes - 1)
    if len(pair) != 2 or pair[0] >= pair[1]:
        raise ValueError(f"pair must be two mode indices i < j below {mixture.n_modes}, got {pair!r}")
    a, b = order[pair[0]], order[pair[1]]
    mu_a, mu_b = float(mixture.means[a, 0]), float(mixture.means[b, 0])
    s = pair_position(mixture.weights[a], mixture.weights[b], mu_b - mu_a, mixture.sigma, schedule, t)
    return mu_a + s * (mu_b - mu_a)


def pair_position(w_a: float, w_b: float, distance: float, sigma: float, schedule: Schedule, t: int) -> float:
    """Where along the segment from mode a to mode b (0: a, 1: b; modes ``distance`` apart, in any dimension)
    the exact responsibilities of the two modes alone are equal at step t, in data units:
    s*(t) = 1/2 + v_t log(w_a / w_b) / (ab d^2) (the module docstring's x*(t), divided by d)."""
    check_schedule(schedule)
    t = check_int("t", t, 0, schedule.T - 1)
    if not (w_a > 0 and w_b > 0 and distance > 0 and sigma > 0):
        raise ValueError(f"w_a, w_b, distance and sigma must be positive, got {w_a}, {w_b}, {distance}, {sigma}")
    ab = float(schedule.alpha_bar[t])
    v = ab * sigma ** 2 + 1.0 - ab
    return 0.5 + v * math.log(w_a / w_b) / (ab * distance ** 2)


def boundary_positions(mixture: GaussianMixture, schedule: Schedule, t: int) -> dict:
    """``{gap index: position}`` of the exact boundary at step t in each gap between neighbouring modes
    (0: the left mode, 1: the right one; 0.5 for equal weights)."""
    mus = np.sort(check_mixture(mixture, dim=1).means[:, 0])
    return {g: (boundary(mixture, schedule, t, (g, g + 1)) - mus[g]) / (mus[g + 1] - mus[g])
            for g in range(len(mus) - 1)}


def boundary_table(mixture: GaussianMixture, schedule: Schedule, ts) -> str:
    """The exact boundary's distance from each gap's midpoint, in sigma, at each t of ``ts`` (positive:
    towards the right-hand mode)."""
    pairs = [(i, i + 1) for i in range(check_mixture(mixture, dim=1).n_modes - 1)]
    mus = np.sort(mixture.means[:, 0])
    rows = [[f"{t}", *[f"{(boundary(mixture, schedule, t, p) - (mus[p[0]] + mus[p[1]]) / 2) / mixture.sigma:+.2f}"
                       for p in pairs]] for t in ts]
    return markdown_table(["t", *[f"gap {mus[a]:g}–{mus[b]:g}: shift (σ)" for a, b in pairs]], rows)


def arm_name(weights) -> str:
    """How the tables name a mixture's weights: "0.8/0.1/0.1", or "equal" for none given."""
    return "/".join(f"{w:g}" for w in weights) if len(weights) else "equal"


def record_rows(records) -> list:
    """One row per ``toy_model`` record (its last measured step): ``arm`` (the weights, or "equal"),
    ``weights``, ``seed``, ``n``, ``count``, ``rate``, ``gaps`` (per gap: ``between``, ``count``,
    ``position``), ``gate`` (passed, within, worst weight ratio), ``detector`` (or None), ``half``, the
    distance k_label sigma from a mode at which a gap opens, and ``config``, the replicate's ToyConfig."""
    rows = []
    for m in record_models(records):
        config, row = m["config"], m["row"]
        if config.data != "mixture_1d" or "position" not in row["gaps"][0]:
            raise ValueError("records must be 1-D toy_model records that hold the gap profile (measured since "
                             "the weights option), got one without")
        rows.append({"arm": arm_name(config.weights), "weights": list(config.weights), "seed": m["seed"],
                     "n": row["hallucination"]["n"], "count": row["hallucination"]["count"],
                     "rate": row["hallucination"]["rate"], "gaps": row["gaps"], "gate": row["gate"],
                     "detector": row.get("detector"), "half": m["k_label"] * config.sigma, "config": config})
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


def _pooled(tempered_rows) -> dict:
    """``{(arm, tau): {"n", "counts", "positions"}}``: the tempered rows of each arm and temperature pooled
    over seeds (per gap: the summed count, and the seeds' mean positions where a gap had samples)."""
    cells = {}
    for r in tempered_rows:
        cells.setdefault((r["arm"], r["tau"]), []).append(r)
    return {key: {"n": sum(r["n"] for r in rs),
                  "counts": [sum(r["gaps"][i]["count"] for r in rs) for i in range(len(rs[0]["gaps"]))],
                  "positions": [[r["gaps"][i]["position"] for r in rs if r["gaps"][i]["position"] is not None]
                                for i in range(len(rs[0]["gaps"]))]}
            for key, rs in cells.items()}


def tempered_table(tempered_rows) -> str:
    """The tempered exact denoiser (:func:`mode_interp.sampler_study.tempered_rates` rows tagged with an
    ``arm``): per arm and temperature, each gap's count summed over seeds, mean position and the ratio."""
    out = []
    for (arm, tau), c in sorted(_pooled(tempered_rows).items(), key=lambda kv: (kv[0][0] == "equal", kv[0][1])):
        counts = c["counts"]
        out.append([arm, f"{tau:g}", f"{c['n']:,}",
                    *[f"{k:,} ({np.mean(p):.2f})" if p else f"{k:,} (–)" for k, p in zip(counts, c["positions"])],
                    f"{(counts[0] + 0.5) / (counts[1] + 0.5):.2f}"])
    return markdown_table(["weights", "τ", "samples", "gap 1–2: count (position)", "gap 2–3: count (position)",
                           "ratio of the gaps"], out)


def tempered_shares(tempered_rows, arm: str) -> dict:
    """``{tau: {"share", "lo", "hi", "count_0", "count_1"}}``: of one arm's tempered samples in the two gaps,
    pooled over seeds (the tempered denoiser is exact, so seeds differ by sampling noise only), the share in
    gap 0 with its 99.9% Wilson interval (1/2: the gaps hold alike)."""
    out = {}
    for (a, tau), c in sorted(_pooled(tempered_rows).items(), key=lambda kv: kv[0][1]):
        if a != arm:
            continue
        c0, c1 = c["counts"][0], c["counts"][1]
        lo, hi = wilson_interval(c0, max(c0 + c1, 1))
        out[tau] = {"share": c0 / max(c0 + c1, 1), "lo": lo, "hi": hi, "count_0": c0, "count_1": c1}
    return out


def detector_rows(rows, key: str = "at_retention") -> list:
    """Per model with detector numbers: the share of each mode's in-support samples that Hal's filter
    removes at threshold ``key`` ("at_retention": the paper's 96% kept overall; "at_removal": 95% of the
    hallucinations removed), with 95% Wilson intervals: ``{"arm", "seed", "auroc", "loss": [per mode],
    "lo", "hi", "n_in_support", "n_removed"}``."""
    out = []
    for r in rows:
        if r["detector"] is None:
            continue
        d = r["detector"][key]
        loss = [k / max(n, 1) for k, n in zip(d["n_removed"], d["n_in_support"])]
        ci = [wilson_interval(k, max(n, 1), 1.96) for k, n in zip(d["n_removed"], d["n_in_support"])]
        out.append({"arm": r["arm"], "seed": r["seed"], "auroc": r["detector"]["auroc"], "loss": loss,
                    "lo": [c[0] for c in ci], "hi": [c[1] for c in ci], "n_in_support": d["n_in_support"],
                    "n_removed": d["n_removed"], "target": d["target"]})
    return out


def detector_table(det_rows, means) -> str:
    """Per model: Hal's AUROC and the share of each mode's in-support samples removed (95% Wilson);
    ``means``: the modes' positions (numbers) or names (strings), one per column."""
    heads = [f"{m if isinstance(m, str) else f'mode {m:g}'}: removed (n)" for m in means]
    return markdown_table(["weights", "replicate", "AUROC", *heads],
                          [[d["arm"], d["seed"], f"{d['auroc']:.3f}",
                            *[f"{l:.1%} [{lo:.1%}, {hi:.1%}] ({n:,})" for l, lo, hi, n in
                              zip(d["loss"], d["lo"], d["hi"], d["n_in_support"])]] for d in det_rows])


def light_vs_heavy(det_rows, arm: str, light: int, heavy: int) -> dict:
    """Across replicates of ``arm``: :func:`mode_interp.stats.paired_test` of the share removed from mode
    ``light`` against mode ``heavy`` (one-sided "greater": the light mode pays more)."""
    rs = [d for d in det_rows if d["arm"] == arm]
    return paired_test([d["loss"][light] for d in rs], [d["loss"][heavy] for d in rs], alternative="greater")


def _verdict(interval: dict, above: str, below: str, unresolved: str) -> str:
    """``above`` if the interval lies above 1, ``below`` if below, else ``unresolved``."""
    return above if interval["lo"] > 1 else below if interval["hi"] < 1 else unresolved


def chapter_numbers(rows, comparison: dict, tempered_rows, det_rows, arm: str, ramps: dict, schedule: Schedule,
                    shift_ts=(0, 20), light=(1, 2), heavy: int = 0) -> dict:
    """The numbers section 6.5 glues: the exact boundary's shift in gap 0 at ``shift_ts`` (in sigma), the
    learned models' gap ratio and its control (with intervals, the paired test and its verdict in words),
    the tempered denoiser's ratio per temperature, the weight predictions, the mean in-gap positions, the
    rates, the ramp-width ratios per arm (``ramps``: {label: :func:`ramp_widths`}, labels starting with the
    arm's name), and the detector's removals per mode (mean over replicates) with the light-against-heavy
    test; the arm's weights and mixture are read from ``rows``."""
    by = arms(rows)
    weights, mixture = by[arm][0]["weights"], by[arm][0]["config"].mixture()
    mus = np.sort(mixture.means[:, 0])
    out = {"n_reps": len(by[arm]), "n_samples": by[arm][0]["n"], "weights": " / ".join(f"{w:g}" for w in weights),
           "n_passed": sum(r["gate"]["passed"] for r in rows), "n_models": len(rows),
           **{f"shift_{t}": (boundary(mixture, schedule, t, (0, 1)) - (mus[0] + mus[1]) / 2) / mixture.sigma
              for t in shift_ts}}
    for key, name in (("arm", arm), ("control", "equal")):
        ratios = np.concatenate([r["narrower"] for label, r in ramps.items() if label.startswith(name + ",")])
        out[f"narrower_{key}_min"], out[f"narrower_{key}_max"] = float(ratios.min()), float(ratios.max())
    target = det_rows[0]["target"]
    out["retention"], out["fp"] = target, 1 - target
    for key in ("ratio", "control_ratio"):
        out.update({f"{key}": comparison[key]["mean"], f"{key}_lo": comparison[key]["lo"],
                    f"{key}_hi": comparison[key]["hi"],
                    f"{key}_min": min(comparison[key]["values"]), f"{key}_max": max(comparison[key]["values"])})
    vs = comparison["vs_control"]
    out.update(vs_p=vs["p_one_sided"], vs_agree=vs["n_agree"], vs_factor=10 ** vs["mean"],
               vs_factor_lo=10 ** vs["lo"], vs_factor_hi=10 ** vs["hi"],
               verdict_ratio=_verdict(comparison["ratio"], "the heavy–light gap holds more",
                                      "the heavy–light gap holds less", "not resolved across replicates"),
               **{f"predicted_{k}": v for k, v in weight_predictions(weights).items()})
    for tau, m in tempered_shares(tempered_rows, arm).items():     # pooled, as tempered_table gives it
        out[f"tempered_ratio_{tau:g}"] = (m["count_0"] + 0.5) / (m["count_1"] + 0.5)
    for name, rs in (("arm", by[arm]), ("control", by["equal"])):
        out[f"{name}_rate"] = float(np.mean([r["rate"] for r in rs]))
        for g in range(len(rs[0]["gaps"])):
            pos = [r["gaps"][g]["position"] for r in rs if r["gaps"][g]["position"] is not None]
            out[f"{name}_position_{g}"] = float(np.mean(pos)) if pos else float("nan")
            out[f"{name}_count_{g}"] = sum(r["gaps"][g]["count"] for r in rs)
    for name in (arm, "equal"):
        mine = [d for d in det_rows if d["arm"] == name]
        key = "arm" if name == arm else "control"
        for k in range(len(mine[0]["loss"])):
            out[f"{key}_loss_{k}"] = float(np.mean([d["loss"][k] for d in mine]))
        out[f"{key}_auroc_min"] = min(d["auroc"] for d in mine)
    for k in light:
        t = light_vs_heavy(det_rows, arm, k, heavy)
        out.update({f"light{k}_excess": t["mean"], f"light{k}_excess_lo": t["lo"], f"light{k}_p": t["p_one_sided"],
                    f"light{k}_agree": t["n_agree"],
                    f"light{k}_factor_min": min(d["loss"][k] / max(d["loss"][heavy], 1e-12)
                                                for d in det_rows if d["arm"] == arm)})
    out["light_factor_min"] = min(out[f"light{k}_factor_min"] for k in light)
    control = {k: light_vs_heavy(det_rows, "equal", k, heavy) for k in light}
    out["control_p_min"] = min(t["p_one_sided"] for t in control.values())
    out["control_agree_max"] = max(t["n_agree"] for t in control.values())
    taus = sorted({r["tau"] for r in tempered_rows if r["arm"] == arm})
    lowest, first = min(out[f"tempered_ratio_{tau:g}"] for tau in taus), out[f"tempered_ratio_{taus[0]:g}"]
    predictions = {k: v for k, v in out.items() if k.startswith("predicted_")}
    nearest = min(predictions, key=lambda k: abs(math.log(predictions[k] / first)))
    out["nearest_prediction"] = {"predicted_geometric": "geometric mean", "predicted_arithmetic": "arithmetic mean",
                                 "predicted_smaller": "smaller weight"}[nearest]
    out["vs_tempered"] = (f"below uniform smoothing's {lowest:.1f}× (its lowest over τ) in every replicate"
                          if out["ratio_max"] < lowest else
                          f"at or above the {lowest:.1f}× of uniform smoothing in some replicate")
    out["rate_direction"] = "less" if out["arm_rate"] < out["control_rate"] else "more"
    out["verdict_summary"] = (f"which gap holds the mass: {out['verdict_ratio']}; Hal's filter removes each light "
                              f"mode's samples at ≥ {out['light_factor_min']:.1f}× the heavy mode's rate")
    spread = np.array([r["gate"]["spread_ratio"] for r in by[arm]])
    out["arm_spread_heavy"] = float(spread[:, heavy].mean())
    out["arm_spread_light"] = float(spread[:, list(light)].mean())
    return out



def ramp_widths(model, mixture: GaussianMixture, schedule: Schedule, ts) -> dict:
    """The network's transition width across each gap of a 1-D mixture, over the exact one, at each t of
    ``ts`` (:func:`mode_interp.smoothing.learned_transition_width`; the exact width depends on the gap and
    the noise, not on the weights): ``{"ts", "widths": {gap index: array of ratios}, "narrower": ratio of
    gap 0's ratio to gap 1's at each t}`` (below 1: the network's step is sharper in gap 0)."""
    from .optimal import transition_width
    from .smoothing import learned_transition_width

    mus = np.sort(check_mixture(mixture, dim=1).means[:, 0])
    ts = [int(t) for t in ts]
    widths = {}
    for g in range(len(mus) - 1):
        exact = transition_width(check_schedule(schedule), float(mus[g + 1] - mus[g]), mixture.sigma)[ts]
        widths[g] = learned_transition_width(model, mixture, schedule, ts, (g, g + 1)) / exact
    return {"ts": ts, "widths": widths, "narrower": widths[0] / widths[1]}


def model_ramps(rows, schedule: Schedule, ts) -> dict:
    """:func:`ramp_widths` of each trained model of ``rows`` (:func:`record_rows`; the model loaded from the
    cache or the shipped checkpoints, else trained), labelled "<arm>, replicate <seed>"."""
    from .train import load_or_train

    return {f"{r['arm']}, replicate {r['seed']}": ramp_widths(load_or_train(r["config"]).model, r["config"].mixture(),
                                                              schedule, ts) for r in rows}


def ramp_table(ramps: dict) -> str:
    """``{label: ramp_widths(...)}`` as a table, one row per model: at each t, the two gaps' widths over the
    exact one ("gap 1–2 / gap 2–3") and, in brackets, their ratio."""
    ts = next(iter(ramps.values()))["ts"]
    rows = [[label, *[f"{r['widths'][0][i]:.1f} / {r['widths'][1][i]:.1f} ({r['narrower'][i]:.2f})"
                      for i in range(len(ts))]] for label, r in ramps.items()]
    return markdown_table(["model", *[f"t = {t}" for t in ts]], rows)


def chapter_claims(rows, tempered_rows, det_rows, arm: str, light=(1, 2), heavy: int = 0) -> tuple:
    """Section 6.5's part of chapter 6's check cell: ``(claims, sanity)`` for :func:`mode_interp.report.check`."""
    tempered = tempered_shares(tempered_rows, arm)
    tests = {k: light_vs_heavy(det_rows, arm, k, heavy) for k in light}
    claims = {
        "imbalanced 1-D: every model, imbalanced and balanced, passes the strict gate (each mode's share within "
        "20% of its weight)": all(r["gate"]["passed"] for r in rows),
        "tempered exact denoiser, imbalanced: the heavy-light gap holds more than the light-light gap at every "
        "tau (pooled over seeds, its share of the two gaps' samples > 1/2 at the 99.9% Wilson lower bound)":
            all(m["lo"] > 0.5 for m in tempered.values()),
        "Hal at the paper's 96% retention: each light mode loses a larger share of its samples than the heavy "
        "mode, in every replicate (paired one-sided p < 0.05)":
            all(t["n_agree"] == t["n"] and t["p_one_sided"] < 0.05 for t in tests.values()),
    }
    by = arms(rows)
    sanity = {
        "3 replicates per arm, the same seeds": sorted(len(v) for v in by.values()) == [3, 3]
        and len({tuple(r["seed"] for r in v) for v in by.values()}) == 1,
        "every model's detector kept >= 96% of its in-support samples (the threshold's definition)":
            all(sum(d["loss"][k] * d["n_in_support"][k] for k in range(len(d["loss"]))) <= 0.04 * sum(d["n_in_support"])
                + 1e-9 for d in det_rows),
    }
    return claims, sanity


# ---------------------------------------------------------------- the imbalanced 2-D grid

SEGMENT_CLASSES = ("heavy–light", "light–light")
MIN_PAIRS = 3          # replicate pairs (both arms pass the strict gate) a comparison needs to be a claim


def grid_rows(records, heavy: int) -> list:
    """One row per 2-D ``toy_model`` record (its last measured step) that holds the per-segment profile:
    ``arm``, ``weights``, ``seed``, ``n``, ``count``, ``rate``, ``gate``, ``detector``, ``config``,
    ``segments`` (the record's per-segment profile) and ``classes``: per segment class
    (:data:`SEGMENT_CLASSES`, by whether the segment touches mode ``heavy``),
    ``segments`` (how many), ``count``, ``per_segment`` and ``position`` (the count-weighted mean position
    along the segment; heavy–light measured from the heavy mode, 0, to the light one, 1). ``gaps`` holds the
    two classes' ``per_segment`` counts as "counts", so :func:`log_ratio` and :func:`gap_comparison` apply."""
    rows = []
    for m in record_models(records):
        config, row = m["config"], m["row"]
        if config.mixture().dim != 2 or "segments" not in row:
            raise ValueError("records must be 2-D toy_model records that hold the per-segment profile (measured "
                             "since segment_profile), got one without")
        heavy = check_int("heavy", heavy, 0, config.mixture().n_modes - 1)
        classes = {}
        for name in SEGMENT_CLASSES:
            segs = [g for g in row["segments"] if (heavy in g["between"]) == (name == SEGMENT_CLASSES[0])]
            count = sum(g["count"] for g in segs)
            pos = [(g["position"] if g["between"][0] == heavy or name != SEGMENT_CLASSES[0] else 1 - g["position"],
                    g["count"]) for g in segs if g["count"]]
            classes[name] = {"segments": len(segs), "count": count, "per_segment": count / len(segs),
                             "position": sum(p * c for p, c in pos) / count if count else None}
        rows.append({"arm": arm_name(config.weights), "weights": list(config.weights), "seed": m["seed"],
                     "n": row["hallucination"]["n"], "count": row["hallucination"]["count"],
                     "rate": row["hallucination"]["rate"], "gate": row["gate"], "detector": row.get("detector"),
                     "classes": classes, "segments": row["segments"], "config": config,
                     "gaps": [{"count": classes[c]["per_segment"]} for c in SEGMENT_CLASSES]})
    return sorted(rows, key=lambda r: (r["config"].steps, r["arm"] == "equal", r["seed"]))


def gated_pairs(rows, arm: str, control: str = "equal") -> list:
    """The replicate seeds at which both ``arm`` and ``control`` pass the strict gate (``rows`` of one
    training length): the pairs a comparison between the arms may use."""
    by = arms(rows)
    passed = [{r["seed"] for r in by.get(name, []) if r["gate"]["passed"]} for name in (arm, control)]
    return sorted(passed[0] & passed[1])


def grid_table(rows) -> str:
    """Per model: training steps, hallucinated fraction, each segment class's count per segment and mean
    position, the ratio of the two classes' counts per segment, and the strict gate with its numbers (median
    and worst mode spread over the exact chain's, worst mode weight over its w_k)."""
    table = [[f"{r['config'].steps:,}",
              r["arm"] if r["arm"] == "equal" else f"{max(r['weights']):g} (heavy) / {min(r['weights']):g}",
              r["seed"], f"{r['rate']:.3%}",
              *[f"{c['per_segment']:.1f} ({c['position']:.2f})" if c["position"] is not None else "0 (–)"
                for c in r["classes"].values()],
              f"{10 ** log_ratio(r):.2f}",
              f"{r['gate']['median_spread_ratio']:.3f} / {r['gate']['worst_spread_ratio']:.3f} / "
              f"{r['gate']['worst_weight_ratio']:.3f}: {'passes' if r['gate']['passed'] else 'fails'}"] for r in rows]
    return markdown_table(["steps", "weights", "replicate", "hallucinated",
                           *[f"{c}: per segment (position)" for c in SEGMENT_CLASSES], "ratio",
                           "strict gate: median / worst spread, worst weight"], table)


def pooled_detector_rows(det_rows, heavy: int, neighbours=()) -> list:
    """:func:`detector_rows` with the modes pooled: ``loss`` = [mode ``heavy``, every other mode, and, when
    ``neighbours`` (mode indices) is given, those modes and the remaining ones] (removed / in-support over the
    pooled modes), with 95% Wilson intervals, ``n_in_support`` and ``n_removed``."""
    out = []
    for d in det_rows:
        n, removed = np.asarray(d["n_in_support"]), np.asarray(d["n_removed"])
        light = [k for k in range(len(n)) if k != heavy]
        groups = [[heavy], light] + ([list(neighbours), [k for k in light if k not in neighbours]] if len(neighbours) else [])
        counts = [(int(removed[g].sum()), int(n[g].sum())) for g in groups]
        ci = [wilson_interval(k, max(m, 1), 1.96) for k, m in counts]
        out.append({**d, "loss": [k / max(m, 1) for k, m in counts], "lo": [c[0] for c in ci],
                    "hi": [c[1] for c in ci], "n_in_support": [m for _, m in counts],
                    "n_removed": [k for k, _ in counts]})
    return out


def heavy_neighbours(mixture: GaussianMixture, heavy: int) -> list:
    """The modes that share a nearest-neighbour segment with mode ``heavy`` (:func:`neighbour_pairs`)."""
    return sorted(int(a + b - heavy) for a, b in neighbour_pairs(mixture)[0].tolist() if heavy in (a, b))


def grid_numbers(rows, pooled: list, arm: str, schedule: Schedule, t: int = 20) -> dict:
    """The numbers chapter 6 glues for the imbalanced grid (``rows``: :func:`grid_rows`, ``pooled``:
    :func:`pooled_detector_rows`): the classes' count ratio per arm with its across-replicate interval and the
    paired test against the control (:func:`gap_comparison`), the weight predictions, the mean heavy–light
    position against the exact two-mode boundary at step ``t`` (:func:`pair_position`), the rates, the
    detector's pooled removals (light against heavy, per arm, :func:`light_vs_heavy`) and the training
    ``recipe`` in words (:func:`mode_interp.toy_report.recipe_text`)."""
    by = arms(rows)
    cmp = gap_comparison(rows, arm)
    r0 = by[arm][0]
    mixture, heavy = r0["config"].mixture(), int(np.argmax(r0["weights"]))
    pairs = [tuple(p) for p in neighbour_pairs(mixture)[0].tolist()]
    hl = next(p for p in pairs if heavy in p)                     # a heavy-light and a light-light segment
    ll = next(p for p in pairs if heavy not in p)
    light = hl[0] + hl[1] - heavy
    w = mixture.weights
    distance = float(np.linalg.norm(mixture.means[light] - mixture.means[heavy]))
    out = {"n_reps": len(by[arm]), "n_samples": r0["n"], "n_models": len(rows),
           "n_passed": sum(r["gate"]["passed"] for r in rows), "heavy_weight": float(w[heavy]),
           "light_weight": float(w[light]), "weight_factor": float(w[heavy] / w[light]),
           "boundary_t": t, "boundary": pair_position(w[heavy], w[light], distance, mixture.sigma, schedule, t),
           "n_train": r0["config"].n_train, "batch": r0["config"].batch_size, "steps": r0["config"].steps,
           "recipe": recipe_text(r0["config"]),
           **{f"predicted_{k}": v for k, v in weight_predictions(w, (hl, ll)).items()}}
    for key in ("ratio", "control_ratio"):
        c = cmp[key]
        out.update({key: c["mean"], f"{key}_lo": c["lo"], f"{key}_hi": c["hi"],
                    f"{key}_min": min(c["values"]), f"{key}_max": max(c["values"])})
    vs = cmp["vs_control"]
    out.update(vs_factor=10 ** vs["mean"], vs_factor_lo=10 ** vs["lo"], vs_factor_hi=10 ** vs["hi"],
               vs_p=vs["p_one_sided"], vs_p_flip=vs["p_sign_flip"], vs_agree=vs["n_agree"],
               verdict_ratio=_verdict(cmp["ratio"], "the heavy–light segments hold more per segment",
                                      "the heavy–light segments hold less per segment",
                                      "not resolved across replicates"),
               verdict_vs=_verdict({"lo": 10 ** vs["lo"], "hi": 10 ** vs["hi"]}, "more than in the balanced control",
                                   "less than in the balanced control", "not resolved against the balanced control"))
    for key, name in (("arm", arm), ("control", "equal")):
        rs = by[name]
        out[f"{key}_rate"] = float(np.mean([r["rate"] for r in rs]))
        pos = [r["classes"][SEGMENT_CLASSES[0]]["position"] for r in rs
               if r["classes"][SEGMENT_CLASSES[0]]["position"] is not None]
        out[f"{key}_position"] = float(np.mean(pos)) if pos else float("nan")
        mine = [d for d in pooled if d["arm"] == name]
        for i, part in enumerate(("heavy", "light", "next", "far")[:len(mine[0]["loss"])]):
            out[f"{key}_loss_{part}"] = float(np.mean([d["loss"][i] for d in mine]))
        out[f"{key}_auroc_min"] = min(d["auroc"] for d in mine)
        test = light_vs_heavy(pooled, name, 1, 0)
        out.update({f"{key}_light_p": test["p_one_sided"], f"{key}_light_agree": test["n_agree"],
                    f"{key}_light_factor_min": min(d["loss"][1] / max(d["loss"][0], 1e-12) for d in mine),
                    f"{key}_light_factor_max": max(d["loss"][1] / max(d["loss"][0], 1e-12) for d in mine)})
    out["verdict_summary"] = (f"heavy–light against light–light segments, per segment: {out['verdict_vs']}; Hal's "
                              f"filter removes the light modes' samples at {out['arm_light_factor_min']:.1f}–"
                              f"{out['arm_light_factor_max']:.1f}× the heavy mode's rate")
    return out


def grid_claims(rows, pooled: list, arm: str) -> tuple:
    """The imbalanced grid's part of chapter 6's check cell: ``(claims, sanity)``. ``rows``: one training
    length's :func:`grid_rows`; ``pooled``: :func:`pooled_detector_rows` of the models compared (the gated
    pairs, :func:`gated_pairs`)."""
    test = light_vs_heavy(pooled, arm, 1, 0)
    claims = {
        "imbalanced 2-D grid, Hal at the paper's 96% retention: the light modes (pooled) lose a larger share of "
        "their samples than the heavy mode, in every replicate compared (paired one-sided p < 0.05)":
            test["n_agree"] == test["n"] and test["p_one_sided"] < 0.05,
    }
    by = arms(rows)
    sanity = {
        "imbalanced 2-D grid: 3 replicates per arm, the same seeds": sorted(len(v) for v in by.values()) == [3, 3]
        and len({tuple(r["seed"] for r in v) for v in by.values()}) == 1,
        "imbalanced 2-D grid: each nearest-neighbour segment is in one class (12 on the 3 x 3 grid)":
            all(sum(c["segments"] for c in r["classes"].values()) == len(neighbour_pairs(r["config"].mixture())[0])
                for r in rows),
    }
    return claims, sanity


def stage_numbers(rows, arm: str) -> dict:
    """The strict gate over one training length's :func:`grid_rows`: ``steps``, ``models``, ``passed``,
    ``pairs`` (:func:`gated_pairs`) and ``failed_on`` (the gate checks some model fails, or "nothing")."""
    failed = sorted({check for r in rows for check, ok in r["gate"].get("checks", {}).items() if not ok})
    return {"steps": rows[0]["config"].steps, "models": len(rows), "passed": sum(r["gate"]["passed"] for r in rows),
            "pairs": len(gated_pairs(rows, arm)), "failed_on": "; ".join(failed) or "nothing"}


def _basis(final: dict, n_pairs: int, gated: bool, verdict_summary: str) -> dict:
    """What the imbalanced grid's comparisons rest on, in words (``final``: the final training length's
    :func:`stage_numbers`; ``verdict_summary``: :func:`grid_numbers`'): ``basis``, ``basis_short``, ``status``,
    and ungated, the ``verdict_summary`` prefixed as measured."""
    steps, models = final["steps"], final["models"]
    if gated:
        return {"basis": f"the {n_pairs} replicate pairs in which both models pass the strict gate at {steps:,} steps",
                "basis_short": f"{n_pairs} gated replicate pairs",
                "status": "the detector's side asserted across the gated pairs"}
    pairs = f"{n_pairs} replicate pair{'s' if n_pairs != 1 else ''}"
    passes = f"{pairs} pass{'es' if n_pairs == 1 else ''} the strict gate"
    return {"basis": f"all {models} models at {steps:,} steps, as measured: only {passes}, fewer than the {MIN_PAIRS} "
                     "a claim needs",
            "basis_short": f"{models} models, {pairs} gated: measured, not claimed", "status": "shown, not asserted",
            "verdict_summary": f"measured on all {models} models, of which only {passes} (not a claim): "
                               + verdict_summary}


def grid_study(records, schedule: Schedule, n_live: int = 0, seed: int = 1, t: int = 20) -> dict:
    """Chapter 6's imbalanced 2-D grid in one call, from ``toy_model`` records of an imbalanced arm and its
    balanced control (``heavy``: the imbalanced arm's heaviest mode), possibly at several training lengths:
    ``rows`` (:func:`grid_rows`, every record) and the Markdown ``table`` of them all; the comparisons use the
    longest-trained models only, and of those the replicate pairs that both pass the strict gate (``pairs``,
    :func:`gated_pairs`) when there are at least :data:`MIN_PAIRS` (``gated``), else all of them, as measured
    (``used``). On ``used``: ``pooled`` (:func:`pooled_detector_rows` at the paper's 96% retention: the heavy
    mode, the others pooled, its nearest neighbours, the modes farther out), ``detector_table``, ``numbers``
    (:func:`grid_numbers` at step ``t``, with the last two training lengths' :func:`stage_numbers` as
    ``final_*`` and ``earlier_*``), ``claims`` and ``sanity``
    (:func:`grid_claims`; without ``gated`` the claims go to ``measured`` instead, not to be asserted), and
    with ``n_live`` > 0 ``live``: the first pair's two models redrawn in this run
    (``n_live`` samples, sampling seed ``seed``, from the shipped or cached model, else trained) and
    compared with their records (:func:`mode_interp.toy_report.redraw_numbers`; a claim that both agree)."""
    from .toy_report import measure_model, redraw_numbers

    n_live = check_int("n_live", n_live, 0, None)
    models = record_models(records)
    weighted = [m for m in models if m["config"].weights]
    if not weighted:
        raise ValueError("records must hold an imbalanced arm (a model with weights) beside the balanced control")
    heavy = int(np.argmax(weighted[0]["config"].weights))
    rows = grid_rows(records, heavy)
    arm = arm_name(weighted[0]["config"].weights)
    lengths = sorted({r["config"].steps for r in rows})
    final = [r for r in rows if r["config"].steps == lengths[-1]]
    pairs = gated_pairs(final, arm)
    gated = len(pairs) >= MIN_PAIRS
    used = [r for r in final if r["seed"] in pairs] if gated else final
    pooled = pooled_detector_rows(detector_rows(used), heavy, heavy_neighbours(rows[0]["config"].mixture(), heavy))
    labels = [f"mode {heavy} (heavy)", "the other modes (pooled)", "its neighbours", "the modes farther out"]
    out = {"rows": rows, "used": used, "pairs": pairs, "gated": gated, "pooled": pooled, "arm": arm,
           "table": grid_table(rows), "numbers": grid_numbers(used, pooled, arm, schedule, t),
           "detector_table": detector_table([{**d, "arm": d["arm"] if d["arm"] == "equal" else "imbalanced"}
                                             for d in pooled], labels)}
    stages = {name: stage_numbers([r for r in rows if r["config"].steps == steps], arm)
              for name, steps in zip(("final", "earlier"), lengths[::-1])}   # the final length and the one before
    for name, stage in stages.items():
        out["numbers"].update({f"{name}_{k}": v for k, v in stage.items()})
    out["numbers"].update(_basis(stages["final"], len(pairs), gated, out["numbers"]["verdict_summary"]))
    claims, out["sanity"] = grid_claims(final, pooled, arm)
    out["claims"], out["measured"] = (claims, {}) if gated else ({}, claims)   # too few gated pairs: not asserted
    if n_live:
        out["live"] = {}
        for r in (next(r for r in used if r["arm"] == name) for name in (arm, "equal")):
            label = f"{'imbalanced' if r['arm'] == arm else 'balanced'}, replicate {r['seed']}"
            m = next(m for m in models if m["config"] == r["config"])
            live = measure_model(f"{label}, drawn in this run", r["config"], n_live, seed)
            out["live"][label] = {**redraw_numbers({"label": label, "config": r["config"], "m": m["row"]}, live),
                                  "n": n_live, "count": live["m"]["hallucination"]["count"]}
        out["numbers"].update(n_live=n_live, live_models=len(out["live"]),
                              live_agree=sum(v["agrees"] for v in out["live"].values()))
        claim = (f"imbalanced 2-D grid: replicate {used[0]['seed']} of each arm, redrawn in this run, agrees with its "
                 "record (hallucinated and within-3-sigma shares, |z| < 3.29)")
        out["claims"][claim] = all(v["agrees"] for v in out["live"].values())
    return out
