"""The denoiser's steepness at the boundaries and the hallucinated rate, across trained models (chapter 6,
section 6.7).

The paper's mechanism says a network that cannot be as steep as the optimal denoiser's step puts samples
between the modes. Its sharpest form, proposed by the Score-Control / VSM follow-up, ties the
hallucinated mass to the Lipschitz constant of the learned score. Here each trained 1-D model carries, per
gap between neighbouring modes and per timestep t, its local Lipschitz constant

    L_g(t) = max over the gap of |d x0_hat / d x_t|

(``boundary_lipschitz`` records, :func:`mode_interp.smoothing.boundary_lipschitz`), and its
``toy_model`` record carries the samples that landed in that gap, c_g. Two tests, on independent
trained models (one point per model, so each point carries its own run-to-run noise):

* **within a model**: the model's two gaps share its data set, its training run and its sampling seed, so
  everything but the gap is held fixed. The prediction is that the steeper gap holds fewer samples,

      y = ln((c_a + 1/2) / (c_b + 1/2)) = b ln(L_a / L_b) + noise,   b < 0,

  fitted through the origin (swapping the two gaps flips both signs), plus the exact sign test on how many
  models' steeper gap holds fewer (:func:`mode_interp.stats.sign_test`);
* **across models** of one mixture: ln(rate) against the mean of ln L_g over the gaps, with intercept.

Both are fitted by :func:`mode_interp.stats.linear_fit`. The 1/2 keeps a gap with no sample finite.
"""

from __future__ import annotations

import json

import numpy as np

from ._validate import check_int, check_records
from .report import markdown_table
from .stats import linear_fit, sign_test
from .toy_report import record_models


def _key(config) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


def rows(groups: dict) -> list:
    """One row per trained model: ``groups`` maps a group name to ``(slope_records, model_records)``
    (``boundary_lipschitz`` and ``toy_model`` records of the same models). A slope record pairs with the
    model record of the same replicate config; a model already seen in an earlier group is skipped, and a
    slope record without its model record is a ValueError. Each row: ``group``, ``config``, ``seed``,
    ``count``, ``n``, ``rate`` (the hallucinated fraction), ``gap_counts`` (per gap), ``gaps``, ``ts``,
    ``L`` and ``L_optimal`` (arrays of shape (n_gaps, len(ts)))."""
    from .experiments.lipschitz import BoundaryLipschitz

    if not isinstance(groups, dict) or not groups:
        raise ValueError(f"groups must map group names to (slope_records, model_records), got {groups!r}")
    out, seen = [], set()
    for group, pair in groups.items():
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"groups[{group!r}] must be (slope_records, model_records), got {type(pair).__name__}")
        slopes = check_records(f"groups[{group!r}][0]", pair[0], "boundary_lipschitz")
        models = {_key(m["config"]): m for m in record_models(pair[1])}
        for rec in slopes:
            config = BoundaryLipschitz.from_dict(rec["spec"]).config
            key = _key(config)
            if key in seen:
                continue
            if key not in models:
                raise ValueError(f"groups[{group!r}]: no toy_model record for the model of slope record "
                                 f"(seed {rec['seed']}, n_train {config.n_train}, means {list(config.means)})")
            seen.add(key)
            row, r = models[key]["row"], rec["result"]
            h = row["hallucination"]
            out.append({"group": group, "config": config, "seed": rec["seed"], "count": h["count"], "n": h["n"],
                        "rate": h["rate"], "gap_counts": [g["count"] for g in row["gaps"]], "gaps": r["gaps"],
                        "ts": list(r["ts"]), "L": np.array(r["learned"]), "L_optimal": np.array(r["optimal"])})
    return out


def _column(rows_, t: int) -> int:
    ts = rows_[0]["ts"]
    if any(r["ts"] != ts for r in rows_):
        raise ValueError("every row must be measured at the same timesteps")
    if t not in ts:
        raise ValueError(f"t must be one of the measured timesteps {ts}, got {t!r}")
    return ts.index(t)


def within_model(rows_, t: int, groups=None) -> dict:
    """The within-model test at timestep ``t`` (module docstring) on the rows of ``groups`` (default:
    all), models with two gaps: :func:`mode_interp.stats.linear_fit` through the origin, plus ``x`` and
    ``y`` per model, ``n_agree`` (models whose steeper gap holds fewer samples; a tie in either counts
    against) and ``p_sign`` (the exact one-sided sign test)."""
    sel = [r for r in rows_ if groups is None or r["group"] in groups]
    sel = [r for r in sel if len(r["gap_counts"]) == 2]
    if len(sel) < 3:
        raise ValueError(f"the within-model test needs >= 3 models with two gaps, got {len(sel)}")
    j = _column(sel, check_int("t", t, 0, None))
    x = np.array([np.log(r["L"][0, j] / r["L"][1, j]) for r in sel])
    y = np.array([np.log((r["gap_counts"][0] + 0.5) / (r["gap_counts"][1] + 0.5)) for r in sel])
    n_agree = int((np.sign(x) * np.sign(y) < 0).sum())
    return {**linear_fit(x, y, through_origin=True), "x": x.tolist(), "y": y.tolist(), "n_agree": n_agree,
            "p_sign": sign_test(n_agree, len(sel)), "t": t}


def across_models(rows_, t: int, groups=None) -> dict:
    """ln(rate) against the mean over gaps of ln L at timestep ``t``, over the rows of ``groups`` (default:
    all): :func:`mode_interp.stats.linear_fit` with intercept, plus ``x`` and ``y``."""
    sel = [r for r in rows_ if groups is None or r["group"] in groups]
    if len(sel) < 3:
        raise ValueError(f"the across-model fit needs >= 3 models, got {len(sel)}")
    j = _column(sel, check_int("t", t, 0, None))
    x = np.array([np.log(r["L"][:, j]).mean() for r in sel])
    y = np.array([np.log((r["count"] + 0.5) / (r["n"] + 1)) for r in sel])
    return {**linear_fit(x, y), "x": x.tolist(), "y": y.tolist(), "t": t}


def _fit_cells(f: dict) -> list:
    return [f"{f['slope']:.2f} [{f['lo']:.2f}, {f['hi']:.2f}]", f"{f['r']:.2f}"]


def slope_table(rows_, ts, same_mixture, held_out=()) -> str:
    """Per timestep of ``ts``: the median network L beside the optimal denoiser's (first row's first gap),
    the within-model fit on all models and the sign count, and the across-model fit on the groups
    ``same_mixture`` (one mixture: only training differs). ``held_out`` groups' sign count is its own
    column."""
    table = []
    for t in ts:
        j = _column(rows_, t)
        w, a = within_model(rows_, t), across_models(rows_, t, same_mixture)
        held = [r for r in rows_ if r["group"] in held_out]
        agree = within_model(rows_, t, held_out)["n_agree"] if len(held) >= 3 else None
        table.append([f"{t}", f"{np.median([r['L'][:, j] for r in rows_]):.1f}", f"{rows_[0]['L_optimal'][0, j]:.1f}",
                      *_fit_cells(w), f"{w['n_agree']} of {w['n']}",
                      *([f"{agree} of {len(held)}"] if held_out else []), *_fit_cells(a)])
    head = ["t", "network L (median)", "optimal L (gap 20σ)", "within: slope b [95%]", "within: r",
            "steeper gap holds fewer", *(["… held-out models"] if held_out else []),
            "across: slope [95%]", "across: r"]
    return markdown_table(head, table)


def chapter_numbers(rows_, t: int, same_mixture, held_out=()) -> dict:
    """The numbers section 6.7 glues at the primary timestep ``t`` (``lip_within_free_*``: the within-model
    fit with an intercept, which would absorb a difference between the left and the right gap)."""
    w, a = within_model(rows_, t), across_models(rows_, t, same_mixture)
    j = _column(rows_, t)
    held = within_model(rows_, t, held_out) if held_out else None
    ratio = np.array([r["L_optimal"][:, j] / r["L"][:, j] for r in rows_])
    rates = np.array([r["rate"] for r in rows_])
    verdict = (f"yes: the steeper gap holds fewer samples in {w['n_agree']} of {w['n']} models, and across one "
               f"mixture's models the rate falls as L rises" if w["hi"] < 0 and a["hi"] < 0 else
               "not resolved across these models")
    free = linear_fit(w["x"], w["y"])          # with an intercept: a systematic left / right gap difference
    return {"lip_verdict": verdict, "lip_t": t, "lip_n_models": len(rows_),
            "lip_within_free_b": free["slope"], "lip_within_free_lo": free["lo"], "lip_within_free_hi": free["hi"],
            "lip_within_free_a": free["intercept"], "lip_within_b": w["slope"], "lip_within_lo": w["lo"],
            "lip_within_hi": w["hi"], "lip_within_r": w["r"], "lip_within_p": w["p_one_sided"],
            "lip_agree": w["n_agree"], "lip_agree_n": w["n"], "lip_p_sign": w["p_sign"],
            "lip_across_b": a["slope"], "lip_across_lo": a["lo"], "lip_across_hi": a["hi"], "lip_across_r": a["r"],
            "lip_across_n": a["n"], "lip_across_p": a["p_one_sided"],
            "lip_held_agree": held["n_agree"] if held else 0, "lip_held_n": held["n"] if held else 0,
            "lip_smoother_min": float(ratio.min()), "lip_smoother_max": float(ratio.max()),
            "lip_rate_min": float(rates.min()), "lip_rate_max": float(rates.max())}


def chapter_claims(rows_, t: int, same_mixture, held_out=(), alpha: float = 0.01) -> dict:
    """Section 6.7's claims at the primary timestep ``t`` (each can fail): the within-model slope's 95%
    upper end < 0, the sign test at level ``alpha``, the across-model slope's upper end < 0 on the groups
    ``same_mixture``; both upper ends < 0 at every measured timestep up to ``t`` as well; and every network
    smoother than the optimal denoiser at every gap."""
    w, a = within_model(rows_, t), across_models(rows_, t, same_mixture)
    j = _column(rows_, t)
    earlier = [s for s in rows_[0]["ts"] if s <= t]
    return {
        f"both fits' 95% upper ends < 0 at every measured t from {earlier[0]} to {t}":
            all(within_model(rows_, s)["hi"] < 0 and across_models(rows_, s, same_mixture)["hi"] < 0
                for s in earlier),
        f"within a model the steeper gap holds fewer samples (slope b < 0 at its 95% upper end, t = {t})":
            w["hi"] < 0,
        f"the steeper gap holds fewer in {w['n_agree']} of {w['n']} models (sign test p < {alpha})":
            w["p_sign"] < alpha,
        f"across models of one mixture the rate falls as L rises (slope's 95% upper end < 0, t = {t})": a["hi"] < 0,
        "every network is less steep than the optimal denoiser at every gap (L < L*)":
            all(bool((r["L"][:, j] < r["L_optimal"][:, j]).all()) for r in rows_),
    }
