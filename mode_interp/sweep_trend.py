"""A replicated sweep's hallucinated rate against the swept quantity, and its trend across replicates.

Chapter 2 asks whether interpolation grows as the training set shrinks (the size sweep) and as the modes
move closer (the gap sweep). Every value of such a sweep is R independent replicates (training set,
initialisation and samples drawn afresh: ``toy_model`` records, :mod:`mode_interp.experiments.models`),
and the question is answered across them, not from one run's binomial interval:

* per swept value x: the replicates' rates, their mean with its 95% t-interval across replicates
  (:func:`mode_interp.stats.mean_interval`), and how many replicates pass the quality gate;
* the trend: for each replicate r, the least-squares slope of ``y = log10 rate`` on ``u = log10 x``
  (``log_x``) or on ``u = x``, fitted on that replicate's **gated** models only,

  .. math:: b_r = \\frac{\\sum_i (u_i - \\bar u)(y_i - \\bar y)}{\\sum_i (u_i - \\bar u)^2},\\qquad
            y_i = \\log_{10}\\frac{c_i + 1/2}{n_i + 1}

  (``c_i`` hallucinated of ``n_i`` samples; the 1/2 keeps a zero count finite); then the mean slope over
  replicates with its 95% t-interval, the one-sided t-test and the exact sign-flip test for the direction
  the paper states (:func:`mode_interp.stats.paired_test` against 0), and the fold change of the rate over
  the swept range, ``10^(b (u_max - u_min))``, with the same interval.

The slope's interval is the run-to-run spread of whole replicates; the binomial noise of each rate is
inside it (a few hundred counts per model at 200,000 samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validate import check_bool, check_choice, check_instance, check_records
from .report import markdown_table
from .stats import mean_interval, paired_test

X_KINDS = ("n_train", "gap", "step")


def _x_of(model: dict, x: str) -> float:
    """The swept quantity of a ``toy_model`` record's model dict: its training-set size, or its smallest gap
    between neighbouring modes in units of sigma."""
    if x == "n_train":
        return float(model["n_train"])
    means = np.sort(np.asarray(model["means"], dtype=float))
    if len(means) < 2:
        raise ValueError(f"a gap needs at least two modes, got means {model['means']}")
    return float(np.min(np.diff(means)) / model["sigma"])


def points(records, x: str) -> list:
    """One point per ``toy_model`` record (its last measured step), or with ``x="step"`` one per snapshot of
    every record (a training run's rows): ``x`` (``"n_train"``, ``"gap"`` in units of sigma, or ``"step"``),
    ``seed``, ``count``, ``n``, ``rate`` with its Wilson ``lo`` / ``hi``, the true mixture's ``true_rate``,
    the gate's ``passed``, ``within``, ``median_spread``, ``worst_spread`` and ``blurred``, and the record's
    ``precision``; sorted by x, then seed."""
    check_choice("x", x, X_KINDS)
    out = []
    for rec in check_records("records", records, "toy_model"):
        for row in rec["result"]["rows"] if x == "step" else rec["result"]["rows"][-1:]:
            out.append(_point(rec, row, float(row["step"]) if x == "step" else _x_of(rec["spec"]["model"], x)))
    if not out:
        raise ValueError("records is empty")
    keys = [(p["x"], p["seed"]) for p in out]
    if len(set(keys)) != len(keys):
        raise ValueError("two records share a swept value and a replicate seed")
    return sorted(out, key=lambda p: (p["x"], p["seed"]))


def _point(rec: dict, row: dict, x: float) -> dict:
    h, g = row["hallucination"], row["gate"]
    return {"x": x, "seed": rec["spec"].get("seed", 0), "count": h["count"], "n": h["n"], "rate": h["rate"],
            "lo": h["lo"], "hi": h["hi"], "true_rate": h["true_rate"], "passed": g["passed"], "within": g["within"],
            "median_spread": g["median_spread_ratio"], "worst_spread": g["worst_spread_ratio"],
            "blurred": g["blurred"], "step": row["step"],
            "precision": rec.get("precision", "not recorded")}


def by_value(pts) -> list:
    """Per swept value: ``x``, the replicates' ``seeds`` and ``rates``, their ``mean`` with its 95%
    t-interval ``lo`` / ``hi`` across replicates (NaN for one replicate), ``n_seeds`` and ``n_passed``
    (replicates that pass the gate), and the gate's numbers over replicates: mean ``within`` and
    ``median_spread``, largest ``worst_spread``."""
    out = []
    for x in sorted({p["x"] for p in pts}):
        group = [p for p in pts if p["x"] == x]
        rates = [p["rate"] for p in group]
        m = mean_interval(rates) if len(rates) > 1 else {"mean": rates[0], "lo": math.nan, "hi": math.nan}
        out.append({"x": x, "seeds": [p["seed"] for p in group], "rates": rates, "mean": m["mean"], "lo": m["lo"],
                    "hi": m["hi"], "n_seeds": len(group), "n_passed": sum(p["passed"] for p in group),
                    "within": float(np.mean([p["within"] for p in group])),
                    "median_spread": float(np.mean([p["median_spread"] for p in group])),
                    "worst_spread": max(p["worst_spread"] for p in group)})
    return out


def _log_rate(p: dict) -> float:
    return math.log10((p["count"] + 0.5) / (p["n"] + 1))


def fit(pts, log_x: bool = True, direction: str = "less") -> dict:
    """The trend across replicates (module docstring): per-replicate ``slopes`` and ``intercepts`` (of log10
    rate on u), ``seeds``, their ``mean`` slope with 95% ``lo`` / ``hi``, ``p_one_sided`` (t-test) and
    ``p_sign_flip`` for the slope's sign being ``direction`` ("less": the rate falls as x grows;
    "greater": it rises), ``n_agree`` replicates whose slope has that sign, the ``fold`` change of the rate
    over the swept range ``span`` (in u) with ``fold_lo`` / ``fold_hi``, and ``excluded``: the (x, seed)
    pairs left out because they fail the gate. Needs >= 2 replicates with >= 2 gated values each."""
    check_bool("log_x", log_x)
    check_choice("direction", direction, ("less", "greater"))
    seeds = sorted({p["seed"] for p in pts})
    slopes, intercepts, used = [], [], []
    for s in seeds:
        gated = [p for p in pts if p["seed"] == s and p["passed"]]
        if len({p["x"] for p in gated}) < 2:
            continue
        u = np.array([math.log10(p["x"]) if log_x else p["x"] for p in gated])
        y = np.array([_log_rate(p) for p in gated])
        b = float(np.sum((u - u.mean()) * (y - y.mean())) / np.sum((u - u.mean()) ** 2))
        slopes.append(b)
        intercepts.append(float(y.mean() - b * u.mean()))
        used.append(s)
    if len(slopes) < 2:
        raise ValueError(f"a trend across replicates needs >= 2 replicates with >= 2 gated models each; "
                         f"got {len(slopes)} (seeds {used})")
    test = paired_test(slopes, np.zeros(len(slopes)), alternative=direction)
    xs = [p["x"] for p in pts]
    span = (math.log10(max(xs)) - math.log10(min(xs))) if log_x else max(xs) - min(xs)
    return {"slopes": slopes, "intercepts": intercepts, "seeds": used, "mean": test["mean"], "lo": test["lo"],
            "hi": test["hi"], "p_one_sided": test["p_one_sided"], "p_sign_flip": test["p_sign_flip"],
            "n_agree": test["n_agree"], "direction": direction, "log_x": log_x, "span": span,
            "x_min": min(xs), "x_max": max(xs), "fold": 10 ** (test["mean"] * span),
            "fold_lo": 10 ** (test["lo"] * span), "fold_hi": 10 ** (test["hi"] * span),
            "excluded": [(p["x"], p["seed"]) for p in pts if not p["passed"]]}


def resolved(trend: dict) -> str:
    """``"as stated"`` when the slope's 95% interval lies wholly on the stated side of 0, ``"against"``
    when it lies wholly on the other side, ``"unresolved"`` otherwise."""
    stated_below = trend["direction"] == "less"
    if (trend["hi"] < 0) if stated_below else (trend["lo"] > 0):
        return "as stated"
    if (trend["lo"] > 0) if stated_below else (trend["hi"] < 0):
        return "against"
    return "unresolved"


def _x_text(x: float, kind: str) -> str:
    return {"n_train": f"N = {x:,.0f}", "gap": f"gap {x:g}σ", "step": f"{x:,.0f} steps"}[kind]


def table(pts, kind: str, gate_columns: bool = False) -> str:
    """Markdown table of a replicated sweep: per swept value, each replicate's rate (``*`` marks a model that
    fails the gate), the mean over replicates with its 95% interval, and the gated count; with
    ``gate_columns``, also the gate's numbers (:func:`by_value`: mean within-3-sigma share, mean median mode
    spread over the exact chain's, widest mode)."""
    check_choice("kind", kind, X_KINDS)
    check_bool("gate_columns", gate_columns)
    rows = by_value(pts)
    seeds = sorted({p["seed"] for p in pts})
    body = []
    for r in rows:
        cells = []
        for s in seeds:
            p = next((p for p in pts if p["x"] == r["x"] and p["seed"] == s), None)
            cells.append("" if p is None else f"{p['rate']:.3%}" + ("" if p["passed"] else " *"))
        interval = f" [{r['lo']:.3%}, {r['hi']:.3%}]" if np.isfinite(r["lo"]) else ""
        gate = [f"{r['within']:.1%}", f"{r['median_spread']:.2f} / {r['worst_spread']:.2f}"] if gate_columns else []
        body.append([_x_text(r["x"], kind), *cells, f"{r['mean']:.3%}{interval}", *gate,
                     f"{r['n_passed']} of {r['n_seeds']}"])
    gate_head = ["within 3σ (mean)", "mode spread / exact chain's: mean median / widest"] if gate_columns else []
    return markdown_table(["model", *[f"replicate {s}" for s in seeds], "mean (95% across replicates)", *gate_head,
                           "pass the gate"], body)


def reading(trend: dict, kind: str, paper_says: str, source: str = "the paper") -> str:
    """The trend in words: the mean slope with its interval and tests, the fold change over the range, the
    replicates that agree, models left out by the gate, and the verdict against ``paper_says``, the
    direction that ``source`` states."""
    check_choice("kind", kind, X_KINDS)
    unit = {("n_train", True): "per decade of N", ("n_train", False): "per unit of N",
            ("gap", True): "per decade of the gap", ("gap", False): "per σ of gap",
            ("step", True): "per decade of training steps",
            ("step", False): "per training step"}[(kind, trend["log_x"])]
    verdict = {"as stated": f"the trend {source} states ({paper_says}) holds across replicates",
               "against": f"the rate moves *against* the trend {source} states ({paper_says}) across replicates",
               "unresolved": f"the replicates do not resolve a trend either way ({source}: {paper_says})"}[resolved(trend)]
    text = (f"Slope of log10 rate {unit}: {trend['mean']:+.3f} [{trend['lo']:+.3f}, {trend['hi']:+.3f}] (95%, "
            f"{len(trend['slopes'])} replicates; one-sided t-test p = {trend['p_one_sided']:.3f}, sign-flip p = "
            f"{trend['p_sign_flip']:.3f}; {trend['n_agree']} of {len(trend['slopes'])} replicates slope the "
            f"stated way). From {_x_text(trend['x_min'], kind)} to {_x_text(trend['x_max'], kind)} the rate "
            f"changes by a factor {trend['fold']:.2f} [{trend['fold_lo']:.2f}, {trend['fold_hi']:.2f}].")
    if trend["excluded"]:
        text += " Left out (fail the gate): " + ", ".join(f"{_x_text(x, kind)} replicate {s}"
                                                         for x, s in trend["excluded"]) + "."
    return text + f" Verdict: {verdict}."


def numbers(trend: dict | None, pts) -> dict:
    """The named numbers of a trend that a chapter glues (with ``trend`` None, e.g. a single replicate, only
    those of the points): ``slope``, ``slope_lo``, ``slope_hi``, ``p``,
    ``p_sign_flip``, ``n_agree``, ``n_replicates``, ``fold``, ``fold_lo``, ``fold_hi``, ``verdict``,
    ``n_models``, ``n_passed``, ``n_samples`` (per model), ``rate_first`` / ``rate_last`` (mean rates at
    the smallest and largest swept value), ``replicate_spread`` (the largest ratio of two replicates' rates
    at one swept value), ``value_spread`` (the largest ratio of two swept values' mean rates), the gate at the
    largest value (``last_n_passed``, ``last_within``, ``last_median_spread``, ``last_worst_spread``) and
    ``first_all_passed``, the smallest value at which every replicate passes (NaN if none), ``n_seeds``,
    ``n_values`` and the smallest and largest values ``x_first`` / ``x_last``."""
    rows = by_value(pts)
    every = [r["x"] for r in rows if r["n_passed"] == r["n_seeds"]]
    spread = max(max(r["rates"]) / max(min(r["rates"]), 1e-12) for r in rows)
    means = [r["mean"] for r in rows]
    fitted = {} if trend is None else {
        "slope": trend["mean"], "slope_lo": trend["lo"], "slope_hi": trend["hi"], "p": trend["p_one_sided"],
        "p_sign_flip": trend["p_sign_flip"], "n_agree": trend["n_agree"], "n_replicates": len(trend["slopes"]),
        "fold": trend["fold"], "fold_lo": trend["fold_lo"], "fold_hi": trend["fold_hi"], "verdict": resolved(trend)}
    return {**fitted, "n_models": len(pts), "n_passed": sum(p["passed"] for p in pts),
            "n_seeds": len({p["seed"] for p in pts}), "n_values": len(rows), "x_first": rows[0]["x"],
            "x_last": rows[-1]["x"],
            "n_samples": min(p["n"] for p in pts), "rate_first": rows[0]["mean"], "rate_last": rows[-1]["mean"],
            "replicate_spread": spread, "value_spread": max(means) / max(min(means), 1e-12),
            "last_n_passed": rows[-1]["n_passed"], "last_within": rows[-1]["within"],
            "last_median_spread": rows[-1]["median_spread"], "last_worst_spread": rows[-1]["worst_spread"],
            "first_all_passed": every[0] if every else math.nan}


REPLICATE_FIELDS = ("seed", "data_seed", "precision")   # what may differ between replicates of one training run


@dataclass
class Study:
    """A replicated sweep as a chapter reads it: the :func:`points` of its records (``kind``), the
    :func:`fit` of their ``trend`` (None when nothing is fitted: no direction ``says`` is stated, or a single
    replicate), the first record's model ``recipe``, and the chapter's table, reading (against ``says``, the
    direction that ``source`` states), glue numbers and figure (x axis ``x_label``) as methods."""

    points: list
    trend: dict | None
    kind: str
    x_label: str
    recipe: dict
    says: str | None = None
    source: str = "the paper"
    log_x: bool = True

    def table(self, gate_columns: bool = False) -> str:
        return table(self.points, self.kind, gate_columns)

    def reading(self) -> str:
        if self.trend is None:
            n = len({p["seed"] for p in self.points})
            why = "no direction is stated, so none is tested" if self.says is None else "a single replicate"
            return (f"No trend across replicates is fitted ({why}; {n} replicate{'' if n == 1 else 's'}), "
                    "and none is claimed.")
        return reading(self.trend, self.kind, self.says, self.source)

    def numbers(self) -> dict:
        """:func:`numbers`, plus ``first_all_passed_text`` (the value in words, or "none of them"),
        ``precisions`` (of the records, comma-separated) and the first record's scalar model fields as
        ``recipe_<field>`` (with ``recipe_epochs`` = steps x batch / N)."""
        out = numbers(self.trend, self.points)
        every = out["first_all_passed"]
        recipe = {f"recipe_{k}": v for k, v in self.recipe.items() if isinstance(v, (int, float, str))}
        if {"steps", "batch_size", "n_train"} <= set(self.recipe):
            recipe["recipe_epochs"] = self.recipe["steps"] * self.recipe["batch_size"] / self.recipe["n_train"]
        return {**out, **recipe, "precisions": ", ".join(sorted({p["precision"] for p in self.points})),
                "first_all_passed_text": _x_text(every, self.kind) if math.isfinite(every) else "none of them"}

    def plot(self):
        from .plots import plot_replicated_sweep
        fig = plot_replicated_sweep([(self.x_label, self.points, self.trend)])
        if not self.log_x:
            fig.axes[0].set_xscale("linear")
        return fig


def study(records, kind: str, x_label: str, says: str | None = None, log_x: bool = True, direction: str = "less",
          source: str = "the paper") -> Study:
    """The :class:`Study` of ``toy_model`` records swept over ``kind`` (:data:`X_KINDS`): :func:`points`,
    then, where a direction ``says`` is stated and the records hold two replicates or more, :func:`fit` with
    ``log_x`` and ``direction``. With ``kind="step"`` the records must be replicates of one training run:
    their models may differ only in :data:`REPLICATE_FIELDS`."""
    check_choice("kind", kind, X_KINDS)
    check_instance("x_label", x_label, str)
    if says is not None:
        check_instance("says", says, str, " or None")
    check_bool("log_x", log_x)
    check_choice("direction", direction, ("less", "greater"))
    records = check_records("records", records, "toy_model")
    if not records:
        raise ValueError("records is empty")
    if kind == "step":
        first = records[0]["spec"]["model"]
        for rec in records[1:]:
            model = rec["spec"]["model"]
            for field in sorted((set(first) | set(model)) - set(REPLICATE_FIELDS)):
                if model.get(field) != first.get(field):
                    raise ValueError(f"records must be replicates of one training run: model.{field} is "
                                     f"{model.get(field)!r} in one and {first.get(field)!r} in another")
    pts = points(records, kind)
    fitted = says is not None and len({p["seed"] for p in pts}) >= 2
    return Study(pts, fit(pts, log_x, direction) if fitted else None, kind, x_label, dict(records[0]["spec"]["model"]),
                 says, source, log_x)
