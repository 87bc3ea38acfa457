"""The denoiser's steepness at the boundaries and the hallucinated rate, across trained models (chapter 6,
section 6.7).

The paper's mechanism says a network that cannot be as steep as the optimal denoiser's step puts samples
between the modes. Its sharpest form, proposed by the Score-Control / VSM follow-up, ties the
hallucinated mass to the Lipschitz constant of the learned score. Here each trained 1-D model carries, per
gap g between neighbouring modes and per timestep t, its local Lipschitz constant

    L_g(t) = max over the gap of |d x0_hat / d x_t|

(``boundary_lipschitz`` records, :func:`mode_interp.smoothing.boundary_lipschitz`), and its
``toy_model`` record carries the samples that landed in that gap, c_g. Two tests (logs base 10; the
1/2 keeps a gap with no sample finite):

* **within a model**: its two gaps share its data set, its training run and its sampling seed, and differ
  in their steepness and their position (left or right). Fitted over models, with an intercept for the
  position,

      y = log10((c_a + 1/2) / (c_b + 1/2)) = a + b log10(L_a / L_b) + noise,   prediction b < 0

  (:func:`mode_interp.stats.linear_fit`), and tested by permuting the pairing of x and y across models
  (:func:`mode_interp.stats.permutation_correlation`), which needs no fair-coin assumption about which
  gap is steeper;
* **across models** of one mixture: log10 rate against the mean over gaps of log10 L. Models of one
  replicate of a sweep share their initialisation and data seeds (chapter 2, section 2.5), so the slope is
  fitted within each replicate and the replicates' slopes give the mean and its t-interval
  (:func:`mode_interp.stats.mean_interval`).
"""

from __future__ import annotations

import json
import math

import numpy as np

from ._validate import check_int, check_records
from .report import markdown_table
from .stats import linear_fit, mean_interval, permutation_correlation, sign_test
from .toy_report import record_models


def _key(config) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


def _names(name: str, value) -> tuple:
    if isinstance(value, str) or not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{name} must be a tuple of group names, got {value!r}")
    return tuple(value)


def rows(groups: dict) -> list:
    """One row per trained model: ``groups`` maps a group name to ``(slope_records, model_records)``
    (``boundary_lipschitz`` and ``toy_model`` records of the same models). A slope record pairs with the
    model record of the same replicate config (two model records of one config that differ are a
    ValueError, as is a slope record without its model record or with other gaps); a model already seen
    in an earlier group is skipped. Each row: ``group``, ``config``, ``seed``, ``count``, ``n``, ``rate``
    (the hallucinated fraction), ``gap_counts`` (per gap), ``gaps``, ``ts``, ``n_grid``, ``L`` and
    ``L_optimal`` (arrays of shape (n_gaps, len(ts)))."""
    from .experiments.lipschitz import BoundaryLipschitz

    if not isinstance(groups, dict) or not groups:
        raise ValueError(f"groups must map group names to (slope_records, model_records), got {groups!r}")
    out, seen = [], set()
    for group, pair in groups.items():
        where = f"groups[{group!r}]"
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"{where} must be (slope_records, model_records), got {type(pair).__name__}")
        slopes = check_records(f"{where}[0]", pair[0], "boundary_lipschitz")
        models = {}
        for m in record_models(check_records(f"{where}[1]", pair[1], "toy_model")):
            key = _key(m["config"])
            if key in models and models[key]["row"] != m["row"]:
                raise ValueError(f"{where}[1]: two different toy_model records of one model (replicate "
                                 f"{m['seed']}, n_train {m['config'].n_train}): pass one sweep per group")
            models[key] = m
        for rec in slopes:
            spec = BoundaryLipschitz.from_dict(rec["spec"])
            config, key = spec.config, _key(spec.config)
            if key in seen:
                continue
            if key not in models:
                raise ValueError(f"{where}: no toy_model record for the model of slope record (replicate "
                                 f"{rec['seed']}, n_train {config.n_train}, means {list(config.means)})")
            seen.add(key)
            row, r = models[key]["row"], rec["result"]
            if [g["between"] for g in row["gaps"]] != r["gaps"]:
                raise ValueError(f"{where}: the toy_model record's gaps {[g['between'] for g in row['gaps']]} are "
                                 f"not the slope record's {r['gaps']}")
            h = row["hallucination"]
            out.append({"group": group, "config": config, "seed": rec["seed"], "count": h["count"], "n": h["n"],
                        "rate": h["rate"], "gap_counts": [g["count"] for g in row["gaps"]], "gaps": r["gaps"],
                        "ts": list(r["ts"]), "n_grid": spec.n_grid, "L": np.array(r["learned"]),
                        "L_optimal": np.array(r["optimal"])})
    return out


def _column(rows_, t: int) -> int:
    ts = rows_[0]["ts"]
    if any(r["ts"] != ts for r in rows_):
        raise ValueError("every row must be measured at the same timesteps")
    if t not in ts:
        raise ValueError(f"t must be one of the measured timesteps {ts}, got {t!r}")
    return ts.index(t)


def _select(rows_, groups) -> list:
    return list(rows_) if groups is None else [r for r in rows_ if r["group"] in _names("groups", groups)]


def within_model(rows_, t: int, groups=None, n_perm: int = 20_000, seed: int = 0) -> dict:
    """The within-model test at timestep ``t`` (module docstring) on the rows of ``groups`` (default: all)
    with two gaps: :func:`mode_interp.stats.linear_fit` with an intercept (``slope``, ``lo``, ``hi``,
    ``intercept``, ``r``, ...), ``origin`` (the fit through the origin), ``p_perm`` (the permutation test
    of a negative association, ``n_perm`` re-pairings seeded with ``seed``), ``x`` and ``y`` per model,
    and how often the steeper gap holds fewer samples: ``n_agree`` of ``n``, split by which gap is steeper
    (``left`` and ``right``: ``{"n", "agree"}``), and the fair-coin sign test ``p_sign`` (meaningful only
    where the two gaps are interchangeable, as for the held-out few)."""
    sel = [r for r in _select(rows_, groups) if len(r["gap_counts"]) == 2]
    if len(sel) < 3:
        raise ValueError(f"the within-model test needs >= 3 models with two gaps, got {len(sel)}")
    j = _column(sel, check_int("t", t, 0, None))
    x = np.array([math.log10(r["L"][0, j] / r["L"][1, j]) for r in sel])
    y = np.array([math.log10((r["gap_counts"][0] + 0.5) / (r["gap_counts"][1] + 0.5)) for r in sel])
    agree = np.sign(x) * np.sign(y) < 0
    left = x > 0
    return {**linear_fit(x, y), "origin": linear_fit(x, y, through_origin=True),
            "p_perm": permutation_correlation(x, y, n_perm, seed)["p"], "n_perm": n_perm,
            "x": x.tolist(), "y": y.tolist(),
            "n_agree": int(agree.sum()), "p_sign": sign_test(int(agree.sum()), len(sel)), "t": t,
            "left": {"n": int(left.sum()), "agree": int(agree[left].sum())},
            "right": {"n": int((~left).sum()), "agree": int(agree[~left].sum())}}


def across_models(rows_, t: int, groups=None) -> dict:
    """log10 rate against the mean over gaps of log10 L at timestep ``t``, over the rows of ``groups``
    (default: all): the pooled :func:`mode_interp.stats.linear_fit` with intercept (``slope``, ``lo``,
    ``hi``, ``r``, ...), ``x`` and ``y``; and ``replicates``: the slope fitted within each replicate seed
    (``by_seed``), their mean with its t-interval (``mean``, ``lo``, ``hi``) and ``n_negative``."""
    sel = _select(rows_, groups)
    if len(sel) < 3:
        raise ValueError(f"the across-model fit needs >= 3 models, got {len(sel)}")
    j = _column(sel, check_int("t", t, 0, None))
    x = np.array([np.log10(r["L"][:, j]).mean() for r in sel])
    y = np.array([math.log10((r["count"] + 0.5) / (r["n"] + 1)) for r in sel])
    seeds = sorted({r["seed"] for r in sel})
    by_seed = {s: linear_fit(x[m], y[m])["slope"] for s in seeds
               for m in [np.array([r["seed"] == s for r in sel])] if m.sum() >= 3}
    replicates = {"by_seed": by_seed, "n_negative": sum(v < 0 for v in by_seed.values()),
                  **(mean_interval(list(by_seed.values())) if len(by_seed) >= 2 else
                     {"mean": math.nan, "lo": math.nan, "hi": math.nan})}   # fewer than 2 replicates: no interval
    return {**linear_fit(x, y), "x": x.tolist(), "y": y.tolist(), "t": t, "replicates": replicates}


def slope_table(rows_, ts, same_mixture, held_out=()) -> str:
    """Per timestep of ``ts``: the median network L beside the optimal denoiser's (at the first row's first
    gap), the within-model fit and its permutation p, how often the steeper gap holds fewer samples (by
    which gap is steeper; ``held_out`` groups separately), and the across-model slope of the groups
    ``same_mixture`` (mean of the replicates' slopes, and how many are negative)."""
    same_mixture, held_out = _names("same_mixture", same_mixture), _names("held_out", held_out)
    held = [r for r in rows_ if r["group"] in held_out]
    gap = (rows_[0]["gaps"][0][1] - rows_[0]["gaps"][0][0]) / rows_[0]["config"].sigma
    table = []
    for t in ts:
        j = _column(rows_, t)
        w, a = within_model(rows_, t), across_models(rows_, t, same_mixture)["replicates"]
        row = [f"{t}", f"{np.median([r['L'][:, j] for r in rows_]):.1f}", f"{rows_[0]['L_optimal'][0, j]:.1f}",
               f"{w['slope']:.2f} [{w['lo']:.2f}, {w['hi']:.2f}]", f"{w['p_perm']:.1e}",
               f"{w['left']['agree']} of {w['left']['n']} / {w['right']['agree']} of {w['right']['n']}"]
        if held_out:
            row.append(f"{within_model(rows_, t, held_out)['n_agree']} of {len(held)}" if len(held) >= 3 else "–")
        row += [f"{a['mean']:.2f} [{a['lo']:.2f}, {a['hi']:.2f}]", f"{a['n_negative']} of {len(a['by_seed'])}"]
        table.append(row)
    head = ["t", "network L (median)", f"optimal L (gap {gap:.0f}σ)", "within: slope b [95%]",
            "within: permutation p", "steeper gap holds fewer (left steeper / right steeper)",
            *(["… held-out models"] if held_out else []), "across one mixture: slope [95%]", "replicates < 0"]
    return markdown_table(head, table)


def chapter_numbers(rows_, t: int, same_mixture, held_out=()) -> dict:
    """The numbers section 6.7 glues at the primary timestep ``t`` (``lip_origin_*``: the within-model fit
    through the origin, beside the one with an intercept)."""
    same_mixture, held_out = _names("same_mixture", same_mixture), _names("held_out", held_out)
    w, a = within_model(rows_, t), across_models(rows_, t, same_mixture)
    rep = a["replicates"]
    j = _column(rows_, t)
    held = within_model(rows_, t, held_out) if held_out else None
    ratio = np.array([r["L_optimal"][:, j] / r["L"][:, j] for r in rows_])
    verdict = (f"yes: within a model the steeper gap holds fewer samples (permutation p = {w['p_perm']:.0e}), and "
               "across one mixture's models the rate falls as L rises" if w["hi"] < 0 and rep["hi"] < 0 else
               "not resolved across these models")
    groups = {g: sum(r["group"] == g for r in rows_) for g in dict.fromkeys(r["group"] for r in rows_)}
    n_beyond = round(w["p_perm"] * (w["n_perm"] + 1)) - 1            # re-pairings at least as extreme
    perm_text = (f"none of {w['n_perm']:,} random re-pairings of the models gives a correlation this strong "
                 f"(p = {w['p_perm']:.0e}, the smallest this test can report)" if n_beyond == 0 else
                 f"{n_beyond:,} of {w['n_perm']:,} random re-pairings of the models give a correlation at least "
                 f"this strong (p = {w['p_perm']:.1e})")
    every_t = [across_models(rows_, s, same_mixture)["replicates"] for s in rows_[0]["ts"]]
    return {"lip_verdict": verdict, "lip_t": t, "lip_n_models": len(rows_), "lip_n_grid": rows_[0]["n_grid"],
            "lip_n_samples": rows_[0]["n"], "lip_t_last": rows_[0]["ts"][-1],
            **{f"lip_n_{g}": n for g, n in groups.items()},
            "lip_within_b": w["slope"], "lip_within_lo": w["lo"], "lip_within_hi": w["hi"],
            "lip_within_a": w["intercept"], "lip_within_r": w["r"], "lip_within_p_perm": w["p_perm"],
            "lip_n_perm": w["n_perm"], "lip_origin_b": w["origin"]["slope"], "lip_origin_lo": w["origin"]["lo"],
            "lip_origin_hi": w["origin"]["hi"], "lip_agree": w["n_agree"], "lip_agree_n": len(w["x"]),
            "lip_left_n": w["left"]["n"], "lip_left_agree": w["left"]["agree"], "lip_right_n": w["right"]["n"],
            "lip_right_agree": w["right"]["agree"],
            "lip_across_b": rep["mean"], "lip_across_lo": rep["lo"], "lip_across_hi": rep["hi"],
            "lip_across_n_reps": len(rep["by_seed"]), "lip_across_n": len(a["x"]), "lip_across_r": a["r"],
            "lip_across_r2": a["r"] ** 2, "lip_perm_text": perm_text,
            "lip_across_negative": sum(e["n_negative"] for e in every_t),
            "lip_across_fits": sum(len(e["by_seed"]) for e in every_t),
            "lip_across_resolved": sum(e["hi"] < 0 for e in every_t), "lip_n_ts": len(every_t),
            "lip_held_agree": held["n_agree"] if held else 0, "lip_held_n": len(held["x"]) if held else 0,
            "lip_held_p_sign": held["p_sign"] if held else float("nan"),
            "lip_smoother_min": float(ratio.min()), "lip_smoother_max": float(ratio.max())}


def chapter_claims(rows_, t: int, same_mixture, alpha: float = 0.01) -> dict:
    """Section 6.7's claims at the primary timestep ``t`` (each can fail): the within-model slope's 95%
    upper end < 0, at ``t`` and at every measured timestep before it; its permutation test at level
    ``alpha``; and the across-model slope of the groups ``same_mixture`` (mean over replicates) with its
    95% upper end < 0."""
    same_mixture = _names("same_mixture", same_mixture)
    w, a = within_model(rows_, t), across_models(rows_, t, same_mixture)["replicates"]
    earlier = [s for s in rows_[0]["ts"] if s <= t]
    return {
        f"within a model the steeper gap holds fewer samples (slope b < 0 at its 95% upper end, t = {t})":
            w["hi"] < 0,
        f"... and at every measured t from {earlier[0]} to {t}": all(within_model(rows_, s)["hi"] < 0 for s in earlier),
        f"... not a chance pairing (permutation test across models, p < {alpha}, t = {t})": w["p_perm"] < alpha,
        f"across one mixture's models the rate falls as L rises (mean of the {len(a['by_seed'])} replicates' slopes, "
        f"95% upper end < 0, t = {t})": a["hi"] < 0,
    }


def recompute(records, rows_, n_train: int, seed: int = 0, rtol: float = 1e-3) -> dict:
    """Recompute, in this run, the ``boundary_lipschitz`` record among ``records`` whose model has
    ``n_train`` training points and replicate ``seed`` (from its trained model: the cache or a shipped
    checkpoint) and compare it with that model's row of ``rows_``: ``{"error": the largest absolute
    difference of L, "relative_error": the largest |difference| / |L| of the record, "source": where the
    weights came from, "sanity": the chapter's check that the relative error is below ``rtol``}``. The autograd
    runs in float32, whose rounding differs between CPUs (vector widths, fused multiply-adds): on another
    machine expect a relative difference of up to about 1e-3, not 0."""
    from .experiments import as_spec, compute

    specs = [r["spec"] for r in check_records("records", records, "boundary_lipschitz")
             if r["spec"]["model"].get("n_train") == n_train and r["spec"]["seed"] == seed]
    if len(specs) != 1:
        raise ValueError(f"records must hold one record with n_train {n_train} and seed {seed}, found {len(specs)}")
    live = compute("boundary_lipschitz", specs[0], command="chapter 6 §6.7 (live)")
    config = as_spec("boundary_lipschitz", specs[0]).config
    (row,) = [r for r in rows_ if r["config"] == config]
    diff = np.abs(np.array(live["result"]["learned"]) - row["L"])
    relative = float((diff / np.abs(row["L"])).max())
    return {"error": float(diff.max()), "relative_error": relative, "source": live["source"],
            "sanity": {f"§6.7's slopes recomputed in this run equal the shipped record (relative {rtol:g})": relative < rtol}}
