"""The 2-D grid under DDPM and DDIM (chapter 6, §6.8): one gated network against the exact score.

Section 6.2 compares samplers on three replicates of the 1-D model. In 2-D only one network passes chapter
2's strict gate (the grid with an input bias, 140,000 steps; a replicate costs about five hours here), so
the learned rows come from **one model**: their intervals are 99.9% Wilson intervals over its samples, which
say nothing about training-to-training spread, and no comparison between samplers on it is asserted. The
exact score of the same 25-mode mixture, sampled with three seeds, is the control (discretisation alone).

Both come from ``sampler_grid`` records (:mod:`mode_interp.experiments.samplers`): ``sweeps/
samplers_2d_learned.json`` (the network) and ``sweeps/samplers_2d_exact.json`` (the exact score).
:func:`study` recomputes every table cell from their rows, :func:`rerun` samples a reduced grid of the same
specs from scratch through the experiment's own code, and :func:`numbers` / :func:`claims` feed the chapter.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ._validate import check_int, check_ints
from .hallucination import true_hallucination_rate
from .report import markdown_table
from .sampler_study import _intervals_overlap, numbers as sampler_numbers, record_rows, summarise
from .stats import two_proportion_z, wilson_interval

REFERENCE_STEPS = 1000        # the paper's chain: all T = 1000 steps
FEW_STEPS = 10                # the shortest chain, where the claims test discretisation


def _records(records, score: str, name: str) -> list:
    records = list(records) if records is not None else []
    if not records or any(not isinstance(r, dict) or r.get("experiment") != "sampler_grid" for r in records):
        raise ValueError(f"{name} must be a non-empty list of sampler_grid records (sweep_records of a sampler sweep)")
    scores = {r["spec"]["score"] for r in records}
    if scores != {score}:
        raise ValueError(f"{name} must hold only score = {score!r} records, got {sorted(scores)}")
    return records


def single_model_summary(rows, key: str = "rate") -> list:
    """:func:`mode_interp.sampler_study.summarise` of one model's rows (one seed): a rate's ``lo`` / ``hi`` are
    its 99.9% Wilson interval over the samples (sampling noise only), an AUROC has none."""
    out = summarise(rows, key)
    if any(r["n_seeds"] + r["n_missing"] != 1 for r in out):
        raise ValueError("rows must come from one model (one seed per sampler and T')")
    if key == "rate":
        out = [{**r, "lo": r["pooled_lo"], "hi": r["pooled_hi"]} for r in out]
    return out


def study(learned_records, exact_records) -> dict:
    """Every cell of the 2-D sampler grid, recomputed from the records' rows: ``learned`` (one model, Wilson
    intervals) and ``exact`` (mean over sampling seeds, 95% between-seed t-interval) hallucinated fractions,
    Hal's ``auroc`` on both, the learned model's ``gate`` on the paper's chain, ``ddim_z`` (two-proportion z of
    DDIM eta = 0 over DDPM on all steps, one model: sampling noise only), the ``mixture``, its ``true_rate``
    (> k sigma), ``k_label`` and ``clip_x0``, and the ``records``."""
    from .sampler_study import records_mixture
    learned_records = _records(learned_records, "learned", "learned_records")
    exact_records = _records(exact_records, "exact", "exact_records")
    if len(learned_records) != 1:
        raise ValueError(f"learned_records must hold one model's record, got {len(learned_records)}")
    spec, exact_spec = learned_records[0]["spec"], exact_records[0]["spec"]
    for field in ("steps", "etas", "k_label", "clip_x0"):
        if any(r["spec"][field] != spec[field] for r in exact_records):
            raise ValueError(f"the exact and learned records differ in {field!r}: they must share one grid")
    if any(r["spec"]["model"]["data"] != spec["model"]["data"] for r in exact_records):
        raise ValueError("the exact and learned records are of different mixtures")
    learned_rows, exact_rows = record_rows(learned_records), record_rows(exact_records)
    if len({r["seed"] for r in exact_rows}) < 2:
        raise ValueError("exact_records must hold >= 2 sampling seeds (the between-seed interval)")
    at = {(r["sampler"], r["steps"]): r for r in learned_rows}
    ddpm, ddim0 = at.get(("DDPM", REFERENCE_STEPS)), at.get(("DDIM eta=0", REFERENCE_STEPS))
    if ddpm is None or ddim0 is None or FEW_STEPS not in spec["steps"]:
        raise ValueError(f"the grid must hold DDPM and DDIM eta=0 on all {REFERENCE_STEPS} steps, and T' = {FEW_STEPS}")
    mixture = records_mixture(learned_records)
    return {"learned": single_model_summary(learned_rows), "exact": summarise(exact_rows),
            "auroc": single_model_summary(learned_rows, "auroc"), "exact_auroc": summarise(exact_rows, "auroc"),
            "learned_rows": learned_rows, "exact_rows": exact_rows,
            "gate": learned_records[0]["result"]["reference"]["gate"],
            "ddim_z": two_proportion_z(ddpm["count"], ddpm["n"], ddim0["count"], ddim0["n"]),
            "mixture": mixture, "k_label": spec["k_label"], "clip_x0": spec["clip_x0"],
            "true_rate": true_hallucination_rate(mixture, spec["k_label"]),
            "records": {"learned": learned_records, "exact": exact_records}}


def table(s: dict) -> str:
    """One Markdown table: a row per score and sampler, a column per T'; the exact score's cells are the
    mean over sampling seeds [95% between-seed interval, cut at 0], the network's its rate [99.9% Wilson], in %."""
    steps = sorted({r["steps"] for r in s["learned"]})
    rows = []
    for label, summary, how in (("exact score", s["exact"], "between seeds"), ("gated network", s["learned"], "Wilson")):
        at = {(r["sampler"], r["steps"]): r for r in summary}
        for name in dict.fromkeys(r["sampler"] for r in summary):
            cells = [at.get((name, t)) for t in steps]
            rows.append([f"{label}, {name}"] + [
                "" if r is None else f"{100 * r['mean']:.2f} [{100 * max(r['lo'], 0.0):.2f}, {100 * r['hi']:.2f}]"
                if math.isfinite(r["lo"]) else f"{100 * r['mean']:.2f}" for r in cells])
    return markdown_table(["score, sampler"] + [f"T' = {t:,}" for t in steps], rows)


def auroc_table(s: dict) -> str:
    """Hal's AUROC per sampler and T' (last min(10, T'/2) steps): the network's (one model) and the exact
    score's (mean over seeds); "–" where a chain has fewer than 5 samples of a class."""
    steps = sorted({r["steps"] for r in s["auroc"]})
    rows = []
    for label, summary in (("exact score", s["exact_auroc"]), ("gated network", s["auroc"])):
        at = {(r["sampler"], r["steps"]): r for r in summary}
        for name in dict.fromkeys(r["sampler"] for r in summary):
            rows.append([f"{label}, {name}"] + ["–" if not math.isfinite(at[name, t]["mean"]) else
                                                f"{at[name, t]['mean']:.3f}" for t in steps])
    return markdown_table(["score, sampler"] + [f"T' = {t:,}" for t in steps], rows)


def rerun(s: dict, n: int, steps=(10, REFERENCE_STEPS), etas=(None, 0.0), exact_seeds: int = 1) -> list:
    """A reduced copy of the study's grids (``n`` samples per chain, the given ``steps`` and ``etas``), sampled
    from scratch through the ``sampler_grid`` experiment's own code: the network's record and the first
    ``exact_seeds`` exact-score records (their seeds). Returns their rows, each tagged with its ``score``.
    The network is loaded from its shipped checkpoint (or trained, if it is missing)."""
    from .experiments import as_spec
    from .experiments.samplers import run
    n = check_int("n", n, 10, None)
    steps = tuple(check_ints("steps", list(steps), 2, None, min_len=1))
    exact = s["records"]["exact"]
    exact_seeds = check_int("exact_seeds", exact_seeds, 0, len(exact))
    rows = []
    for rec in s["records"]["learned"] + exact[:exact_seeds]:
        spec = replace(as_spec("sampler_grid", rec["spec"]), n_samples=n, steps=steps, etas=tuple(etas))
        result, _ = run(spec)
        rows += [{**r, "score": spec.score} for r in result["rows"]]
    return rows


def agreement(s: dict, live: list) -> list:
    """Each rerun chain beside the record's chain of the same score, sampler, T' and seed: ``[label, rerun,
    record, overlap]`` (99.9% Wilson intervals overlap)."""
    recorded = {(r["score"], r["sampler"], r["steps"], r["seed"]): r for r in s["learned_rows"] + s["exact_rows"]}
    out = []
    for r in live:
        key = (r["score"], r["sampler"], r["steps"], r["seed"])
        if key not in recorded:
            raise ValueError(f"the records hold no chain {key} to compare the rerun with")
        out.append({"label": f"{r['score']}, {r['sampler']}, T' = {r['steps']:,}, seed {r['seed']}", "rerun": r,
                    "record": recorded[key], "overlap": _intervals_overlap(r, recorded[key])})
    return out


def agreement_table(rows: list) -> str:
    """:func:`agreement` as Markdown: hallucinated count / n and rate [99.9% Wilson] of the rerun and the record."""
    def cell(r):
        lo, hi = wilson_interval(r["count"], r["n"])
        return f"{r['count']:,} / {r['n']:,} = {r['rate']:.2%} [{lo:.2%}, {hi:.2%}]"
    return markdown_table(["chain", "rerun in this run", "shipped record", "intervals overlap"],
                          [[a["label"], cell(a["rerun"]), cell(a["record"]), "yes" if a["overlap"] else "no"]
                           for a in rows])


def numbers(s: dict, agree: list) -> dict:
    """The §6.8 prose numbers: ``learned_<sampler>_<T'>`` / ``exact_...`` (rates with ``_lo`` / ``_hi``),
    ``auroc_...``, counts on all steps (the network's DDPM and DDIM eta = 0; the exact score's pooled over
    samplers and seeds), the DDIM-vs-DDPM z, the gate's numbers, sample sizes and the rerun's agreement."""
    out = {**sampler_numbers(s["learned"], "learned_"), **sampler_numbers(s["exact"], "exact_"),
           **sampler_numbers(s["auroc"], "auroc_")}
    at = {(r["sampler"], r["steps"]): r for r in s["learned_rows"]}
    ex = {(r["sampler"], r["steps"]): r for r in s["exact"]}
    few = [r["mean"] for r in s["auroc"] if r["steps"] <= 100 and math.isfinite(r["mean"])]
    few_exact = [r["mean"] for r in s["exact_auroc"] if r["steps"] <= 100 and math.isfinite(r["mean"])]
    out.update({
        "n": at["DDPM", REFERENCE_STEPS]["n"], "n_exact": s["exact"][0]["n"] // s["exact"][0]["n_seeds"],
        "n_exact_seeds": s["exact"][0]["n_seeds"], "true_rate": s["true_rate"],
        "ddpm_count": at["DDPM", REFERENCE_STEPS]["count"], "ddim0_count": at["DDIM eta=0", REFERENCE_STEPS]["count"],
        "ddim1_count": at["DDIM eta=1", REFERENCE_STEPS]["count"] if ("DDIM eta=1", REFERENCE_STEPS) in at else 0,
        "ddim_direction": "more" if s["ddim_z"] > 0 else "fewer" if s["ddim_z"] < 0 else "as many",
        "auroc_all_min": min(r["mean"] for r in s["auroc"] if r["steps"] == REFERENCE_STEPS),
        "ddim_z": s["ddim_z"], "ddim_ratio": at["DDIM eta=0", REFERENCE_STEPS]["rate"] / max(at["DDPM", REFERENCE_STEPS]["rate"], 1e-12),
        "exact_ddpm_1000_count": ex["DDPM", REFERENCE_STEPS]["count"], "exact_ddpm_1000_n": ex["DDPM", REFERENCE_STEPS]["n"],
        "exact_ddpm_1000_pooled_hi": ex["DDPM", REFERENCE_STEPS]["pooled_hi"],
        "exact_1000_count": sum(r["count"] for r in s["exact"] if r["steps"] == REFERENCE_STEPS),
        "exact_1000_n": sum(r["n"] for r in s["exact"] if r["steps"] == REFERENCE_STEPS),
        "exact_1000_expected": s["true_rate"] * sum(r["n"] for r in s["exact"] if r["steps"] == REFERENCE_STEPS),
        "sigma": float(s["mixture"].sigma), "k_label": s["k_label"], "clip_x0": s["clip_x0"],
        "auroc_few_max": max(few) if few else math.nan,
        "exact_auroc_few_max": max(few_exact) if few_exact else math.nan,
        "gate_within": s["gate"]["within"], "gate_median": s["gate"]["median_spread_ratio"],
        "gate_worst": s["gate"]["worst_spread_ratio"], "gate": "passes" if s["gate"]["passed"] else "fails",
        "live_n": agree[0]["rerun"]["n"] if agree else 0, "live_agree": sum(a["overlap"] for a in agree),
        "live_chains": len(agree),
    })
    return out


def claims(s: dict, agree: list) -> tuple:
    """``(claims, sanity)`` for §6.8. Claims (each can fail): the exact score on all steps is not above the
    true mixture's rate; with ``FEW_STEPS`` steps it hallucinates > 10% under every sampler (lower
    between-seed bound); the gated network on the paper's chain hallucinates more than the exact score
    (disjoint 99.9% intervals: a property of this one model); Hal separates its hallucinations on all steps
    under every sampler (AUROC > 0.95) and not on chains of <= 100 steps (< 0.6 under every sampler); the
    rerun agrees with the records. Sanity: the network passes the strict gate (the precondition of the
    claims on it)."""
    ex = {(r["sampler"], r["steps"]): r for r in s["exact"]}
    ln = {(r["sampler"], r["steps"]): r for r in s["learned"]}
    au = {(r["sampler"], r["steps"]): r for r in s["auroc"]}
    names = list(dict.fromkeys(r["sampler"] for r in s["exact"]))
    few = [r["mean"] for r in s["auroc"] if r["steps"] <= 100 and math.isfinite(r["mean"])]
    out = {
        "2-D, exact score, all 1,000 steps: no sampler above the true mixture's rate (pooled 99.9% Wilson lower "
        "bound <= true)": all(ex[n, REFERENCE_STEPS]["pooled_lo"] <= s["true_rate"] for n in names),
        f"2-D, exact score, {FEW_STEPS} steps: every sampler hallucinates > 10% (lower between-seed bound)":
            all(ex[n, FEW_STEPS]["lo"] > 0.10 for n in names),
        "2-D, gated network, DDPM on all steps: more than the exact score (disjoint 99.9% intervals; one model)":
            ln["DDPM", REFERENCE_STEPS]["lo"] > ex["DDPM", REFERENCE_STEPS]["pooled_hi"],
        "2-D, gated network, all steps: Hal AUROC > 0.95 under every sampler, deterministic DDIM included (one model)":
            all(au[n, REFERENCE_STEPS]["mean"] > 0.95 for n in names),
        "2-D, gated network, T' <= 100: Hal AUROC < 0.6 under every sampler (one model)":
            bool(few) and all(v < 0.6 for v in few),
        "2-D: every chain rerun in this run agrees with its record (99.9% Wilson intervals overlap)":
            bool(agree) and all(a["overlap"] for a in agree),
    }
    sanity = {"2-D: the network of §6.8 passes the strict quality gate (precondition of its claims)": s["gate"]["passed"]}
    return out, sanity
