"""Chapter 3 §3.6: SIMPLE SHAPES hallucination against training steps, from ``shapes_model`` records.

A curve is the snapshots of one training run (:mod:`mode_interp.experiments.shapes`: one record per
snapshot, or one record with several). Each row holds the counts per label of ``n_generated`` images, so
every rate and interval here is recomputed from counts. The training loss is read from the longest
snapshot's record (mean per block of 50 steps), and a snapshot's loss is the mean over the ``window``
steps before it, which smooths the per-batch noise of a 64-image batch.

**Settled** (:func:`settled`): the last two snapshots agree, i.e. the mean loss changed by less than
``loss_tol`` (relative) and the hallucinated counts do not differ (two-proportion |z| < ``z``). A curve
that has not settled is shown as still training, and no claim is made on it. Every snapshot is sampled
from the same seed, so the counts of two snapshots are positively correlated and the unpaired z is
conservative (it leans towards "no change"): the test can call a run settled too early, never too late.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from ._validate import check_float, check_instance, check_int
from .report import in_words, markdown_table
from .shape_counter import LABELS
from .stats import two_proportion_z, wilson_interval

_SAME = ("resolution", "n_images", "data_seed", "channels", "batch_size", "lr", "ema_decay", "seed", "T",
         "beta_start", "beta_end", "precision")


def rows(records) -> tuple:
    """``(rows, losses)``: one row per snapshot over ``records`` (each a ``shapes_model`` record), sorted by
    step, each with its ``record_seconds``; ``losses`` the loss curve of the longest snapshot's record.
    Refuses records of different runs (any model field but ``steps``, or the sampling, differs) and a step
    measured twice."""
    records = list(records)
    if not records:
        raise ValueError("records must hold at least one shapes_model record, got none")
    first = records[0]["spec"]
    out, seen = [], set()
    for record in records:
        if record.get("experiment") != "shapes_model":
            raise ValueError(f"records must be shapes_model records, got {record.get('experiment')!r}")
        spec = record["spec"]
        for field in ("seed", "n_samples", "sample_seed", "sample_steps", "z"):
            if spec[field] != first[field]:
                raise ValueError(f"records must share the sampling: {field} is {spec[field]!r} and {first[field]!r}")
        for field in _SAME:
            if spec["model"].get(field) != first["model"].get(field):
                raise ValueError(f"records must be snapshots of one run: model.{field} is "
                                 f"{spec['model'].get(field)!r} and {first['model'].get(field)!r}")
        for row in record["result"]["rows"]:
            if row["step"] in seen:
                raise ValueError(f"step {row['step']} is measured twice")
            seen.add(row["step"])
            out.append(row)
    out.sort(key=lambda r: r["step"])
    return out, list(_longest(records)["result"]["losses"])


def _longest(records) -> dict:
    """The record of the longest training (the most ``model.steps``)."""
    return max(records, key=lambda r: r["spec"]["model"]["steps"])


def run_split(records, window: int = 1000, every: int = 50) -> dict:
    """Which snapshots come from the longest record's training run and which from another run of the same
    recipe (a rerun after a lost run file: the same seeds and batches, float rounding apart). A record belongs
    to the longest run when its loss curve is a prefix of the longest's. ``last_run_steps`` and
    ``other_steps`` (snapshot steps), ``rerun`` (whether there are other ones), and over the steps both
    curves cover, ``common_steps`` and ``loss_diff_max``: the largest relative difference of the two runs'
    mean loss over a ``window`` steps (at every multiple of ``window``); 0.0 with one run; ``reading``, the
    split in a few sentences."""
    records = list(records)
    if not records:
        raise ValueError("records must hold at least one shapes_model record, got none")
    window, every = check_int("window", window, every, None), check_int("every", every, 1, None)
    full = list(_longest(records)["result"]["losses"])
    mine, other, diff, common = [], [], 0.0, 0
    for record in records:
        curve = list(record["result"]["losses"])
        steps = [row["step"] for row in record["result"]["rows"]]
        if curve == full[:len(curve)]:
            mine += steps
            continue
        other += steps
        common = max(common, len(curve) * every)
        for step in range(window, len(curve) * every + 1, window):
            a, b = loss_at(curve, step, window, every), loss_at(full, step, window, every)
            diff = max(diff, abs(a - b) / b)
    mine, other = sorted(mine), sorted(other)
    listed = [in_words(f"{step:,}" for step in v) for v in (other, mine)]
    reading = ("All its snapshots come from one training run." if not other else
               f"Its snapshots at {listed[0]} steps come from an earlier run of the same recipe (the same seeds "
               f"and batch order, on another machine) that stopped there; those at {listed[1]} steps from the run "
               f"that went on, whose mean loss over each {window:,} steps stays within {diff:.1%} of the earlier "
               f"run's over the {common:,} steps both trained: they part by float rounding only. The loss column "
               "and curve are the longer run's; each snapshot's counts are its own.")
    return {"last_run_steps": mine, "other_steps": other, "rerun": bool(other), "common_steps": common,
            "loss_diff_max": float(diff), "reading": reading}


def loss_at(losses, step: int, window: int = 1000, every: int = 50) -> float:
    """Mean training loss over the ``window`` steps before ``step`` (``losses``: one mean per ``every`` steps)."""
    step, window = check_int("step", step, every, None), check_int("window", window, every, None)
    end = step // every
    if end > len(losses):
        raise ValueError(f"step must be at most {len(losses) * every} (the loss curve's length), got {step}")
    return float(np.mean(losses[max(0, end - window // every):end]))


def _rate(row: dict, label: str, z: float) -> tuple:
    count, n = row[f"{label}_count"], row["n_generated"]
    return (count / n, *wilson_interval(count, n, z))


def _z(a: dict, b: dict) -> float:
    """Two-proportion z of row ``b``'s hallucinated rate against row ``a``'s (:func:`two_proportion_z`)."""
    return two_proportion_z(a["hallucinated_count"], a["n_generated"], b["hallucinated_count"], b["n_generated"])


def settled(rows_, losses, loss_tol: float = 0.02, z: float = 3.29) -> dict:
    """Whether the last two snapshots agree (module docstring): ``loss_change`` (relative), ``rate_z`` (last
    minus previous hallucinated rate, two-proportion z), ``passed``, and the two ``steps``."""
    check_float("loss_tol", loss_tol, 0.0, None, lo_open=True)
    if len(rows_) < 2:
        raise ValueError(f"rows must hold at least two snapshots to tell whether a run settled, got {len(rows_)}")
    a, b = rows_[-2], rows_[-1]
    la, lb = loss_at(losses, a["step"]), loss_at(losses, b["step"])
    rate_z = _z(a, b)
    change = (lb - la) / la
    return {"steps": (a["step"], b["step"]), "loss_change": change, "rate_z": rate_z,
            "passed": bool(abs(change) < loss_tol and abs(rate_z) < z)}


def _label_cells(row: dict, z: float) -> list:
    """Each label's rate with its Wilson interval at ``z``, then the count of doubled columns (a column with
    >= 2 copies of its shape; one image may hold several)."""
    cells = []
    for label in LABELS:
        rate, lo, hi = _rate(row, label, z)
        cells.append(f"{rate:.1%} [{lo:.1%}, {hi:.1%}]")
    return cells + [f"{row['multi_total']}"]


def compare_table(named: dict, z: float = 3.29) -> str:
    """Markdown: one row per ``{label: row}`` (snapshots of different runs, e.g. two resolutions), each
    label's rate with its Wilson interval, the doubled-column count, and the two-proportion z of its
    hallucinated rate against the first row's (two runs: sampling noise only, not run-to-run spread)."""
    check_instance("named", named, dict, " {label: shapes_model row}")
    if not named:
        raise ValueError("named must be a non-empty dict {label: shapes_model row}")
    first = next(iter(named.values()))
    body = []
    for i, (name, r) in enumerate(named.items()):
        zv = _z(first, r)
        body.append([name, f"{r['step']:,}", *_label_cells(r, z), "–" if i == 0 else f"{zv:+.2f}"])
    return markdown_table(["model", "training steps", *LABELS, "doubled columns (≥ 2 copies of its shape)",
                           "z, hallucinated vs the first row"], body)


def common_steps(rows_a, rows_b) -> list:
    """``[(step, row_a, row_b)]`` for every step both runs measured, ascending (ValueError if none)."""
    b = {r["step"]: r for r in rows_b}
    out = [(r["step"], r, b[r["step"]]) for r in rows_a if r["step"] in b]
    if not out:
        raise ValueError(f"the runs share no snapshot step: {[r['step'] for r in rows_a]} and {sorted(b)}")
    return sorted(out, key=lambda x: x[0])


def replicate_table(named: dict, z: float = 3.29) -> str:
    """Markdown: two runs of one recipe (``{label: rows}``, e.g. bfloat16 and float32 convolutions) at every
    step both measured: each run's hallucinated and valid share with its Wilson interval at ``z``, its
    doubled columns, and the two-proportion z of the second run's hallucinated rate against the first's
    (within-run sampling noise; the difference between the two rows is the spread between runs)."""
    check_instance("named", named, dict, " {label: rows of a run}")
    if len(named) != 2:
        raise ValueError(f"named must hold two runs {{label: rows}}, got {len(named)}")
    (name_a, rows_a), (name_b, rows_b) = named.items()
    body = []
    for step, a, b in common_steps(rows_a, rows_b):
        zv = _z(a, b)
        for i, (name, r) in enumerate(((name_a, a), (name_b, b))):
            rates = (_rate(r, label, z) for label in ("hallucinated", "valid"))
            cells = [f"{v:.1%} [{lo:.1%}, {hi:.1%}]" for v, lo, hi in rates]
            body.append([f"{step:,}", name, f"{r['n_generated']:,}", *cells, f"{r['multi_total']}",
                         "–" if i == 0 else f"{zv:+.2f}"])
    return markdown_table(["training steps", "run", "images", "hallucinated", "valid",
                           "doubled columns (≥ 2 copies of its shape)", "z, second run vs first"], body)


def replicate_numbers(rows_a, rows_b, z: float = 3.29) -> dict:
    """Glue for a second run beside the first (chapter 3, prefix ``ch3_rep_``): ``steps`` (the common steps
    in words) and ``n_common``; at the last common ``step``, each run's hallucinated rate with its Wilson
    interval (``a_*``, ``b_*``) and their two-proportion ``z``; ``max_abs_z`` over the common steps and
    ``verdict`` (whether any difference is resolved at ``z``); ``b_last_step``, the second run's furthest
    snapshot."""
    pairs = common_steps(rows_a, rows_b)
    zs = [_z(a, b) for _, a, b in pairs]
    step, a, b = pairs[-1]
    out = {"steps": in_words(f"{s:,}" for s, _, _ in pairs),
           "n_common": len(pairs), "step": step, "z": zs[-1], "max_abs_z": max(abs(v) for v in zs),
           "b_last_step": max(r["step"] for r in rows_b)}
    for key, row in (("a", a), ("b", b)):
        out[key], out[f"{key}_lo"], out[f"{key}_hi"] = _rate(row, "hallucinated", z)
    resolved = sum(abs(v) >= z for v in zs)
    out["verdict"] = (f"no difference resolved at any common step (|z| < {z})" if not resolved else
                      f"a difference resolved at {resolved} of {len(zs)} common steps (|z| >= {z})")
    return _floats(out)


VALID_GATE = 0.5      # chapter 3's quality gate: at least half of the generated images are valid


def beside_numbers(row: dict, base: dict, z: float = 3.29) -> dict:
    """Glue for a model shown beside another at the same training step (chapter 3: the 64x64 model beside the
    32x32 run, prefix ``ch3_res64_``): its ``step``; each label's rate with its Wilson interval at ``z`` and the
    base's rate (``base_<label>``); ``gate``, "passes" or "fails" the chapter's quality gate (at least
    ``VALID_GATE`` = ``gate_min`` of its images valid), ``reading``, a sentence on what that allows its
    hallucinated share to say, and ``status`` (a few words for a summary table); the
    two-proportion ``z`` of its hallucinated rate against the base's (two runs: sampling noise only); and
    ``train_hours`` and ``step_cost`` (its training seconds over the base's, at the same step: wall times of two
    runs, each on one thread of a machine shared with other jobs)."""
    check_instance("row", row, dict, " (a shapes_model row)")
    check_instance("base", base, dict, " (a shapes_model row)")
    if row["step"] != base["step"]:
        raise ValueError(f"base must be measured at the row's step {row['step']:,}, got step {base['step']:,}")
    out = {"step": row["step"], "n": row["n_generated"], "multi": row["multi_total"],
           "train_hours": row["train_seconds"] / 3600, "step_cost": row["train_seconds"] / base["train_seconds"],
           "z": _z(base, row)}
    for label in LABELS:
        out[label], out[f"{label}_lo"], out[f"{label}_hi"] = _rate(row, label, z)
        out[f"base_{label}"] = _rate(base, label, z)[0]
    passed = out["valid"] >= VALID_GATE
    out["gate"], out["gate_min"] = "passes" if passed else "fails", VALID_GATE
    out["reading"] = ("It is one run: its hallucinated share is shown beside the others, not asserted." if passed else
                      "Its hallucinated share is therefore not used for any claim; how much longer it must train "
                      "to pass the gate is not measured here.")
    out["status"] = (f"passes the quality gate at {row['step']:,} steps (one run, shown)" if passed else
                     f"fails the quality gate at {row['step']:,} steps: no claim")
    return _floats(out)


def _floats(out: dict) -> dict:
    """``out`` with numpy scalars turned into Python floats (glue-friendly)."""
    return {k: float(v) if isinstance(v, (np.floating, float)) else v for k, v in out.items()}


def table(rows_, losses, z: float = 3.29) -> str:
    """Markdown: per snapshot, the loss and each label's rate with its Wilson interval at ``z``."""
    body = [[f"{r['step']:,}", f"{loss_at(losses, r['step']):.4f}", *_label_cells(r, z)] for r in rows_]
    return markdown_table(["training steps", "loss (last 1,000 steps)", *[f"{n}" for n in LABELS],
                           "doubled columns (≥ 2 copies of its shape)"], body)


def numbers(rows_, losses, reference: dict | None = None, z: float = 3.29) -> dict:
    """Glue for chapter 3 (prefix ``ch3_steps_``): first and last snapshot's steps, loss and label rates with
    intervals; ``{first,last}_among_read`` (hallucinated among the images read as well-formed, valid or
    hallucinated: an early snapshot's malformed images hold its hallucinated share down); ``trend`` (the
    hallucinated rate, last snapshot against the reference's step, else the first: fell, rose or no change
    resolved at ``z``; one run, so a description, not a claim); the settling test; ``status`` and
    ``outlook`` (what the last snapshot says of the claim, in words); with ``reference`` (a row of another model at the same step, e.g. the
    float32 model), its hallucinated rate, the z of the same-step snapshot against it, and ``x_longer``, how many
    times the reference's training the last snapshot had."""
    first, last = rows_[0], rows_[-1]
    s = settled(rows_, losses, z=z)
    out = {"n_snapshots": len(rows_), "n_per_snapshot": last["n_generated"], "first_step": first["step"],
           "last_step": last["step"], "first_loss": loss_at(losses, first["step"]),
           "last_loss": loss_at(losses, last["step"]), "loss_change": s["loss_change"], "rate_z": s["rate_z"],
           "settled": "settled" if s["passed"] else "not settled", "previous_step": s["steps"][0]}
    base = first
    if reference is not None:
        same = [r for r in rows_ if r["step"] == reference["step"]]
        if not same:
            raise ValueError(f"reference is at step {reference['step']}, which no snapshot measures")
        base = same[0]
    out["trend_from"] = base["step"]
    out["trend_from_hallucinated"] = _rate(base, "hallucinated", z)[0]
    out["trend_z"] = _z(base, last)
    out["trend"] = ("fell" if out["trend_z"] <= -z else "rose" if out["trend_z"] >= z
                    else f"no change resolved at |z| < {z}")
    for name, row in (("first", first), ("last", last)):
        for label in LABELS:
            out[f"{name}_{label}"], out[f"{name}_{label}_lo"], out[f"{name}_{label}_hi"] = _rate(row, label, z)
        out[f"{name}_multi"] = row["multi_total"]
        read = row["valid_count"] + row["hallucinated_count"]        # images read as well-formed shapes
        out[f"{name}_among_read"] = row["hallucinated_count"] / read if read else float("nan")
    still, at = out["last_hallucinated_lo"] > 0, f"{last['step']:,}"
    out["status"] = (f"open: the run has not settled by {at} steps" if not s["passed"] else
                     f"holds for the settled {at}-step model" if still else
                     f"fails: no hallucination resolved at {at} steps")
    out["outlook"] = (
        f"Whether the rate settles, and above zero as mode interpolation predicts for a smooth network, is open: "
        f"the run has not settled by {at} steps." if not s["passed"] else
        f"The run has settled by {at} steps and still hallucinates (99.9% lower bound "
        f"{out['last_hallucinated_lo']:.1%}), as mode interpolation predicts for a smooth network: on this run the "
        "hallucinations are not an artefact of under-training." if still else
        f"The run has settled by {at} steps with no hallucination resolved (99.9% lower bound 0 of "
        f"{last['n_generated']:,} images): on this run the hallucinations of shorter training faded with training, "
        "so at this resolution and sample size they are not shown to outlast it.")
    if reference is not None:
        out["ref_step"], out["x_longer"] = reference["step"], last["step"] / reference["step"]
        out["ref_hallucinated"], out["ref_lo"], out["ref_hi"] = _rate(reference, "hallucinated", z)
        out["same_step_hallucinated"] = _rate(same[0], "hallucinated", z)[0]
        out["ref_z"] = _z(reference, same[0])
        out["ref_verdict"] = (f"no difference resolved (|z| < {z})" if abs(out["ref_z"]) < z
                              else f"a difference (|z| >= {z})")
    return _floats(out)


def claims(rows_, losses, z: float = 3.29) -> tuple:
    """``(claims, sanity)``: on a settled curve whose last snapshot still hallucinates (its 99.9% Wilson
    lower bound > 0, i.e. at least one hallucinated image), that it draws >= 2 copies of a shape in a column.
    Nothing is asserted on a curve that has not settled (printed as withheld), nor on a settled one that
    resolves no hallucination: that outcome is the measured answer, printed as NOT REPRODUCED (and glued by
    :func:`numbers` as ``status`` / ``outlook``), not a failure of the code."""
    s = settled(rows_, losses, z=z)
    last = rows_[-1]
    sanity = {"every snapshot's label counts add up to its images":
              all(sum(r[f"{n}_count"] for n in LABELS) == r["n_generated"] for r in rows_)}
    if not s["passed"]:
        print(f"WITHHELD SIMPLE SHAPES claims on the {last['step']:,}-step snapshot: the run has not settled "
              f"(loss change {s['loss_change']:+.1%}, rate z = {s['rate_z']:+.2f})")
        return {}, sanity
    lo = _rate(last, "hallucinated", z)[1]
    if lo == 0:
        print(f"NOT REPRODUCED: the settled {last['step']:,}-step model hallucinates ({last['hallucinated_count']} "
              f"of {last['n_generated']:,} images; loss change {s['loss_change']:+.1%}, rate z = {s['rate_z']:+.2f})")
        return {}, sanity
    return {f"the {last['step']:,}-step model (settled; hallucinated, 99.9% lower bound {lo:.2%} > 0) draws >= 2 "
            "copies of a shape in one column": last["multi_total"] > 0}, sanity


def plot(rows_, losses, reference: dict | None = None, z: float = 3.29, every: int = 50) -> Figure:
    """Two panels: the training loss (mean per ``every`` steps, snapshots marked), and each label's rate with
    its Wilson interval against training steps (log scale); ``reference`` drawn as an open marker."""
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    ax_loss, ax_rate = fig.subplots(1, 2)
    steps = np.arange(1, len(losses) + 1) * every
    ax_loss.plot(steps, losses, lw=0.6, color="0.5")
    for r in rows_:
        ax_loss.axvline(r["step"], color="C0", ls=":", lw=1)
    ax_loss.set(xlabel="training steps", ylabel=f"loss (mean per {every} steps)", yscale="log",
                title="training loss; dotted: snapshots")
    x = np.array([r["step"] for r in rows_])
    for i, label in enumerate(LABELS):
        v = np.array([_rate(r, label, z) for r in rows_])
        ax_rate.errorbar(x, v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt="o-", capsize=3,
                         color=f"C{i}", label=label)
        if reference is not None:
            rate, lo, hi = _rate(reference, label, z)
            ax_rate.errorbar([reference["step"] * 1.06], [rate], yerr=[[rate - lo], [hi - rate]], fmt="o",
                             mfc="white", color=f"C{i}", capsize=3)
    ax_rate.set(xscale="log", xlabel="training steps", ylabel=f"share of images (Wilson interval, z = {z})",
                title="labels against training" + ("; open: the float32 model" if reference else ""))
    ax_rate.legend(fontsize=8)
    return fig


@dataclass
class Curve:
    """One run's snapshots (:func:`rows`), its loss curve and an optional ``reference`` row (another model
    at one of the snapshots' steps), with the chapter's table, numbers, claims and figure as methods."""

    rows: list
    losses: list
    reference: dict | None = None
    runs: dict | None = None             # :func:`run_split` of the records, when loaded from them

    def table(self) -> str:
        return table(self.rows, self.losses)

    def at(self, step: int) -> dict:
        """The snapshot row at ``step``."""
        for r in self.rows:
            if r["step"] == step:
                return r
        raise ValueError(f"step must be one of the snapshots {[r['step'] for r in self.rows]}, got {step!r}")

    def numbers(self) -> dict:
        """:func:`numbers`, with :attr:`runs` as ``runs_*`` when the curve was loaded from records."""
        out = numbers(self.rows, self.losses, self.reference)
        return out | {f"runs_{k}": in_words(f"{s:,}" for s in v) if isinstance(v, list) else v
                      for k, v in (self.runs or {}).items()}

    def claims(self) -> tuple:
        return claims(self.rows, self.losses)

    def plot(self) -> Figure:
        return plot(self.rows, self.losses, self.reference)


def load(sweep, reference_sweep=None) -> Curve:
    """The :class:`Curve` of a ``shapes_model`` sweep's records (a spec file or a checked sweep,
    :func:`mode_interp.sweep.sweep_records`), with the final row of ``reference_sweep``'s one record as the
    reference and the records' :func:`run_split`."""
    from .sweep import sweep_records

    records = sweep_records(sweep)
    rows_, losses = rows(records)
    reference = None
    if reference_sweep is not None:
        refs = sweep_records(reference_sweep)
        if len(refs) != 1:
            raise ValueError(f"reference_sweep must hold one record, got {len(refs)}")
        reference = refs[0]["result"]["rows"][-1]
    return Curve(rows_, losses, reference, run_split(records))
