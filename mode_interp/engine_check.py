"""Does the fast engine change the science? bfloat16 against float32 sampling of one model, same seed.

For a toy model (:func:`compare_toy`) each precision draws n samples from the same generator seed, so the
two runs see the same noise and differ only by the arithmetic. Reported per precision: the hallucinated
fraction (> k sigma from every mode) with its Wilson interval, Hal's AUROC with its DeLong interval, the
per-mode spread, and the seconds taken. The verdict (``equal``) needs all three of

- the hallucinated fractions equal under the pooled two-proportion test at 99.9% (|z| < 3.29; the runs
  are paired, so this unpaired test is conservative in favour of equality: the paired counts are also
  reported: samples hallucinated in one run and not the other);
- each AUROC inside the other's 99.9% DeLong interval (not tested when a run has a single class);
- the modes' spread within ``spread_tol`` (2%) of the float32 one: the mean over modes of the relative
  difference of each mode's spread. The largest single mode's difference and the spread of the per-mode
  differences are reported beside it: with a few hundred samples per mode (the 25-mode grid) one mode's
  spread moves by a percent or two between two runs even when they share their noise, because the chain
  amplifies a small change of eps_hat into a different sample for part of the batch.

:func:`compare_shapes` does the same for a SIMPLE SHAPES U-Net, with the shape counter's labels
(hallucinated among the readable images) and whole-image Hal. :func:`compare_training` compares a model
trained in bfloat16 with its float32 twin (both sampled in float32): quality gate and hallucinated rate.

The engine page reads the two benchmark records through :func:`read_record`, :func:`benchmark_numbers`,
:func:`validation_report`, :func:`twins_report` and :func:`live_table`: tables and named numbers recomputed
from the records' counts, intervals and per-mode spreads.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ._validate import check_float, check_instance, check_int
from .detect import WindowVariance, auroc_interval
from .hallucination import is_hallucinated
from .report import markdown_table
from .stats import mean_interval, two_proportion_z, wilson_interval
from .interpolation import mode_summary, quality_gate
from .precision import check_precision

Z999 = 3.29


def _rates(labels_a: np.ndarray, labels_b: np.ndarray) -> dict:
    n_a, n_b = len(labels_a), len(labels_b)
    c_a, c_b = int(labels_a.sum()), int(labels_b.sum())
    z = two_proportion_z(c_a, n_a, c_b, n_b)
    out = {"z": z, "rates_equal": abs(z) < Z999}
    if n_a == n_b:
        out["paired_discordant"] = int((labels_a != labels_b).sum())
    return out


def _auroc(scores, labels):
    """Hal's AUROC with its 99.9% DeLong interval, or None when the labels hold a single class."""
    return auroc_interval(scores, labels, Z999) if 0 < labels.sum() < len(labels) else None


def _aurocs_overlap(a, b):
    """Each AUROC inside the other's interval; None when either run has no AUROC (a single class)."""
    if a is None or b is None:
        return None
    return a["lo"] <= b["auroc"] <= a["hi"] and b["lo"] <= a["auroc"] <= b["hi"]


def _run_toy(trained, n: int, seed: int, precision: str, window: int, k: float) -> dict:
    mixture = trained.config.mixture()
    stream = WindowVariance(n, mixture.dim, window)
    start = time.perf_counter()
    result = trained.sample(n, seed, observer=stream, precision=precision)
    seconds = time.perf_counter() - start
    labels = is_hallucinated(result.x0, mixture, k).numpy()
    count = int(labels.sum())
    lo, hi = wilson_interval(count, n, Z999)
    summary = mode_summary(result.x0, mixture)
    return {"precision": result.precision, "seconds": seconds, "n": n, "hallucinated": count, "rate": count / n,
            "rate_lo": lo, "rate_hi": hi, "auroc": _auroc(stream.hal().numpy(), labels),
            "spread": summary["std"].tolist(), "within": summary["within"], "labels": labels,
            "x0": result.x0}


def compare_toy(trained, n: int, seed: int, precision: str = "bfloat16", window: int = 10, k: float = 5.0,
                spread_tol: float = 0.02) -> dict:
    """float32 against ``precision`` sampling of the toy model ``trained`` (a ``TrainedModel``): see the
    module docstring. Returns ``{"float32": run, precision: run, "z", "rates_equal", "paired_discordant",
    "aurocs_overlap", "spread_max_rel", "spreads_equal", "max_abs_x0", "equal"}``."""
    n = check_int("n", n, 2, None)
    check_int("seed", seed, 0, None)
    if check_precision(precision) != "bfloat16":
        raise ValueError(f"precision must be 'bfloat16' (it is compared with float32), got {precision!r}")
    spread_tol = check_float("spread_tol", spread_tol, 0.0, 1.0, lo_open=True)
    a = _run_toy(trained, n, seed, "float32", window, k)
    b = _run_toy(trained, n, seed, precision, window, k)
    out = {"float32": a, precision: b, **_rates(a["labels"], b["labels"])}
    out["aurocs_overlap"] = _aurocs_overlap(a["auroc"], b["auroc"])
    rel = np.array(b["spread"]) / np.array(a["spread"]) - 1
    out["spread_mean_rel"] = float(np.nanmean(rel))
    out["spread_max_rel"] = float(np.nanmax(np.abs(rel)))
    out["spread_sd_rel"] = float(np.nanstd(rel, ddof=1)) if len(rel) > 1 else 0.0
    out["spreads_equal"] = abs(out["spread_mean_rel"]) <= spread_tol
    out["max_abs_x0"] = float((a["x0"] - b["x0"]).abs().max())
    out["equal"] = out["rates_equal"] and out["aurocs_overlap"] is not False and out["spreads_equal"]
    for run in (a, b):
        del run["labels"], run["x0"]
    return out


def _run_shapes(trained, n: int, seed: int, steps: int, precision: str, window: int, tol) -> dict:
    from . import detect
    from . import shape_counter as sc

    start = time.perf_counter()
    result = trained.sample(n, seed, steps=steps, window=window, precision=precision)
    seconds = time.perf_counter() - start
    label = np.array([r["label"] for r in sc.count_shapes(result.x0, tol)])
    keep = np.isin(label, ("valid", "hallucinated"))
    if not keep.any():
        raise ValueError(f"none of the {n} generated images is readable (valid or hallucinated): nothing to compare")
    y = label[keep] == "hallucinated"
    count = int(y.sum())
    lo, hi = wilson_interval(count, int(keep.sum()), Z999)
    return {"precision": result.precision, "seconds": seconds, "n": n, "readable": int(keep.sum()),
            "hallucinated": count, "rate": count / int(keep.sum()), "rate_lo": lo, "rate_hi": hi,
            "auroc": _auroc(detect.hal(result.x0_hat).numpy()[keep], y), "labels": label,
            "x0": result.x0}


def compare_shapes(trained, n: int, seed: int, steps: int = 100, precision: str = "bfloat16",
                   window: int = 10) -> dict:
    """float32 against ``precision`` sampling of a SIMPLE SHAPES U-Net (``TrainedUNet``) on a ``steps``-step
    respaced chain: hallucinated share of the readable images, whole-image Hal AUROC, the share of images
    whose label changed, the largest pixel difference. ``equal``: rates equal (|z| < 3.29) and AUROCs
    inside each other's intervals."""
    from . import shape_counter as sc
    from .shapes import to_model_space

    n = check_int("n", n, 2, None)
    if check_precision(precision) != "bfloat16":
        raise ValueError(f"precision must be 'bfloat16' (it is compared with float32), got {precision!r}")
    data = trained.config.data()
    tol = sc.fit_tolerances(data, to_model_space(data.images, trained.config.resolution))
    a = _run_shapes(trained, n, seed, steps, "float32", window, tol)
    b = _run_shapes(trained, n, seed, steps, precision, window, tol)
    z = two_proportion_z(a["hallucinated"], a["readable"], b["hallucinated"], b["readable"])
    out = {"float32": a, precision: b, "z": z, "rates_equal": abs(z) < Z999,
           "aurocs_overlap": _aurocs_overlap(a["auroc"], b["auroc"]),
           "labels_changed": float((a["labels"] != b["labels"]).mean()),
           "max_abs_x0": float((a["x0"] - b["x0"]).abs().max())}
    out["equal"] = out["rates_equal"] and out["aurocs_overlap"] is not False
    for run in (a, b):
        del run["labels"], run["x0"]
    return out


def compare_training(config, n: int, sample_seed: int, k: float = 5.0, train=None) -> dict:
    """A toy ``config`` trained in float32 and in bfloat16 (its twin: same data, initialisation and batches),
    both sampled in float32 from one seed: each model's quality gate (:func:`quality_gate`), hallucinated
    rate, final loss and training seconds; ``rates_equal`` under the two-proportion test at 99.9%.
    ``train``: the training function (default :func:`mode_interp.train.load_or_train`)."""
    from .train import load_or_train

    train = load_or_train if train is None else train
    out = {}
    for precision in ("float32", "bfloat16"):
        trained = train(replace(config, precision=precision))
        x = trained.sample(check_int("n", n, 2, None), sample_seed, precision="float32").x0
        labels = is_hallucinated(x, trained.config.mixture(), k).numpy()
        summary = mode_summary(x, trained.config.mixture())
        lo, hi = wilson_interval(int(labels.sum()), n, Z999)
        out[precision] = {"trained_in": trained.precision, "train_seconds": trained.seconds,
                          "final_loss": trained.losses[-1] if trained.losses else None,
                          "gate": quality_gate(summary), "within": summary["within"],
                          "spread": summary["std"].tolist(), "hallucinated": int(labels.sum()), "n": n,
                          "rate": float(labels.mean()), "rate_lo": lo, "rate_hi": hi, "labels": labels}
    out.update(_rates(out["float32"].pop("labels"), out["bfloat16"].pop("labels")))
    out.pop("paired_discordant", None)      # two different models: no pairing
    out["gates_pass"] = all(all(out[p]["gate"].values()) for p in ("float32", "bfloat16"))
    out["ran_as_asked"] = all(out[p]["trained_in"] == p for p in ("float32", "bfloat16"))
    out["equal"] = out["rates_equal"] and out["gates_pass"] and out["ran_as_asked"]
    return out


# ---------------------------------------------------------------- the engine page's records, in tables

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"    # the two benchmark scripts' records
STUDY_NAMES = {"1d": "1-D {1,2,3} (chapter 2)", "grid": "2-D grid (chapter 2)", "shapes": "SIMPLE SHAPES U-Net (chapter 3)"}


def read_record(name: str, folder=None):
    """The JSON record ``name`` in ``folder`` (default :data:`BENCHMARKS`): ``results.json`` of
    ``benchmarks/run.py`` or ``precision_validation.json`` of ``benchmarks/validate_precision.py``."""
    check_instance("name", name, str)
    path = Path(BENCHMARKS if folder is None else folder) / name
    if not path.is_file():
        raise ValueError(f"name must be a record file in {path.parent}, {path} does not exist")
    return json.loads(path.read_text())


def _rate_cell(r: dict) -> str:
    """A run's hallucinated share with its 99.9% Wilson interval and counts."""
    return f"{r['rate']:.2%} [{r['rate_lo']:.2%}, {r['rate_hi']:.2%}] ({r['hallucinated']}/{r.get('readable', r['n']):,})"


def _auroc_cell(r: dict) -> str:
    a = r.get("auroc")
    return f"{a['auroc']:.4f} [{a['lo']:.4f}, {a['hi']:.4f}]" if a else "– (one class)"


def benchmark_numbers(rows) -> dict:
    """The named numbers of a ``benchmarks/results.json`` record: ``big`` (the largest sampling batch),
    ``best_variant`` / ``best_ratio`` / ``best_rate`` (the fastest sampler there, its ratio to the plain
    implementation and samples per second), ``train_ratio`` / ``train_variant`` (the fastest training
    step), ``memory`` / ``memory_n`` / ``trajectory`` (peak resident MiB of the x0_hat window for ``memory_n``
    samples, and the MiB the whole trajectory would need), ``targets`` (whether the record meets the
    engine's targets: >= 12x sampling, >= 3x training), ``machine`` and ``record`` (where and how it was
    made), in words."""
    if isinstance(rows, (str, bytes, dict)) or not hasattr(rows, "__iter__"):
        raise TypeError(f"rows must be the list of a results.json record, got {type(rows).__name__}")
    rows = list(rows)
    sampling = [r for r in rows if isinstance(r, dict) and r.get("kind") == "sampling"]
    training = [r for r in rows if isinstance(r, dict) and r.get("kind") == "training"]
    memory = [r for r in rows if isinstance(r, dict) and r.get("kind") == "memory"]
    if not (sampling and training and memory):
        raise ValueError("rows must hold sampling, training and memory measurements (benchmarks/run.py)")
    big = max(r["batch"] for r in sampling)
    best = max((r for r in sampling if r["batch"] == big), key=lambda r: r["ratio_vs_plain"])
    best_train = max(training, key=lambda r: r["ratio_vs_plain"])
    machine, memory = rows[0], memory[0]
    sample_ok, train_ok = best["ratio_vs_plain"] >= 12, best_train["ratio_vs_plain"] >= 3
    targets = ("meets both" if sample_ok and train_ok else "meets the training target but not the sampling one"
               if train_ok else "meets the sampling target but not the training one" if sample_ok else "meets neither")
    return {"big": big, "best_ratio": best["ratio_vs_plain"], "best_rate": best["per_second"],
            "best_variant": best["variant"] + (f" (ran as {best['ran_as']})" if best["ran_as"] != best["variant"] else ""),
            "train_ratio": best_train["ratio_vs_plain"], "train_variant": best_train["ran_as"],
            "memory": memory["peak_rss_mib"], "memory_n": memory["batch"],
            "trajectory": memory["plain_trajectory_mib_at_T1000"], "targets": targets,
            "machine": f"torch {machine['torch']}, {machine['torch_threads']} threads, CPU capability "
                       f"{machine['cpu_capability']}, native bfloat16: {'yes' if machine['bf16_native'] else 'no'}, "
                       f"recorded {machine['date']}",
            "record": f"record: {machine['command']} ({machine['machine']})"}


def validation_report(validation: dict) -> tuple:
    """The sampling studies of a ``precision_validation.json`` record, recomputed from its counts, intervals
    and per-mode spreads: ``(markdown, numbers, studies)``. ``studies[key]`` (for each of 1d / grid /
    shapes present) holds ``name``, ``z`` (two-proportion z of the hallucinated counts), ``overlap`` (each
    AUROC inside the other's interval; None for a single class), ``spread`` / ``spread_max`` / ``spread_sd``
    (mean, largest and sd over modes of bfloat16 / float32 - 1 of each mode's spread; None without modes),
    ``modes``, ``ran`` (what the bfloat16 run ran in) and ``emulated``. Numbers: ``spread_note`` (the
    per-mode reading in words) and ``record`` (how the record was made)."""
    check_instance("validation", validation, dict, " (precision_validation.json)")
    studies, rows, notes = {}, [], []
    for key, name in STUDY_NAMES.items():
        if key not in validation:
            continue
        rec = validation[key]["result"]
        a, b = rec["float32"], rec["bfloat16"]
        z = two_proportion_z(a["hallucinated"], a.get("readable", a["n"]), b["hallucinated"], b.get("readable", b["n"]))
        spread = spread_max = spread_sd = None
        if "spread" in a:
            rel = np.array(b["spread"]) / np.array(a["spread"]) - 1
            spread, spread_max, spread_sd = float(rel.mean()), float(np.abs(rel).max()), float(rel.std(ddof=1))
        studies[key] = {"name": name, "z": z, "overlap": _aurocs_overlap(a["auroc"], b["auroc"]), "spread": spread,
                        "spread_max": spread_max, "spread_sd": spread_sd, "modes": len(a.get("spread", [])),
                        "ran": b["precision"], "emulated": validation[key]["emulated"]}
        rows.append([name, _rate_cell(a), _rate_cell(b), f"{z:+.2f}",
                     rec.get("paired_discordant", f"{rec.get('labels_changed', 0):.1%} of images"),
                     _auroc_cell(a), _auroc_cell(b),
                     "–" if spread is None else f"{spread:+.2%} (largest {spread_max:.2%}, sd {spread_sd:.2%})",
                     f"{a['seconds']:.0f} / {b['seconds']:.0f}"])
        if spread is not None:
            per_mode = "holds" if spread_max <= 0.02 else "does not hold"
            centred = abs(spread) < 2 * spread_sd / np.sqrt(len(a["spread"])) + 1e-12
            notes.append(f"{name}: the stricter per-mode reading (every one of {len(a['spread'])} modes within 2%) "
                         f"{per_mode} (largest {spread_max:.2%}); the per-mode differences average {spread:+.2%} with a "
                         f"scatter of {spread_sd:.2%}" + (", i.e. they scatter around zero: no systematic change of "
                                                         "width" if centred else ", a systematic shift"))
    if not studies:
        raise ValueError(f"validation holds none of the studies {sorted(STUDY_NAMES)}")
    table = markdown_table(
        ["model", "float32: hallucinated (99.9%)", "bfloat16: hallucinated", "z", "labels that changed",
         "float32: Hal AUROC (99.9% DeLong)", "bfloat16: Hal AUROC",
         "mode spread, bf16 vs f32: mean (largest, sd over modes)", "seconds (f32 / bf16)"], rows)
    meta = validation[next(iter(studies))]
    numbers = {"spread_note": "; ".join(notes) + "." if notes else "No toy study in the record.",
               "validation_record": f"record: {meta['command']} | torch {meta['torch']}, {meta['threads']} thread(s), CPU "
                         f"{meta['cpu_capability']}, native bfloat16: {meta['bf16_native']}, emulated: "
                         f"{meta['emulated']}, {meta['date']}"}
    return table, numbers, studies


def twins_report(validation: dict, confidence: float = 0.95) -> tuple:
    """The training twins of a ``precision_validation.json`` record (a model trained in bfloat16 and its
    float32 twin, both sampled in float32): ``(markdown, numbers, twins)``. One table row per twin and
    precision (final loss, quality gate, share within 3 sigma, hallucinated share, training seconds, the
    two-proportion z recomputed). ``twins[i]``: ``gates_pass`` (both twins pass the quality gate),
    ``trained_as_asked`` (each trained in the precision asked for) and ``z``. Numbers, across the seeds
    (paired bfloat16 − float32, mean with its ``confidence`` t-interval; text when fewer than 2 seeds):
    ``twin_n``, ``twin_rate``, ``twin_within``, ``twin_verdict``."""
    check_instance("validation", validation, dict, " (precision_validation.json)")
    confidence = check_float("confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True)
    records = validation["training"]["result"] if "training" in validation else []
    rows, twins = [], []
    for i, tw in enumerate(records):
        z = two_proportion_z(tw["float32"]["hallucinated"], tw["float32"]["n"], tw["bfloat16"]["hallucinated"],
                             tw["bfloat16"]["n"])
        twins.append({"z": z, "gates_pass": all(all(tw[p]["gate"].values()) for p in ("float32", "bfloat16")),
                      "trained_as_asked": all(tw[p]["trained_in"] == p for p in ("float32", "bfloat16"))})
        rows += [[i, p, tw[p]["trained_in"], f"{tw[p]['final_loss']:.4f}",
                  "pass" if all(tw[p]["gate"].values()) else "fail", f"{tw[p]['within']:.2%}", _rate_cell(tw[p]),
                  f"{tw[p]['train_seconds']:.0f}", f"{z:+.2f}" if p == "bfloat16" else ""] for p in ("float32", "bfloat16")]
    table = markdown_table(["seed", "asked", "trained in", "final loss", "quality gate", "within 3σ",
                            "hallucinated (99.9%)", "training s", "z vs float32"], rows)
    numbers = {"twin_n": len(records)}
    if len(records) < 2:                 # one seed cannot be compared across seeds
        missing = "not available (fewer than 2 seeds in the record)"
        return table, numbers | {"twin_rate": missing, "twin_within": missing,
                                 "twin_verdict": "the record holds too few seeds to compare"}, twins
    rate = mean_interval([tw["bfloat16"]["rate"] - tw["float32"]["rate"] for tw in records], confidence)
    within = mean_interval([tw["bfloat16"]["within"] - tw["float32"]["within"] for tw in records], confidence)
    higher = sum(tw["bfloat16"]["rate"] > tw["float32"]["rate"] for tw in records)
    verdict = ("no difference is measurable at this number of seeds" if rate["lo"] <= 0 <= rate["hi"] else
               "bfloat16 training hallucinates more" if rate["lo"] > 0 else "bfloat16 training hallucinates less")
    return table, numbers | {
        "twin_rate": f"{rate['mean']:+.2%} [{rate['lo']:+.2%}, {rate['hi']:+.2%}] (t-test p = {rate['p']:.2f})",
        "twin_within": f"{within['mean']:+.2%} [{within['lo']:+.2%}, {within['hi']:+.2%}]",
        "twin_verdict": verdict + f" (the bfloat16 twin's rate is the higher in {higher} of {len(records)} seeds; "
                                  "more seeds would tell whether that is chance)"}, twins


def live_table(live: dict) -> tuple:
    """A :func:`compare_toy` result as ``(markdown, summary)``: one row per precision (what it ran in, the
    hallucinated share, Hal's AUROC, the range of the mode spreads, seconds), and the comparison in words
    (z, samples whose label changed, largest spread difference, largest |x0| difference)."""
    check_instance("live", live, dict, " (from compare_toy)")
    if "float32" not in live or "bfloat16" not in live:
        raise ValueError(f"live must be a compare_toy result with float32 and bfloat16 runs, got keys {sorted(live)}")
    table = markdown_table(["run", "ran in", "hallucinated (99.9%)", "Hal AUROC (99.9% DeLong)", "mode spreads / σ",
                            "seconds"],
                           [[k, r["precision"], f"{r['rate']:.2%} [{r['rate_lo']:.2%}, {r['rate_hi']:.2%}] "
                                                f"({r['hallucinated']})", _auroc_cell(r),
                             f"{min(r['spread']):.3f} – {max(r['spread']):.3f}", f"{r['seconds']:.0f}"]
                            for k, r in (("float32", live["float32"]), ("bfloat16", live["bfloat16"]))])
    summary = (f"z = {live['z']:+.2f}; samples whose label changed: {live['paired_discordant']}; largest spread "
               f"difference {live['spread_max_rel']:.2%}; largest |x0 difference| {live['max_abs_x0']:.3g}")
    return table, summary


def claims(studies: dict, twins: list, live: dict, z: float = Z999) -> dict:
    """The engine page's claims (each can fail if bfloat16 changed the science), from
    :func:`validation_report`'s ``studies``, :func:`twins_report`'s ``twins`` and a :func:`compare_toy`
    result ``live``: per study, equal hallucinated fractions (|z| < ``z``), AUROCs inside each other's
    DeLong intervals (where both classes are present) and the mean per-mode spread within 2%; per twin, both
    models pass the quality gate; the live check's rates and AUROCs likewise."""
    check_instance("studies", studies, dict, " (from validation_report)")
    check_instance("twins", twins, list, " (from twins_report)")
    check_instance("live", live, dict, " (from compare_toy)")
    z = check_float("z", z, 0.0, None, lo_open=True)
    out = {}
    for r in studies.values():
        out[f"{r['name']}: hallucinated fractions equal under bfloat16 (|z| < {z:g})"] = abs(r["z"]) < z
        if r["overlap"] is not None:
            out[f"{r['name']}: Hal AUROCs inside each other's 99.9% DeLong intervals"] = r["overlap"]
        if r["spread"] is not None:
            out[f"{r['name']}: the modes' spread within 2% under bfloat16 (mean over {r['modes']} modes)"] = \
                abs(r["spread"]) <= 0.02
    for i, tw in enumerate(twins):
        out[f"training twin, seed {i}: the bfloat16-trained model passes the quality gate, as its float32 twin "
            "does"] = tw["gates_pass"]
    out[f"live check ({live['float32']['n']:,} samples): hallucinated fractions equal (|z| < {z:g})"] = abs(live["z"]) < z
    out["live check: Hal AUROCs inside each other's 99.9% DeLong intervals"] = live["aurocs_overlap"] is not False
    return out
