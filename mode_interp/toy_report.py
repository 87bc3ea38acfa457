"""Chapter 2's reporting of learned toy models: sample a trained model, measure it with the one definition
of a toy model's numbers (:func:`mode_interp.experiments.models.measure`: the hallucinated fraction with its
Wilson interval, the strict quality gate, where the off-mode mass lies) and turn the measurements into the
chapter's tables, readings and glued numbers.

A *measured model* is the dict :func:`measure_model` returns: ``label``, ``config``, ``source`` (where the
weights came from), ``train_seconds``, ``x`` (the samples) and ``m`` (the :func:`measure` record).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._validate import check_bool, check_float, check_instance, check_int, check_records
from .data import origin_mode
from .report import in_words, markdown_table


def measure_model(label: str, config, n_samples: int, seed: int = 0, retrain: bool = False,
                  k_label: float = 5.0, k_gate: float = 3.0, z: float = 3.29, trained=None,
                  share_window: int = 0) -> dict:
    """Load (or train) ``config`` through :func:`mode_interp.train.load_or_train`, draw ``n_samples``
    samples with sampling seed ``seed`` and measure them (:func:`mode_interp.experiments.models.measure`
    at ``k_label`` / ``k_gate`` sigma, intervals at ``z``). ``trained`` skips the loading (a model in hand).
    ``share_window`` > 0: the draw keeps x0_hat and x_t over its last ``share_window`` steps and goes to the
    sample cache (``TrainedModel.sample(cache=True)``), where chapter 4's detector reads the same draw back."""
    from .train import ToyConfig, TrainedModel, load_or_train

    check_instance("label", label, str)
    check_instance("config", config, ToyConfig)
    n_samples = check_int("n_samples", n_samples, 1, None)
    seed = check_int("seed", seed, 0, None)
    check_bool("retrain", retrain)
    if trained is None:
        trained = load_or_train(config, retrain=retrain)
    check_instance("trained", trained, TrainedModel)
    share_window = check_int("share_window", share_window, 0, config.T)
    drawn = (trained.sample(n_samples, seed, window=share_window, keep_x_t=True, cache=True) if share_window
             else trained.sample(n_samples, seed))
    row = measure_samples(label, drawn.x0, config, k_label, k_gate, z)
    return {**row, "source": trained.source, "train_seconds": float(trained.seconds)}


def measure_samples(label: str, x, config, k_label: float = 5.0, k_gate: float = 3.0, z: float = 3.29) -> dict:
    """A measured model from samples ``x`` of ``config``'s mixture drawn by any sampler (e.g. the exact
    score's): ``label``, ``config``, ``x`` and ``m``, the :func:`mode_interp.experiments.models.measure`
    record."""
    from .experiments.models import measure
    from .train import ToyConfig

    check_instance("label", label, str)
    check_instance("config", config, ToyConfig)
    return {"label": label, "config": config, "source": "", "x": x, "m": measure(x, config, k_label, k_gate, z)}


def decayed(config, extra_steps: int, late_lr: float):
    """``config`` trained ``extra_steps`` more steps at ``late_lr`` (a step decay:
    :meth:`mode_interp.train.ToyConfig.continued`), or ``config`` itself when ``extra_steps`` is 0."""
    extra_steps = check_int("extra_steps", extra_steps, 0, None)
    return config.continued(extra_steps, late_lr) if extra_steps else config


def _check_measured(rows) -> list:
    rows = list(rows) if isinstance(rows, (list, tuple)) else [rows]
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not {"label", "m"} <= set(r):
            raise TypeError(f"rows[{i}] must be a measured model (measure_model's dict), got {type(r).__name__}")
    return rows


def _ratios(values, few: bool) -> str:
    v = np.asarray(values, dtype=np.float64)
    return ", ".join(f"{a:.2f}" for a in v) if few else f"{v.min():.2f}–{v.max():.2f}"


def hal_cells(h: dict) -> list:
    """The count, rate and interval cells of a hallucination summary (``count``, ``rate``, ``lo``, ``hi``)."""
    return [f"{h['count']:,}", f"{h['rate']:.2e}", f"[{h['lo']:.1e}, {h['hi']:.1e}]"]


def gate_table(rows, k_gate: float = 3.0, k_label: float = 5.0, columns: str = "gate") -> str:
    """Markdown table of measured models: samples, share within ``k_gate`` sigma, each mode's spread over
    the exact chain's predicted width and weight x K (ranges and the median for many modes), the strict
    gate's verdict; ``columns="full"`` adds the hallucinated count, rate, interval, true rate and source."""
    rows = _check_measured(rows)
    if columns not in ("gate", "full"):
        raise ValueError(f"columns must be 'gate' or 'full', got {columns!r}")
    head = ["model", "samples", f"within {k_gate:g}σ", "spread / exact chain's", "weight × K", "gate"]
    if columns == "full":
        head += [f"> {k_label:g}σ count", "rate", "99.9% interval", "true rate", "source"]
    body = []
    for r in rows:
        g, h = r["m"]["gate"], r["m"]["hallucination"]
        few = len(g["spread_ratio"]) <= 4
        spread = _ratios(g["spread_ratio"], few)
        if not few:
            spread += f" (median {g['median_spread_ratio']:.2f}; {len(g['blurred'])} blurred)"
        row = [r["label"], f"{h['n']:,}", f"{g['within']:.1%}", spread, _ratios(g["weight_ratio"], few),
               "pass" if g["passed"] else "**fail**"]
        if columns == "full":
            row += [*hal_cells(h), f"{h['true_rate']:.1e}", r.get("source", "")]
        body.append(row)
    return markdown_table(head, body)


def hallucination_table(rows, k_label: float = 5.0) -> str:
    """Markdown table of the hallucinated fraction (> ``k_label`` sigma from every mode) of measured models,
    with 99.9% Wilson intervals, the true mixture's rate and the lower bound's multiple of it."""
    rows = _check_measured(rows)
    body = []
    for r in rows:
        h = r["m"]["hallucination"]
        body.append([r["label"], f"{h['n']:,}", *hal_cells(h), f"{h['true_rate']:.1e}", f"{h['ratio_lo']:,.0f}×"])
    return markdown_table(["model", "samples", f"> {k_label:g}σ from every mode", "rate", "99.9% Wilson interval",
                           "true mixture rate", "lower bound / true rate"], body)


def gap_table(row, k_label: float = 5.0) -> str:
    """Markdown table of a 1-D measured model's off-mode samples in each open gap between neighbouring
    modes (beyond ``k_label`` sigma of both ends), and per unit of open-gap length."""
    (row,) = _check_measured(row)
    if "gaps" not in row["m"]:
        raise ValueError("gap_table takes a 1-D model's measurement (it has no 'gaps')")
    return markdown_table(["gap", "width (raw)", f"samples in the open gap (> {k_label:g}σ from both ends)",
                           "per unit of open length"],
                          [[f"{a:g}–{b:g}", f"{b - a:g}", f"{g['count']:,}", f"{g['per_unit_length']:,.0f}"]
                           for g in row["m"]["gaps"] for a, b in [g["between"]]])


def gap_reading(row) -> str:
    """One sentence on a 1-D measured model's widest gap against the others, per unit of open length (the
    counts of :func:`gap_table`): how many times fewer (or more) samples per unit length the widest gap
    holds than the mean of the others, and whether the model passes the gate (if not, a reading, not a
    finding)."""
    (row,) = _check_measured(row)
    gaps = row["m"].get("gaps")
    if not gaps or len(gaps) < 2:
        raise ValueError("gap_reading takes a 1-D model with at least two gaps")
    wide = max(gaps, key=lambda g: g["between"][1] - g["between"][0])
    others = [g["per_unit_length"] for g in gaps if g is not wide]
    mean = sum(others) / len(others)
    a, b = wide["between"]
    per, head = wide["per_unit_length"], f"Per unit of open length the wide {a:g}–{b:g} gap holds"
    if per < mean:
        text = (f"{head} {mean / max(per, 1e-12):.1f}× fewer samples than the other gaps' mean ({per:,.0f} against "
                f"{mean:,.0f}): the mass concentrates between the close neighbours, as nearest-neighbour "
                "interpolation predicts")
    else:
        text = (f"{head} as many samples as the other gaps' mean or more ({per:,.0f} against {mean:,.0f}), against "
                "nearest-neighbour interpolation")
    g = row["m"]["gate"]
    return text + (". The model passes the gate." if g["passed"] else
                   f"; the model fails the gate ({g['within']:.1%} within the gate's distance, median spread "
                   f"{g['median_spread_ratio']:.2f}×), so this is a reading of one under-trained model, not a "
                   "finding.")


def _gap_name(a: float, b: float) -> str:
    """The glue name of the gap between modes a and b: ``gap_12`` (1.5 is written 1p5)."""
    return "gap_" + "".join(f"{v:g}".replace(".", "p") for v in (a, b))


def gap_replicates(rows, k_label: float = 5.0, confidence: float = 0.95) -> dict:
    """Across replicates of a 1-D model with one gap wider than the others (e.g. modes 1, 2, 4, 5): does the
    wide gap hold fewer off-mode samples per unit of open length than the narrow ones?

    Per replicate, with c_j the samples in open gap j (beyond ``k_label`` sigma of both ends, the distance
    the counts were made at: :func:`gap_table`), L_j its open length, Lbar the mean open length, w the widest
    gap and J the others, the density d_j = (c_j + L_j / (2 Lbar)) / L_j (a pseudo-count of half a sample
    per mean gap length, so that empty gaps have equal densities and a finite log) and the log ratio
        log d_w - log((1/|J|) sum_{j in J} d_j).
    Returns ``replicates`` (label, gate, counts, open lengths, densities, log ratio); over the replicates
    that pass the gate ``n_gated``, ``gated_counts`` (each gap's count summed over them), ``interval``
    (:func:`mode_interp.stats.mean_interval` of the log ratios at ``confidence``), ``ratio``, ``ratio_lo``,
    ``ratio_hi`` (its exponentiated mean and ends) and ``verdict``: ``"fewer"`` (the interval's upper end
    below 0: the closer modes hold more mass between them per unit length), ``"more"`` (its lower end above
    0) or ``"not resolved"``; these are None below 2 gated replicates or when the log ratios do not vary
    (no interval). Replicates must share the mixture's gaps and sigma.
    """
    from .stats import mean_interval

    rows = _check_measured(rows)
    k_label = check_float("k_label", k_label, 0.0, None, lo_open=True)
    confidence = check_float("confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True)
    reps = []
    for r in rows:
        gaps = r["m"].get("gaps")
        if not gaps or len(gaps) < 2:
            raise ValueError(f"{r['label']}: gap_replicates takes 1-D models with at least two gaps")
        between, sigma = [tuple(g["between"]) for g in gaps], r["config"].sigma
        if reps and (between != reps[0]["between"] or sigma != reps[0]["sigma"]):
            raise ValueError(f"rows must be replicates of one mixture: {r['label']} has gaps {between} and sigma "
                             f"{sigma}, {reps[0]['label']} {reps[0]['between']} and {reps[0]['sigma']}")
        open_len = [b - a - 2 * k_label * sigma for a, b in between]
        if min(open_len) <= 0:
            raise ValueError(f"k_label = {k_label:g} leaves no open gap between modes {between} at sigma {sigma}")
        for g, length in zip(gaps, open_len):
            if g["count"] and abs(g["count"] / g["per_unit_length"] - length) > 1e-9 * length:
                raise ValueError(f"k_label must be the distance the counts were made at ({r['label']}: gap "
                                 f"{g['between']} was counted over another length)")
        mean_len = float(np.mean(open_len))
        dens = [(g["count"] + 0.5 * length / mean_len) / length for g, length in zip(gaps, open_len)]
        w = int(np.argmax([b - a for a, b in between]))
        others = [v for j, v in enumerate(dens) if j != w]
        reps.append({"label": r["label"], "passed": r["m"]["gate"]["passed"], "counts": [g["count"] for g in gaps],
                     "between": between, "sigma": sigma, "open_length": open_len, "density": dens, "wide": w,
                     "log_ratio": float(np.log(dens[w]) - np.log(np.mean(others)))})
    gated = [e for e in reps if e["passed"]]
    out = {"replicates": reps, "n": len(reps), "n_gated": len(gated), "confidence": confidence,
           "gated_counts": [sum(e["counts"][j] for e in gated) for j in range(len(reps[0]["counts"]))],
           "interval": None, "ratio": None, "ratio_lo": None, "ratio_hi": None, "verdict": None}
    logs = [e["log_ratio"] for e in gated]
    if len(logs) >= 2 and np.std(logs) > 1e-12:              # identical log ratios: no interval
        iv = mean_interval(logs, confidence)
        verdict = "fewer" if iv["hi"] < 0 else "more" if iv["lo"] > 0 else "not resolved"
        out.update(interval=iv, ratio=float(np.exp(iv["mean"])), ratio_lo=float(np.exp(iv["lo"])),
                   ratio_hi=float(np.exp(iv["hi"])), verdict=verdict)
    return out


def gap_replicates_table(summary: dict) -> str:
    """Markdown table of :func:`gap_replicates`: per replicate (numbered from 0) its gate, each gap's count
    and the wide gap's density ratio to the narrow gaps' mean."""
    reps = summary["replicates"]
    head = ["replicate", "gate", *[f"{a:g}–{b:g}: samples" for a, b in reps[0]["between"]],
            "wide gap per unit length / narrow gaps' mean"]
    return markdown_table(head, [[str(i), "pass" if e["passed"] else "**fail**", *[f"{c:,}" for c in e["counts"]],
                                  f"{np.exp(e['log_ratio']):.2f}"] for i, e in enumerate(reps)])


_GAP_VERDICTS = {"fewer": "fewer samples per unit length across the wide gap than across the close pairs' gaps",
                 "more": "more samples per unit length across the wide gap than across the close pairs' gaps",
                 "not resolved": "no difference per unit length that the replicates resolve",
                 None: "no verdict (fewer than two gated replicates, or no spread between them)"}


def gap_replicates_numbers(summary: dict) -> dict:
    """The glued numbers of :func:`gap_replicates`: ``n``, ``n_gated``, ``ratio``, ``ratio_lo``, ``ratio_hi``
    (NaN without an interval), ``p`` (two-sided, mean log ratio = 0), ``verdict`` (``"withheld"`` without an
    interval) and ``verdict_text`` (a phrase); per gap its count summed over the gated replicates
    (``gap_12``, ...; 1.5 is written 1p5) and that sum per unit of open length (``gap_12_per_length``)."""
    reps, iv = summary["replicates"], summary["interval"]
    nan = float("nan")
    out = {"n": summary["n"], "n_gated": summary["n_gated"], "verdict": summary["verdict"] or "withheld",
           "verdict_text": _GAP_VERDICTS[summary["verdict"]], "p": iv["p"] if iv else nan,
           **{k: nan if summary[k] is None else summary[k] for k in ("ratio", "ratio_lo", "ratio_hi")}}
    for j, (a, b) in enumerate(reps[0]["between"]):
        name = _gap_name(a, b)
        out[name] = summary["gated_counts"][j]
        out[name + "_per_length"] = summary["gated_counts"][j] / reps[0]["open_length"][j]
    return out


def gap_replicates_reading(summary: dict) -> str:
    """One paragraph on :func:`gap_replicates`: the wide gap's density ratio to the narrow gaps' mean across
    the gated replicates, its interval and the verdict in words."""
    n, g = summary["n"], summary["n_gated"]
    if summary["verdict"] is None:
        return (f"{g} of {n} replicates pass the gate: {_GAP_VERDICTS[None]}. The counts are shown, not read.")
    iv = summary["interval"]
    head = (f"Across the {g} gated replicates (of {n}), the wide gap holds {summary['ratio']:.2f}× the narrow gaps' "
            f"mean per unit of open length ({summary['confidence']:.0%} interval across replicates "
            f"{summary['ratio_lo']:.2f}–{summary['ratio_hi']:.2f}, two-sided p = {iv['p']:.3f} for a ratio of 1): ")
    return head + {"fewer": "the closer two modes, the more mass between them per unit length, as the gap sweep "
                            "above finds.",
                   "more": "more mass per unit length between the distant modes, against the gap sweep above.",
                   "not resolved": "the replicates do not resolve a difference either way."}[summary["verdict"]]


def gap_replicates_claims(summary: dict, label: str, min_gated: int = 3) -> dict:
    """The claim of :func:`gap_replicates` on ``label``'s replicates: the wide gap holds fewer samples per unit
    of open length than the narrow gaps' mean (the upper end of the mean log ratio's interval below 0),
    made only when at least ``min_gated`` replicates pass the gate; otherwise it is printed as withheld."""
    check_instance("label", label, str)
    min_gated = check_int("min_gated", min_gated, 2, None)
    if summary["n_gated"] < min_gated:
        print(f"WITHHELD {label}: {summary['n_gated']} of {summary['n']} replicates pass the gate "
              f"(a claim needs {min_gated})")
        return {}
    return {f"{label}: the wide gap holds fewer samples per unit length than the narrow gaps, across "
            f"{summary['n_gated']} gated replicates ({summary['confidence']:.0%} upper end of the ratio < 1)":
            summary["verdict"] == "fewer"}


def breakdown_table(rows, k_gate: float = 3.0, k_label: float = 5.0) -> str:
    """Markdown table of where 2-D measured models' samples lie
    (:func:`mode_interp.interpolation.off_mode_breakdown`): the shoulder share beside the true mixture's, the
    off-mode count, and each region's count, share of the off-mode mass inside the lattice (99.9% interval)
    and enrichment over uniform scatter."""
    rows = _check_measured(rows)
    body = []
    for r in rows:
        b = r["m"].get("breakdown")
        if b is None:
            raise ValueError(f"{r['label']}: breakdown_table takes 2-D models' measurements")
        cells = [f"{e['count']:,}: {e['share']:.0%} [{e['lo']:.0%}, {e['hi']:.0%}], {e['enrichment']:.1f}× uniform"
                 for e in (b["regions"][k] for k in ("first", "second", "elsewhere"))]
        body.append([r["label"], f"{b['shoulder_share']:.1%} (true {b['true_shoulder_share']:.1%})", f"{b['off']:,}",
                     *cells, f"{b['regions']['outside']['count']:,}"])
    return markdown_table(["model", f"shoulder ({k_gate:g}–{k_label:g}σ)", f"off the modes (> {k_label:g}σ)",
                           "nearest-neighbour bands", "second-neighbour bands", "elsewhere", "outside the lattice"],
                          body)


def verdict_2d(row, first_dir: str, second_dir: str, steps: int, k_gate: float = 3.0) -> str:
    """The reading of a 2-D measured model: its hallucinated count and rate against the true rate, the
    share and enrichment of the nearest-neighbour bands (``first_dir``: their direction) and of the
    second-neighbour ones; interpolation is stated only if the model passes the gate, otherwise the gate's
    numbers say why it is under-trained after ``steps`` Adam steps."""
    (row,) = _check_measured(row)
    steps = check_int("steps", steps, 1, None)
    h, g, b = row["m"]["hallucination"], row["m"]["gate"], row["m"]["breakdown"]
    first, second = b["regions"]["first"], b["regions"]["second"]
    text = (f"**{row['label']}**: {h['count']:,} of {h['n']:,} samples hallucinated, rate {h['rate']:.2e}, at least "
            f"{h['ratio_lo']:,.0f}× the true 2-D rate. Of those inside the lattice, {first['share']:.0%} "
            f"[{first['lo']:.0%}, {first['hi']:.0%}] lie in the {first_dir} nearest-neighbour bands, "
            f"{first['enrichment']:.1f}× what uniform scatter would put there; the {second_dir} second-neighbour "
            f"bands hold {second['enrichment']:.1f}× their area's share. ")
    if g["passed"]:
        return text + "The model passes the gate, so the nearest-neighbour-band mass is mode interpolation."
    return text + (f"**The model fails the gate**: its modes are {g['median_spread_ratio']:.2f}× as wide as the exact "
                   f"chain's (median; {len(g['blurred'])} of {len(g['spread_ratio'])} modes blurred beyond 35%), "
                   f"{b['shoulder_share']:.1%} of its samples sit on the shoulders (true: "
                   f"{b['true_shoulder_share']:.1%}), and {g['within']:.1%} lie within {k_gate:g}σ of a mode. After "
                   f"{steps:,} Adam steps (the paper trains 100,000) it is under-trained, so none of these numbers is "
                   "used for a claim: they are shown, and the check below withholds the 2-D claims.")


def numbers(row) -> dict:
    """The named numbers of a measured model that the chapter glues: ``hal_count``, ``hal_rate``,
    ``ratio_lo``, ``true_rate``, ``within``, ``median_spread``, ``n_blurred``, ``passed``; in 1-D ``between``
    (off-mode samples inside the gaps) and per gap ``gap_12`` (between modes 1 and 2; 1.5 is written 1p5)
    and ``gap_12_per_length``; in 2-D ``shoulder``, ``first_share``, ``first_enrichment``,
    ``second_enrichment``."""
    (row,) = _check_measured(row)
    h, g = row["m"]["hallucination"], row["m"]["gate"]
    out = {"hal_count": h["count"], "hal_rate": h["rate"], "ratio_lo": h["ratio_lo"], "true_rate": h["true_rate"],
           "within": g["within"], "median_spread": g["median_spread_ratio"], "n_blurred": len(g["blurred"]),
           "passed": g["passed"]}
    for gap in row["m"].get("gaps", ()):             # 1-D: each open gap's count, and per unit of its length
        name = _gap_name(*gap["between"])
        out[name], out[name + "_per_length"] = gap["count"], gap["per_unit_length"]
    if "gaps" in row["m"]:
        out["between"] = sum(gap["count"] for gap in row["m"]["gaps"])
    b = row["m"].get("breakdown")
    if b is not None:
        out.update(shoulder=b["shoulder_share"], first_share=b["regions"]["first"]["share"],
                   first_enrichment=b["regions"]["first"]["enrichment"],
                   second_enrichment=b["regions"]["second"]["enrichment"])
    return out


def recipe_text(config) -> str:
    """A toy config's training in words, from :meth:`ToyConfig.phases` and :attr:`ToyConfig.restarts`,
    e.g. "20,000 steps at lr 0.001 and 40,000 at 5e-05, a fresh Adam at 20,000 and 40,000"."""
    from .train import ToyConfig

    check_instance("config", config, ToyConfig)
    parts = [f"{end - start:,}{' steps' if i == 0 else ''} at {'lr ' if i == 0 else ''}{lr:g}"
             for i, (start, end, lr) in enumerate(config.phases())]
    restarts = in_words(f"{s:,}" for s in config.restarts)
    return in_words(parts) + (f", a fresh Adam at {restarts}" if restarts else "")


def shipped_models_table(folder=None, prefix: str = "toy-") -> str:
    """Markdown table of the shipped checkpoints whose file starts with ``prefix`` (default: the toy
    models), read from ``folder``'s ``MANIFEST.json`` (default: the package's shipped checkpoints): file,
    data, means (1-D) or the number of modes (and the weights' range when unequal), N, steps (with
    :func:`recipe_text` when the rate changes or training restarts), training time and the exact command."""
    from .train import SHIPPED_DIR, ToyConfig

    folder = Path(SHIPPED_DIR if folder is None else folder)
    check_instance("prefix", prefix, str)
    path = folder / "MANIFEST.json"
    if not path.is_file():
        raise ValueError(f"folder must hold a MANIFEST.json, {path} does not exist")
    rows = []
    for m in json.loads(path.read_text()):
        if not m["file"].startswith(prefix):
            continue
        c, config = m["config"], ToyConfig.from_dict(m["config"])
        steps = f"{c['steps']:,}" + (f" ({recipe_text(config)})" if len(config.phases()) > 1 or config.restarts else "")
        threads = m.get("threads", 1)
        modes = str(c["means"]) if c["data"] == "mixture_1d" else f"{config.mixture().n_modes} modes"
        if c.get("weights"):
            modes += f", weights {min(c['weights']):g}–{max(c['weights']):g}"
        rows.append([f"`{m['file']}`", c["data"], modes, f"{c['n_train']:,}", steps,
                     f"{m['train_seconds']:.0f} s ({threads} thread{'s' if threads > 1 else ''})",
                     f"`{m['command']}`"])
    return markdown_table(["file", "data", "means", "N", "steps", "training time", "command"], rows)


def claim_table(rows, factor: float = 10.0) -> str:
    """Markdown table of measured models against the claim "learned mass beyond the label >= ``factor`` x
    the true mixture's" (99.9% lower bound), beside each model's gate."""
    rows = _check_measured(rows)
    factor = check_float("factor", factor, 0.0, None, lo_open=True)
    body = [[r["label"], "pass" if r["m"]["gate"]["passed"] else "**fail**", f"{h['rate']:.2e}",
             f"[{h['lo']:.1e}, {h['hi']:.1e}]", "yes" if h["lo"] >= factor * h["true_rate"] else "no"]
            for r in rows for h in [r["m"]["hallucination"]]]
    return markdown_table(["model", "gate", "rate", "99.9% interval", f"≥ {factor:g}× true (lower bound)"], body)


def claims_2d(rows, factor: float = 10.0) -> dict:
    """Chapter 2's 2-D claims for each measured 2-D model **that passes the gate**: its mass beyond the
    label is at least ``factor`` x the true 2-D rate (99.9% lower bound); the nearest-neighbour bands hold
    more than their area's share (enrichment lower bound > 1) and more than the second-neighbour bands
    (disjoint intervals). A model that fails the gate contributes no claim: it is printed as withheld."""
    rows = _check_measured(rows)
    factor = check_float("factor", factor, 0.0, None, lo_open=True)
    claims = {}
    for r in rows:
        name, m = r["label"], r["m"]
        if "breakdown" not in m:
            raise ValueError(f"{name}: claims_2d takes 2-D models' measurements")
        if not m["gate"]["passed"]:
            print(f"WITHHELD 2-D {name}: fails the gate (under-trained), so its claims are not asserted")
            continue
        first, second = m["breakdown"]["regions"]["first"], m["breakdown"]["regions"]["second"]
        claims[f"2-D {name}: learned 5-sigma mass >= {factor:g}x true 2-D rate (99.9% lower bound)"] = (
            m["hallucination"]["ratio_lo"] >= factor)
        claims[f"2-D {name}: nearest-neighbour bands hold more than their area's share (99.9% lower bound > 1)"] = (
            first["enrichment_lo"] > 1)
        claims[f"2-D {name}: nearest-neighbour bands enriched more than second-neighbour ones (disjoint intervals)"] = (
            first["enrichment_lo"] > second["enrichment_hi"])
    return claims


def steps_curve(records) -> dict:
    """The rows of ``toy_model`` records (e.g. a sweep over ``model.steps``), grouped by data set and sorted
    by training step: {data: [{"step", "hallucination", "gate", "breakdown", "n", "passed", ...}]}. Each
    row is a record's measurement at one step, as :func:`mode_interp.experiments.models.measure` wrote it,
    with the record's sample size, learning-rate recipe and precision beside it."""
    out = {}
    for rec in check_records("records", records, "toy_model"):
        model = rec["spec"]["model"]
        for row in rec["result"]["rows"]:
            out.setdefault(model["data"], []).append({**row, "n": row["hallucination"]["n"],
                                                      "passed": row["gate"]["passed"], "lr": model["lr"],
                                                      "late_from": model.get("late_from", 0),
                                                      "late_lr": model.get("late_lr", 0.0),
                                                      "precision": rec.get("precision", "float32")})
    for rows in out.values():
        rows.sort(key=lambda r: r["step"])
        steps = [r["step"] for r in rows]
        if len(set(steps)) != len(steps):
            raise ValueError(f"two records measure the same data set at the same step: {steps}")
    return out


def _step_label(row: dict) -> str:
    """"50,000", or "100,000 + 10,000 at lr 1e-04" for a run that ends with a step decay."""
    if not row["late_from"]:
        return f"{row['step']:,}"
    return f"{row['late_from']:,} + {row['step'] - row['late_from']:,} at lr {row['late_lr']:.0e}"


def steps_table(curve: dict) -> str:
    """Markdown table of a :func:`steps_curve`: per data set and step, the samples, hallucinated fraction
    with its interval, within-3-sigma share beside the true mixture's, the median and worst mode spread over
    the exact chain's, the number of blurred modes, the shoulder share, the nearest-neighbour bands' share
    of the off-mode mass and their enrichment, and the gate's verdict."""
    if not isinstance(curve, dict):
        raise TypeError(f"curve must be steps_curve's dict, got {type(curve).__name__}")
    body = []
    for data, rows in curve.items():
        for r in rows:
            h, g = r["hallucination"], r["gate"]
            b = r.get("breakdown")
            first = b["regions"]["first"] if b else None
            body.append([data, _step_label(r), f"{r['n']:,}", f"{h['rate']:.2%} [{h['lo']:.2%}, {h['hi']:.2%}]",
                         f"{g['within']:.1%} (true {g['true_within']:.1%})",
                         f"{g['median_spread_ratio']:.2f} / {g['worst_spread_ratio']:.2f}",
                         f"{len(g['blurred'])}", f"{b['shoulder_share']:.1%}" if b else "",
                         f"{first['share']:.0%} ({first['enrichment']:.1f}×)" if b else "",
                         "pass" if g["passed"] else "**fail**"])
    return markdown_table(["data", "steps", "samples", "hallucinated (99.9% interval)", "within 3σ",
                           "spread / exact chain's: median / worst", "blurred modes", "shoulder",
                           "nearest-neighbour bands: share (enrichment)", "gate"], body)


def steps_numbers(curve: dict) -> dict:
    """The named numbers of a :func:`steps_curve` that the chapter glues, per data set ``d`` at its last
    measured step: ``d_last_step``, ``d_last_label`` (with its step decay, if any), ``d_rate``, ``d_within``,
    ``d_median_spread``, ``d_passed``, ``d_first_share`` (2-D), and ``d_n`` (samples per step); at its last
    step without a decay: ``d_plain_step``, ``d_plain_rate``, ``d_plain_within``, ``d_plain_median_spread``;
    plus ``n_steps`` (steps measured, over all)
    and ``status``, the gate's verdict on the last snapshots in words."""
    if not isinstance(curve, dict) or not curve:
        raise ValueError("curve must be a non-empty steps_curve dict")
    out = {"n_steps": sum(len(rows) for rows in curve.values())}
    passed = [data for data, rows in curve.items() if rows[-1]["passed"]]
    out["status"] = ("passes the strict gate" if len(passed) == len(curve) else
                     "has not converged by the strict gate" if not passed else
                     f"passes the strict gate on {', '.join(passed)} only")
    for data, rows in curve.items():
        last = rows[-1]
        plain = [r for r in rows if not r["late_from"]][-1]
        out.update({f"{data}_plain_step": plain["step"], f"{data}_plain_rate": plain["hallucination"]["rate"],
                    f"{data}_plain_within": plain["gate"]["within"],
                    f"{data}_plain_median_spread": plain["gate"]["median_spread_ratio"],
                    f"{data}_last_label": _step_label(last)})
        out.update({f"{data}_last_step": last["step"], f"{data}_rate": last["hallucination"]["rate"],
                    f"{data}_within": last["gate"]["within"], f"{data}_n": last["n"],
                    f"{data}_median_spread": last["gate"]["median_spread_ratio"], f"{data}_passed": last["passed"]})
        if last.get("breakdown"):
            out[f"{data}_first_share"] = last["breakdown"]["regions"]["first"]["share"]
    return out


def record_models(records) -> list:
    """Per ``toy_model`` record: ``{"config": its replicate's ToyConfig (rebuilt from the spec), "seed": the
    replicate, "k_label": the spec's label distance, "row": its last measured row ("gate", "hallucination",
    ...)}``, in the records' order."""
    from .experiments.models import ToyModel

    return [{"config": spec.config, "seed": spec.seed, "k_label": spec.k_label, "row": rec["result"]["rows"][-1]}
            for rec in check_records("records", records, "toy_model") for spec in [ToyModel.from_dict(rec["spec"])]]


def longest_models(records) -> dict:
    """{data: ToyConfig} of the longest-trained model per data set among ``toy_model`` records (e.g. the
    paper recipe with its final decay), rebuilt from each record's spec (its replicate's config)."""
    steps_curve(records)                                     # checks the records
    out = {}
    for m in record_models(records):
        config = m["config"]
        if config.data not in out or config.steps > out[config.data].steps:
            out[config.data] = config
    return out


def origin_mode_rank(config, measured: dict) -> int:
    """Where the mode nearest the origin ranks among the K modes by its spread over the exact chain's in
    ``measured["gate"]["spread_ratio"]`` (1 = the widest; ties rank together)."""
    ratios, mixture = np.asarray(measured["gate"]["spread_ratio"], dtype=float), config.mixture()
    if len(ratios) != mixture.n_modes:
        raise ValueError(f"measured has {len(ratios)} spread ratios for a mixture of {mixture.n_modes} modes")
    return int((ratios > ratios[mixture.origin_mode]).sum()) + 1


def origin_mode_table(models: dict) -> str:
    """Markdown table of how the mode nearest the origin fares in each model's samples against the others.

    ``models``: label -> (ToyConfig, measured), where ``measured`` holds ``"gate"`` and ``"hallucination"``
    (a ``toy_model`` record's row, :func:`record_models`, or :func:`measure_model`'s ``"m"``). Columns: the
    share within k sigma of a mode beside the true mixture's, the median mode spread over the exact chain's,
    the origin mode's spread over the exact chain's with its rank among the K modes (1 = widest), the
    hallucinated fraction with its 99.9% interval, and the gate's verdict."""
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict label -> (config, measured)")
    body = []
    for label, (config, m) in models.items():
        g, h = m["gate"], m["hallucination"]
        ratios = np.asarray(g["spread_ratio"], dtype=float)
        k, rank = config.mixture().origin_mode, origin_mode_rank(config, m)
        body.append([label, f"{g['within']:.1%} (true {g['true_within']:.1%})", f"{g['median_spread_ratio']:.2f}",
                     f"{ratios[k]:.2f} ({rank} of {len(ratios)})",
                     f"{h['rate']:.2%} [{h['lo']:.2%}, {h['hi']:.2%}] ({h['count']:,} of {h['n']:,})",
                     "pass" if g["passed"] else "**fail**"])
    return markdown_table(["model", "within 3σ", "spread / exact chain's: median", "the origin's mode (rank)",
                           "hallucinated (99.9% interval)", "gate"], body)


def _centre(result: dict) -> tuple:
    """The index of the mode nearest the origin in a mode_contraction result, and the other modes'."""
    centre = origin_mode(result["means"])
    return centre, [k for k in range(len(result["means"])) if k != centre]


def contractions(configs: dict, ts) -> dict:
    """``{label: smoothing.mode_contraction(...)}`` for each trained model of ``configs`` (label -> ToyConfig,
    loaded or trained by :func:`mode_interp.train.load_or_train`) at the timesteps ``ts``."""
    from .smoothing import mode_contraction
    from .train import ToyConfig, load_or_train

    out = {}
    for label, config in configs.items():
        check_instance(f"configs[{label!r}]", config, ToyConfig)
        out[label] = mode_contraction(load_or_train(config).model, config.mixture(), config.schedule(), ts)
    return out


def held_range(held_num: dict) -> dict:
    """Chapter 2's glue over :func:`held_numbers` results: the range of the centre's error, the largest error
    of the other modes, the smallest slope ratio and the number of models."""
    v = list(held_num.values())
    return {"centre_error_min": min(r["centre_error"] for r in v), "centre_error_max": max(r["centre_error"] for r in v),
            "others_error_max": max(r["others_error"] for r in v), "slope_ratio_min": min(r["slope_ratio"] for r in v),
            "n_models": len(v)}


def held_numbers(held: dict) -> dict:
    """How :func:`mode_interp.smoothing.mode_contraction` results (``held``: label -> result) treat the mode
    nearest the origin (``centre``) against the others: per label, the largest ``centre_error`` and the
    largest median ``others_error`` over t (in sigma), and the smallest ratio of the centre's slope to the
    other modes' median slope over t (``slope_ratio``)."""
    out = {}
    for label, r in held.items():
        centre, others = _centre(r)
        med = np.median(r["slope"][:, others], axis=1)
        out[label] = {"centre": centre, "centre_error": float(r["error"][:, centre].max()),
                      "others_error": float(np.median(r["error"][:, others], axis=1).max()),
                      "slope_ratio": float(np.min(np.abs(r["slope"][:, centre]) / np.maximum(np.abs(med), 1e-12)))}
    return out


def held_table(held: dict) -> str:
    """Markdown table of :func:`mode_interp.smoothing.mode_contraction` results (label -> result): per
    model and t, the optimum's slope at a mode, the network's slope at the mode nearest the origin and the
    median (largest) over the other modes, and the same for the error |x0_hat - mu| / sigma."""
    body = []
    for label, r in held.items():
        centre, others = _centre(r)
        for i, t in enumerate(r["ts"]):
            s, e = r["slope"][i], r["error"][i]
            body.append([label, f"{int(t)}", f"{r['exact_slope'][i]:.3f}", f"{s[centre]:.2f}",
                         f"{np.median(s[others]):.3f} ({np.max(np.abs(s[others])):.3f})", f"{e[centre]:.2f}",
                         f"{np.median(e[others]):.2f} ({np.max(e[others]):.2f})"])
    return markdown_table(["model", "t", "optimum's slope", "slope at the mode at the origin",
                           "slope, other modes: median (largest magnitude)", "error at the mode at the origin (σ)",
                           "error, other modes: median (largest) (σ)"], body)


def _record_source(source: str) -> str:
    """Where a record's model came from, as a chapter reading the record says it: "trained in this run" in a
    record means the run that made the record, not the chapter's."""
    return "trained when its record was made" if source == "trained in this run" else source


def measured_from_records(records, prefix: str, configs=None) -> list:
    """``toy_model`` records as measured models (``label``, ``config``, ``m``: the record's last row), each
    labelled ``"{prefix}, {steps:,} steps"`` (plus ``", replicate {seed}"`` when the records hold more than one
    replicate), in the records' order. ``configs``: the ToyConfigs a chapter's parameters describe; then each
    record must measure one of them and each must be measured (a record of other settings is a ValueError,
    not a silent stand-in)."""
    from .train import ToyConfig

    check_instance("prefix", prefix, str)
    models = record_models(records)
    several = len({m["seed"] for m in models}) > 1
    rows = [{"label": f"{prefix}, {m['config'].steps:,} steps" + (f", replicate {m['seed']}" if several else ""),
             "config": m["config"], "m": m["row"], "train_seconds": m["row"].get("train_seconds", 0.0),
             "source": _record_source(m["row"].get("source", ""))} for m in models]
    if configs is not None:
        configs = list(configs)
        for i, c in enumerate(configs):
            check_instance(f"configs[{i}]", c, ToyConfig)
        for r in rows:
            if r["config"] not in configs:
                raise ValueError(f"a record measures {r['config'].to_dict()}, which is none of the configs asked "
                                 "for; measure those with the sweep command (python -m mode_interp.sweep) first")
        missing = [c.to_dict() for c in configs if c not in [r["config"] for r in rows]]
        if missing:
            raise ValueError(f"no record measures the config asked for: {missing}")
    return rows


NAMES_2D = {"grid_25": "grid", "rotated_grid_25": "diamond"}    # the chapters' names of the 2-D data sets


def measured_2d(records, configs, suffix: str = "") -> dict:
    """``toy_model`` records of 2-D models (:func:`measured_from_records`) keyed and labelled by their data
    set's name in the chapters (:data:`NAMES_2D`) followed by ``suffix``, in the records' order. Each record
    must measure one of ``configs`` (the ToyConfigs a chapter's parameters describe): a record of other
    settings is a ValueError, not a silent stand-in."""
    check_instance("suffix", suffix, str)
    out = {}
    for r in measured_from_records(records, "", configs):
        if r["config"].data not in NAMES_2D:
            raise ValueError(f"measured_2d takes records of {sorted(NAMES_2D)}, got one of {r['config'].data!r}")
        name = NAMES_2D[r["config"].data] + suffix
        if name in out:
            raise ValueError(f"records hold two models of {r['config'].data!r}: pass one run per data set")
        out[name] = {**r, "label": name}
    return out


def redraw_numbers(record, live, z: float = 3.29) -> dict:
    """A record's model drawn again at a smaller size in this run (``record``, ``live``: measured models of
    the same config): the two-sided z of the difference between the live and the recorded rate of
    hallucinated samples and of samples within the gate's distance of a mode (pooled two-proportion
    statistics, :func:`mode_interp.stats.two_proportion_z`), and ``agrees``: both |z| < ``z``."""
    from .stats import two_proportion_z

    (record,), (live,) = _check_measured(record), _check_measured(live)
    if record["config"] != live["config"]:
        raise ValueError(f"record and live must measure one config, got {record['label']!r} and {live['label']!r}")
    z = check_float("z", z, 0.0, None, lo_open=True)

    def counts(m):          # (hallucinated, n), (within, finite n): the gate counts finite samples only
        n, finite = m["hallucination"]["n"], m["hallucination"]["n"] - m.get("non_finite", 0)
        return {"rate": (m["hallucination"]["count"], n), "within": (round(m["gate"]["within"] * finite), finite)}

    a, b = counts(record["m"]), counts(live["m"])
    out = {f"z_{key}": two_proportion_z(*a[key], *b[key]) for key in ("rate", "within")}
    out["agrees"] = all(abs(v) < z for v in out.values())
    return out


def decay_claims(models: dict, redraw: dict) -> dict:
    """Chapter 2's claims on its step-decayed 2-D models (``models``: label -> measured model, e.g. two
    :func:`measured_2d` results; ``redraw``: name -> :func:`redraw_numbers`): every model that another one
    continues (its state before the step decay) fails the gate, and every model drawn again in the run
    agrees with its record."""
    rows = _check_measured(list(models.values()))
    check_instance("redraw", redraw, dict)
    parents = [r["config"].parent() for r in rows if r["config"].parent() is not None]
    before = [r for r in rows if r["config"] in parents]
    if not before or not redraw:
        raise ValueError("decay_claims needs models measured before their decay and at least one redraw")
    return {"2-D: before the step decay, every model fails the gate (" + ", ".join(r["label"] for r in before) + ")":
            not any(r["m"]["gate"]["passed"] for r in before),
            f"2-D: drawn again in this run, each model agrees with its record (two-proportion |z| below the "
            f"threshold on the hallucinated and the within-gate rate: {', '.join(redraw)})":
            all(d["agrees"] for d in redraw.values())}


def converged_numbers(rows, held: dict) -> dict:
    """What chapter 2 glues about a run measured at several lengths (``rows``: :func:`measured_from_records`,
    shortest first; ``held``: label -> :func:`mode_interp.smoothing.mode_contraction`): :func:`numbers` of
    the first, the one before the last and the last row (prefixed ``first_``, ``prev_`` and ``last_``), the
    samples, the training hours, the last row's widest mode, the origin's rank by width, the last and the
    previous row's gate in words (``gate_text``, ``prev_gate_text``: the failing checks), and the largest
    ratio of the origin's x0_hat error to the other modes' median."""
    rows = _check_measured(rows)
    last, gate = rows[-1], rows[-1]["m"]["gate"]

    def gate_text(g):
        return "passes every check" if g["passed"] else "fails " + "; ".join(n for n, ok in g["checks"].items() if not ok)

    prev = rows[-2] if len(rows) > 1 else rows[0]
    return {**{f"first_{k}": v for k, v in numbers(rows[0]).items()},
            **{f"prev_{k}": v for k, v in numbers(prev).items()},
            **{f"last_{k}": v for k, v in numbers(last).items()},
            "prev_steps": prev["config"].steps, "last_steps": last["config"].steps,
            "prev_gate_text": gate_text(prev["m"]["gate"]), "prev_worst_spread": prev["m"]["gate"]["worst_spread_ratio"],
            "n": last["m"]["hallucination"]["n"], "train_hours": sum(r.get("train_seconds", 0.0) for r in rows) / 3600,
            "worst_spread": gate["worst_spread_ratio"], "origin_rank": origin_mode_rank(last["config"], last["m"]),
            "gate_text": gate_text(gate),
            "error_ratio_max": max(v["centre_error"] / v["others_error"] for v in held_numbers(held).values())}


def bias_control_numbers(bias: dict, bias_held: dict, nobias_held: dict, nobias: dict) -> dict:
    """What chapter 2 glues about the input-bias control: ``bias``: label -> :func:`record_models` entry of
    each model with the bias; ``bias_held`` / ``nobias_held``: :func:`held_numbers` of the models with and
    without it; ``nobias``: {"grid": measured model, "diamond": measured model} without it, same recipe."""
    rows = [b["row"] for b in bias.values()]
    return {"n_models": len(bias), "n_grid": sum(b["config"].data == "grid_25" for b in bias.values()),
            "n_samples": min(r["hallucination"]["n"] for r in rows),
            "error_ratio_max": max(v["centre_error"] / v["others_error"] for v in bias_held.values()),
            "centre_error_max": max(v["centre_error"] for v in bias_held.values()),
            "nobias_error_ratio_min": min(v["centre_error"] / v["others_error"] for v in nobias_held.values()),
            "median_spread_min": min(r["gate"]["median_spread_ratio"] for r in rows),
            "median_spread_max": max(r["gate"]["median_spread_ratio"] for r in rows),
            "n_passed": sum(r["gate"]["passed"] for r in rows),
            "rate_min": min(r["hallucination"]["rate"] for r in rows),
            "rate_max": max(r["hallucination"]["rate"] for r in rows),
            **{f"{name}_nobias_rate": nobias[name]["m"]["hallucination"]["rate"] for name in ("grid", "diamond")}}
