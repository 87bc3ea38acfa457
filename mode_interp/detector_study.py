"""Chapter 4's study of the trajectory-variance detector Hal (the paper's detection section): sampling with
the streaming observers, the filter at a target removal, where its false positives lie, the window study,
SIMPLE SHAPES with honest baselines, two alternative scores, and the sentences and tables that report them.

The detector itself (Hal, thresholds, ROC, AUROC) is :mod:`mode_interp.detect`; this module is the
bookkeeping of one study of it. Conventions: a *toy record* is the dict :func:`toy_run` returns, the
chapter keeps them as ``{key: record}`` (key "1d", "2d": the suffix of its glued names), and functions
named ``*_numbers`` return ``{glue name: plain value}`` for :func:`mode_interp.report.glue_all`. The filter
removes every sample with score > threshold; "removed" is the share of hallucinations it removes,
"retained" the share of in-support samples it keeps (the paper's abstract: "over 95% of hallucinations
removed while 96% of in-support samples are retained").
"""

from __future__ import annotations

import numpy as np
import torch

from . import detect
from ._validate import check_array, check_float, check_instance, check_int, check_ints, check_points
from .data import GaussianMixture
from .hallucination import is_hallucinated, nearest_mode_distance
from .report import markdown_table
from .schedule import Schedule, check_schedule, respace
from .stats import wilson_interval

PAPER_RETAINED = 0.96        # the paper's abstract: 96% of in-support samples retained
BOOK_RETAINED = 0.90         # what this book's checks ask for
SHAPE_SCORES = {             # glue-name key -> score name (the table's row) of the SIMPLE SHAPES scores
    "hal": "Hal, whole image (paper)",
    "col": "Hal, largest column",
    "unit": "Hal per unit ink, largest column",
    "ink": "baseline: largest column ink (no trajectory)",
}
BOUND_CONFIDENCE = 0.95      # the removal-safe threshold (detect.retention_bound): sure of its removal at 95%
BOUND_HEADER = (f"retained at a threshold {BOUND_CONFIDENCE:.0%} sure to remove 95% of new hallucinations "
                "(99.9% Wilson lower bound)")
FILTER_HEADERS = ["data", "window", "samples", "hallucinated", "removed", "in-support retained (99.9% interval)",
                  BOUND_HEADER, "AUROC (99.9% interval)"]


def _records(name: str, records) -> dict:
    """``{key: record}`` with at least one record, each a dict (what :func:`toy_run` returns)."""
    check_instance(name, records, dict, " {key: record}")
    if not records or not all(isinstance(r, dict) for r in records.values()):
        raise ValueError(f"{name} must map at least one key to a record dict, got {list(records)}")
    return records


def _need(name: str, value, keys) -> dict:
    """``value`` if it is a dict holding every one of ``keys``, else a TypeError / ValueError naming ``name``."""
    check_instance(name, value, dict)
    missing = [k for k in keys if k not in value]
    if missing:
        raise ValueError(f"{name} lacks {missing}: pass what the matching detector_study function returns")
    return value


_SUMMARY = ("n", "n_hallucinated", "removed", "n_removed", "retained", "auroc", "lo", "hi")


def _rows(name: str, rows) -> list:
    """[(data, window, summary dict)] with the summary's filter numbers present."""
    if isinstance(rows, (str, bytes, dict)) or not hasattr(rows, "__iter__"):
        raise ValueError(f"{name} must be a sequence of (data, window, summary) triples, got {rows!r}")
    rows = [tuple(r) for r in rows]
    if not rows or any(len(r) != 3 for r in rows):
        raise ValueError(f"{name} must hold at least one (data, window, summary) triple")
    for i, r in enumerate(rows):
        _need(f"{name}[{i}] summary", r[2], _SUMMARY)
    return rows


def _same_keys(name: str, values, records: dict) -> dict:
    check_instance(name, values, dict, " {key: ...} (the keys of the records)")
    if set(values) != set(records):
        raise ValueError(f"{name} must have the records' keys {sorted(records)}, got {sorted(values)}")
    return values


def _interval(r: dict, digits: int = 3) -> str:
    return f"{r['auroc']:.{digits}f} [{r['lo']:.{digits}f}, {r['hi']:.{digits}f}]"


# ---------------------------------------------------------------- sampling with the streaming observers

def toy_run(trained, n: int, seed: int, *, name: str, k_label: float = 5.0, hal_window: int = 10,
            window_max: int = 50) -> dict:
    """Sample ``n`` points from a trained toy model (:class:`mode_interp.train.TrainedModel`) and score them.

    The sampler keeps the last ``window_max`` predictions x0_hat and states x_t (for any later window), in
    a draw kept in the cache folder (``cache=True``: chapter 2 draws its main model's samples the same way,
    and this reads them back). Returns the record ``{"name", "config", "mixture", "n", "x0", "x0_hat"
    (window_max, n, d), "timesteps", "labels" (bool (n,): > k_label sigma from every mode), "hal" (numpy
    (n,): :func:`mode_interp.detect.hal` over the last hal_window rows), "x_t_var" (the same variance of
    x_t), "stream_error" (max relative difference between the streaming :class:`mode_interp.detect.WindowVariance`
    fed the window row by row and the two-pass Hal), "gap" (smallest distance between two modes), "seconds"
    (the chain's wall time), "from_cache", "source" (where the weights came from)}``.
    """
    from .train import TrainedModel

    check_instance("trained", trained, TrainedModel, " (from load_or_train)")
    n, seed = check_int("n", n, 2, None), check_int("seed", seed, 0, None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str (the data set's name in tables), got {name!r}")
    k_label = check_float("k_label", k_label, 0.0, None, lo_open=True)
    window_max = check_int("window_max", window_max, 2, trained.config.T)
    hal_window = check_int("hal_window", hal_window, 2, window_max)
    mix = trained.config.mixture()
    result = trained.sample(n, seed, window=window_max, keep_x_t=True, cache=True)
    hal = detect.hal(result.x0_hat, hal_window)
    return {"name": name, "config": trained.config, "mixture": mix, "n": n, "x0": result.x0,
            "x0_hat": result.x0_hat, "timesteps": result.timesteps,
            "labels": is_hallucinated(result.x0, mix, k_label).numpy(), "hal": hal.numpy(),
            "x_t_var": detect.hal(result.x_t, hal_window).numpy(), "source": trained.source,
            "seconds": result.seconds, "from_cache": result.from_cache,
            "stream_error": stream_error(result, hal_window, hal),
            "gap": float(torch.pdist(torch.as_tensor(mix.means)).min())}


def stream_error(result, hal_window: int, hal: torch.Tensor | None = None) -> float:
    """The largest relative difference between Hal computed in one pass over the kept window (the streaming
    :class:`mode_interp.detect.WindowVariance`, fed its rows in the sampler's order, as it would be during
    sampling in O(n d) memory) and the two-pass :func:`mode_interp.detect.hal` (``hal``, if already computed):
    an identity of the arithmetic."""
    stream = detect.WindowVariance(result.x0.shape[0], result.x0.shape[1], hal_window)
    for t, row in zip(result.timesteps, result.x0_hat):
        stream(t, None, row)
    hal = detect.hal(result.x0_hat, hal_window) if hal is None else hal
    return float(((stream.hal() - hal).abs() / hal.clamp_min(1e-30)).max())


def run_numbers(toy: dict) -> dict:
    """``{key_n: samples, key_n_hal: hallucinated samples}`` for every record of ``toy``."""
    out = {}
    for key, d in _records("toy", toy).items():
        out[f"{key}_n"], out[f"{key}_n_hal"] = int(d["n"]), int(np.sum(d["labels"]))
    return out


def gate_numbers(measured: dict) -> dict:
    """Chapter 2's strict gate on each record's samples (``measured``: ``{key: row}``, the rows
    :func:`mode_interp.toy_report.measure_samples` returns): ``key_gate`` ("passes" / "fails"),
    ``key_within``, ``key_median_spread``, ``key_worst_spread`` (mode spread over the exact chain's),
    ``key_blurred`` (how many modes are blurred), ``key_only_origin_blurred`` (True when the one blurred
    mode is the mode nearest the origin, the mode a network without an input bias cannot hold) and
    ``key_origin_spread`` (that mode's spread ratio)."""
    out = {}
    for key, row in _records("measured", measured).items():
        row = _need(f"measured[{key!r}]", row, ("m", "config"))
        gate = _need(f"measured[{key!r}]['m']", row["m"], ("gate",))["gate"]
        origin = row["config"].mixture().origin_mode
        out.update({f"{key}_gate": "passes" if gate["passed"] else "fails", f"{key}_within": gate["within"],
                    f"{key}_median_spread": gate["median_spread_ratio"],
                    f"{key}_worst_spread": gate["worst_spread_ratio"], f"{key}_blurred": len(gate["blurred"]),
                    f"{key}_only_origin_blurred": list(gate["blurred"]) == [origin],
                    f"{key}_origin_spread": gate["spread_ratio"][origin]})
    return out


def _drawn(d: dict) -> str:
    """A draw's sampling time, and whether this run read it back from the sample cache (another chapter's)."""
    cached = " (an earlier run's draw, read from the sample cache)" if d.get("from_cache") else ""
    return f"{d['seconds']:.0f} s{cached}"


def runs_table(toy: dict, k_label: float = 5.0) -> str:
    """Markdown: per record its samples, hallucinated share, model source, sampling time and the largest
    relative difference between streaming and windowed Hal."""
    k_label = check_float("k_label", k_label, 0.0, None, lo_open=True)
    rows = [[d["name"], f"{d['n']:,}", f"{int(np.sum(d['labels'])):,} ({np.mean(d['labels']):.2%})", d["source"],
             _drawn(d), f"{d['stream_error']:.1e}"] for d in _records("toy", toy).values()]
    return markdown_table(["data", "samples", f"hallucinated (> {k_label:g}σ)", "model", "sampling time",
                           "streaming vs window Hal: largest relative difference"], rows)


# ---------------------------------------------------------------- what the trajectories look like

def median_ratio(scores, labels) -> float:
    """median(score | hallucinated) / median(score | in support)."""
    s, y = detect._scores_labels(scores, labels)
    detect._both_classes(y)
    return float(np.median(s[y])) / float(np.median(s[~y]))


def median_ratios(toy: dict) -> dict:
    """``{key_median_ratio: median_ratio(hal, labels)}`` for every record."""
    return {f"{k}_median_ratio": median_ratio(d["hal"], d["labels"]) for k, d in _records("toy", toy).items()}


def step_noise(schedule: Schedule, hal_window: int = 10) -> dict:
    """The noise added per reverse step, sqrt(beta_t), at the window's ends: ``{"noise_0": t = 0,
    "noise_9": t = hal_window - 1}`` (the name is the paper's window's last step)."""
    check_schedule(schedule)
    hal_window = check_int("hal_window", hal_window, 2, schedule.T)
    betas = schedule.betas
    return {"noise_0": float(np.sqrt(betas[0])), "noise_9": float(np.sqrt(betas[hal_window - 1]))}


def trajectory_panels(toy: dict, seed: int = 0, per_group: tuple = (8, 6)) -> list:
    """Panels for :func:`mode_interp.plots.plot_x0_hat_trajectories`: per record, up to ``per_group[0]``
    (1-D) or ``per_group[1]`` (more dimensions) hallucinated and in-support samples drawn at random, without
    replacement, from one ``numpy`` generator seeded with ``seed`` (records in order, hallucinated first)."""
    seed = check_int("seed", seed, 0, None)
    per_group = check_ints("per_group", per_group, 1, None, min_len=2)
    rng, panels = np.random.default_rng(seed), []
    for d in _records("toy", toy).values():
        m = per_group[0] if d["mixture"].dim == 1 else per_group[1]
        pick = lambda mask: rng.choice(np.flatnonzero(mask), size=min(m, int(mask.sum())), replace=False)  # noqa: E731
        groups = {"hallucinated": pick(d["labels"]), "in support": pick(~d["labels"])}
        panels.append((f"{d['name']}: last {d['x0_hat'].shape[0]} steps", d["x0_hat"], d["timesteps"], groups,
                       d["mixture"]))
    return panels


# ---------------------------------------------------------------- the filter at a target removal

def filter_at_removal(scores, labels, target: float = 0.95, z: float = 3.29) -> dict:
    """:func:`mode_interp.detect.filter_summary` (the filter at the largest threshold that removes at least
    ``target`` of the hallucinations, AUROC with DeLong's interval) plus ``retained_lo`` / ``retained_hi``:
    the Wilson interval (:func:`mode_interp.stats.wilson_interval`, same ``z``) of the retained share
    n_retained / n_in_support (unbiased for new samples: the threshold is fitted on the hallucinated scores
    alone); and ``bound`` (:func:`mode_interp.detect.retention_bound` at ``BOUND_CONFIDENCE``): what a filter
    keeps at the lower threshold that is that sure to remove ``target`` of *new* hallucinations."""
    s = detect.filter_summary(scores, labels, target, z)
    s["retained_lo"], s["retained_hi"] = wilson_interval(s["n_retained"], s["n_in_support"], z)
    s["bound"] = detect.retention_bound(detect.in_support_below_hallucinated(scores, labels), target,
                                        BOUND_CONFIDENCE, z)
    return s


def filter_table(rows) -> str:
    """Markdown of ``rows`` = [(data name, window text, :func:`filter_at_removal` dict)]: samples,
    hallucinated, removed (count), retained with its interval, AUROC with its interval."""
    cells = []
    for data, window, s in _rows("rows", rows):
        _need("summary", s, ("retained_lo", "retained_hi"))
        cells.append([data, window, f"{s['n']:,}", f"{s['n_hallucinated']:,}", f"{s['removed']:.1%} ({s['n_removed']:,})",
                      f"{s['retained']:.1%} [{s['retained_lo']:.1%}, {s['retained_hi']:.1%}]",
                      bound_text(s.get("bound")), _interval(s)])
    return markdown_table(FILTER_HEADERS, cells)


def bound_text(bound: dict | None) -> str:
    """A :func:`mode_interp.detect.retention_bound` as a table cell: its Wilson lower bound and the
    hallucinated score it sits at ("91.5% (at the lowest of 92 hallucinated scores)", "75.5% (at the 2nd
    lowest of 105 ...)"), "none (40 hallucinations: too few)" when no score is sure enough, "–" when it
    was not measured."""
    if bound is None:
        return "–"
    if bound["rank"] == 0:
        return f"none ({bound['n_hallucinated']:,} hallucinations: too few)"
    return (f"{bound['retained_lo']:.1%} (at the {_ordinal(bound['rank'])}lowest of {bound['n_hallucinated']:,} "
            "hallucinated scores)")


def _ordinal(k: int) -> str:
    """"" for 1 (the lowest), else "2nd ", "3rd ", "11th ", ..."""
    if k == 1:
        return ""
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')} "


def vs_paper_text(retained: float, paper: float = PAPER_RETAINED) -> str:
    """How a retained share compares with the paper's: "at or above the paper's 96%" or "x% below ..."."""
    retained, paper = check_float("retained", retained, 0.0, 1.0), check_float("paper", paper, 0.0, 1.0)
    return f"at or above the paper's {paper:.0%}" if retained >= paper else f"{paper - retained:.1%} below the paper's {paper:.0%}"


def shortfall_text(retained: float, paper: float = PAPER_RETAINED, book: float = BOOK_RETAINED) -> str:
    """The shortfall sentence: "as good as the paper's 96%", or "x% short of the paper's 96%, and still
    above / below the 90% this book asks for"."""
    retained, paper = check_float("retained", retained, 0.0, 1.0), check_float("paper", paper, 0.0, 1.0)
    book = check_float("book", book, 0.0, 1.0)
    if retained >= paper:
        return f"as good as the paper's {paper:.0%}"
    return (f"{paper - retained:.1%} short of the paper's {paper:.0%}, and "
            + ("still above" if retained >= book else "below") + f" the {book:.0%} this book asks for")


def mode_false_positives(x0: torch.Tensor, mixture: GaussianMixture, scores, labels, threshold: float) -> dict:
    """Per mode, how many of its in-support samples (not hallucinated, nearest to that mode) the filter
    "remove score > threshold" removes: ``{"threshold", "n_in_support": [per mode], "n_removed": [per
    mode]}``, plain ints in the mixture's mode order (the false positives a mode pays)."""
    s, y = detect._scores_labels(scores, labels)
    threshold = check_float("threshold", threshold)
    x0 = check_points("x0", x0, mixture.dim)
    if len(x0) != len(s):
        raise ValueError(f"x0 has {len(x0)} samples but scores has {len(s)}")
    nearest = torch.cdist(x0.double(), torch.as_tensor(mixture.means)).argmin(dim=1).numpy()
    removed_in = (s > threshold) & ~y
    return {"threshold": threshold,
            "n_in_support": np.bincount(nearest[~y], minlength=mixture.n_modes).astype(int).tolist(),
            "n_removed": np.bincount(nearest[removed_in], minlength=mixture.n_modes).astype(int).tolist()}


def false_positives(x0: torch.Tensor, mixture: GaussianMixture, scores, labels, threshold: float,
                    within: float = 3.0) -> dict:
    """Where the in-support samples the filter removes (score > threshold, not hallucinated) lie.

    Returns ``{"fp_within3": share of them within ``within`` sigma of their nearest mode (NaN when none is
    removed; the key names ``within``), "worst_mode": the coordinates "(a, b)" of the mode that loses the
    largest share of its in-support samples, "worst_mode_loss": that share, "median_mode_loss": the median
    share over modes, "origin_mode_loss": the share lost by the mode nearest the origin (on the 2-D
    lattices the centre mode, which the paper's network cannot hold: chapter 2, section 2.6)}``; a sample
    belongs to its nearest mode, and a mode with no in-support sample loses 0.
    """
    within = check_float("within", within, 0.0, None, lo_open=True)
    per_mode = mode_false_positives(x0, mixture, scores, labels, threshold)
    s, y = detect._scores_labels(scores, labels)
    dist = (nearest_mode_distance(x0, mixture) / mixture.sigma).numpy()
    removed_in = (s > per_mode["threshold"]) & ~y
    return {f"fp_within{within:g}": float((dist[removed_in] <= within).mean()) if removed_in.any() else float("nan"),
            **{k: v for k, v in _mode_losses(per_mode["n_in_support"], per_mode["n_removed"], mixture).items()
               if k != "loss"}}


def _mode_losses(n_in_support, n_removed, mixture: GaussianMixture) -> dict:
    """Per mode, the share of its in-support samples removed (``loss``; 0 for a mode with none), and the
    worst mode's coordinates and loss, the median loss and the loss of the mode nearest the origin."""
    loss = np.asarray(n_removed) / np.asarray(n_in_support).clip(1)
    worst = int(loss.argmax())
    return {"loss": loss.tolist(), "worst_mode": "(" + ", ".join(f"{v:.2f}" for v in mixture.means[worst]) + ")",
            "worst_mode_loss": float(loss[worst]), "median_mode_loss": float(np.median(loss)),
            "origin_mode_loss": float(loss[mixture.origin_mode])}


def filter_numbers(toy: dict, summaries: dict) -> dict:
    """Per record (key k), from its :func:`filter_at_removal` summary: ``k_removed``, ``k_retained``,
    ``k_auroc``, ``k_lo``, ``k_retained_lo``, ``k_bound_retained`` / ``k_bound_rank`` (the threshold-aware
    bound), ``k_vs_paper`` (:func:`vs_paper_text`), ``k_shortfall``
    (:func:`shortfall_text`) and the :func:`false_positives` numbers at its threshold, ``k_fp_within3``,
    ``k_worst_mode``, ``k_worst_mode_loss``, ``k_median_mode_loss``, ``k_origin_mode_loss``."""
    summaries = _same_keys("summaries", summaries, _records("toy", toy))
    out = {}
    for k, d in toy.items():
        s = summaries[k]
        values = {key: s[key] for key in ("removed", "retained", "auroc", "lo", "retained_lo")}
        values.update(bound_retained=s["bound"]["retained_lo"], bound_rank=s["bound"]["rank"])
        values.update(vs_paper=vs_paper_text(s["retained"]), shortfall=shortfall_text(s["retained"]),
                      **false_positives(d["x0"], d["mixture"], d["hal"], d["labels"], s["threshold"]))
        out.update({f"{k}_{key}": v for key, v in values.items()})
    return out


def histogram_panels(toy: dict, summaries: dict, scores: str = "hal", title: str = "Hal") -> list:
    """Panels for :func:`mode_interp.plots.plot_score_histograms`: per record, ``record[scores]`` by class
    with the threshold of its summary, titled "name: title"."""
    summaries = _same_keys("summaries", summaries, _records("toy", toy))
    return [(f"{d['name']}: {title}", d[scores], d["labels"], summaries[k]["threshold"]) for k, d in toy.items()]


def roc_inputs(toy: dict, summaries: dict) -> tuple:
    """``(curves, points)`` for :func:`mode_interp.plots.plot_roc`: per record name, the ROC of its Hal with
    the summary's AUROC, and the operating point (1 - retained, removed)."""
    summaries = _same_keys("summaries", summaries, _records("toy", toy))
    curves = {d["name"]: {**detect.roc_curve(d["hal"], d["labels"]), "auroc": summaries[k]["auroc"]}
              for k, d in toy.items()}
    points = {toy[k]["name"]: (1 - s["retained"], s["removed"]) for k, s in summaries.items()}
    return curves, points


# ---------------------------------------------------------------- which steps, and how many

def window_study(x0_hat: torch.Tensor, labels, lengths=(2, 3, 5, 10, 20, 50), offsets=(0, 5, 10, 20, 40),
                 hal_window: int = 10, target: float = 0.95, z: float = 3.29) -> dict:
    """Hal over other windows of the same recorded trajectories: ``{"lengths", "offsets", "by_length": the
    :func:`mode_interp.detect.filter_summary` of Hal over the last L steps for each L of ``lengths``,
    "by_offset": the AUROC of Hal over the ``hal_window`` steps t = o .. o + hal_window - 1 for each o of
    ``offsets``}``."""
    lengths = check_ints("lengths", lengths, 2, None, min_len=2)
    offsets = check_ints("offsets", offsets, 0, None, min_len=2)
    hal_window = check_int("hal_window", hal_window, 2, None)
    return {"lengths": lengths, "offsets": offsets,
            "by_length": [detect.filter_summary(detect.hal(x0_hat, L), labels, target, z) for L in lengths],
            "by_offset": [detect.auroc(detect.hal(x0_hat, hal_window, o), labels) for o in offsets]}


def window_numbers(studies: dict) -> dict:
    """Per study (key k): ``k_auc_shortest`` / ``k_auc_longest`` (AUROC at the first / last length) and
    ``k_auc_far`` (AUROC of the window starting at the second-last offset); and, from the first study,
    ``longest`` (the last length) and ``offset_far`` (the second-last offset)."""
    out = {}
    for k, s in _records("studies", studies).items():
        out.update({f"{k}_auc_shortest": s["by_length"][0]["auroc"], f"{k}_auc_longest": s["by_length"][-1]["auroc"],
                    f"{k}_auc_far": s["by_offset"][-2]})
    first = next(iter(studies.values()))
    return {"longest": first["lengths"][-1], "offset_far": first["offsets"][-2], **out}


def window_length_table(toy: dict, studies: dict, target: float = 0.95) -> str:
    """Markdown: one row per window length, per record its AUROC / retained share at ``target`` removed."""
    studies = _same_keys("studies", studies, _records("toy", toy))
    target = check_float("target", target, 0.0, 1.0, lo_open=True)
    lengths = next(iter(studies.values()))["lengths"]
    return markdown_table(
        ["window (last L steps)"] + [f"{d['name']}: AUROC / retained at {target:.0%} removed" for d in toy.values()],
        [[f"L = {L}"] + [f"{studies[k]['by_length'][i]['auroc']:.3f} / {studies[k]['by_length'][i]['retained']:.1%}"
                         for k in toy] for i, L in enumerate(lengths)])


def window_sensitivity_panels(toy: dict, studies: dict, hal_window: int = 10) -> list:
    """Panels for :func:`mode_interp.plots.plot_window_sensitivity`: AUROC against the window length and
    against the start of a ``hal_window``-step window, one series per record name."""
    studies = _same_keys("studies", studies, _records("toy", toy))
    first = next(iter(studies.values()))
    return [("window length L (last L steps)", list(first["lengths"]),
             {toy[k]["name"]: [s["auroc"] for s in v["by_length"]] for k, v in studies.items()}),
            (f"start of a {hal_window}-step window (t)", list(first["offsets"]),
             {toy[k]["name"]: v["by_offset"] for k, v in studies.items()})]


def window_choice(toy: dict, lengths=(2, 3, 5, 10, 20, 50), width_ratio: float = 0.1,
                  calibration_share: float = 0.5, target: float = 0.95, z: float = 3.29, seed: int = 1) -> dict:
    """Per record: the width-matched window and a held-out choice of window and threshold.

    ``L``: :func:`mode_interp.detect.width_matched_window` (the last steps whose optimal-denoiser switch is
    at most ``width_ratio`` of the mode gap); ``hal``: Hal over those L steps; ``matched``: its
    :func:`filter_at_removal`; ``held``: :func:`mode_interp.detect.held_out_filter` over Hal of each of
    ``lengths``, with a calibration part drawn as ``rng.random(n) < calibration_share`` from one numpy
    generator seeded with ``seed``, records in order (``held["choice"]``, ``held["held_out"]``)."""
    lengths = check_ints("lengths", lengths, 2, None, min_len=1)
    width_ratio = check_float("width_ratio", width_ratio, 0.0, None, lo_open=True)
    calibration_share = check_float("calibration_share", calibration_share, 0.0, 1.0, lo_open=True, hi_open=True)
    split, out = np.random.default_rng(check_int("seed", seed, 0, None)), {}
    for k, d in _records("toy", toy).items():
        L = detect.width_matched_window(d["config"].schedule(), d["gap"], d["mixture"].sigma, width_ratio)
        hal_L = detect.hal(d["x0_hat"], L).numpy()
        calibration = split.random(len(d["labels"])) < calibration_share
        held = detect.held_out_filter({f"last {n}": detect.hal(d["x0_hat"], n) for n in lengths}, d["labels"],
                                      calibration, target)
        out[k] = {"L": L, "hal": hal_L, "matched": filter_at_removal(hal_L, d["labels"], target, z), "held": held}
    return out


def window_choice_numbers(choices: dict) -> dict:
    """Per record (key k): ``L_k`` (the width-matched length), ``k_matched_removed`` / ``k_matched_retained``
    (the filter at that window), ``k_held_removed`` / ``k_held_retained`` / ``k_held_choice`` (the held-out
    part, with the window chosen on the calibration part)."""
    out = {}
    for k, c in _records("choices", choices).items():
        h = c["held"]["held_out"]
        out.update({f"L_{k}": c["L"], f"{k}_matched_removed": c["matched"]["removed"],
                    f"{k}_matched_retained": c["matched"]["retained"], f"{k}_held_removed": h["removed"],
                    f"{k}_held_retained": h["retained"], f"{k}_held_choice": c["held"]["choice"]})
    return out


def held_out_table(toy: dict, choices: dict) -> str:
    """Markdown: per record, the window chosen on the calibration part and the filter on the held-out part."""
    choices = _same_keys("choices", choices, _records("toy", toy))
    rows = []
    for k, d in toy.items():
        h = choices[k]["held"]["held_out"]
        rows.append([d["name"], choices[k]["held"]["choice"], f"{h['n']:,}", f"{h['n_hallucinated']:,}",
                     f"{h['removed']:.1%} ({h['n_removed']:,})", f"{h['retained']:.1%}"])
    return markdown_table(["data", "window chosen on the calibration half", "held-out samples",
                           "held-out hallucinated", "removed", "retained"], rows)


# ---------------------------------------------------------------- SIMPLE SHAPES

def shapes_run(trained, n: int, seed: int, *, steps: int = 250, window: int = 20, hal_window: int = 10) -> dict:
    """Sample ``n`` SIMPLE SHAPES images from a :class:`mode_interp.image_train.TrainedUNet` on a respaced
    ``steps``-step chain, keeping the last ``window`` predictions and states x_t (a draw kept in the cache
    folder: chapter 3 makes the same draw, and this reads it back), the variance of x_t over the last
    ``hal_window`` chain steps, and read each image with chapter 3's counter (tolerances fitted on the
    training set). Returns ``{"n", "steps", "x0", "x0_hat", "timesteps", "schedule" (the respaced chain's),
    "readings", "label_all" (every image's label), "keep" (valid or hallucinated), "labels" (hallucinated,
    among kept), "n_shapes" (shapes per kept image), "ink" ((n, 3) column ink), "x_t_var", "seconds",
    "from_cache", "source"}``."""
    from . import shape_counter as sc
    from .image_train import TrainedUNet
    from .shapes import column_ink, to_model_space

    check_instance("trained", trained, TrainedUNet, " (from load_or_train_shapes)")
    n, seed = check_int("n", n, 2, None), check_int("seed", seed, 0, None)
    steps = check_int("steps", steps, 2, trained.config.T)
    window = check_int("window", window, 2, steps)
    hal_window = check_int("hal_window", hal_window, 2, window)
    res = trained.config.resolution
    data = trained.config.data()
    tol = sc.fit_tolerances(data, to_model_space(data.images, res))
    result = trained.sample(n, seed, steps=steps, window=window, keep_x_t=True, cache=True)
    readings = sc.count_shapes(result.x0, tol)
    label_all = np.array([r["label"] for r in readings])
    keep = np.isin(label_all, ("valid", "hallucinated"))
    return {"n": n, "steps": steps, "x0": result.x0, "x0_hat": result.x0_hat, "timesteps": result.timesteps,
            "schedule": respace(trained.config.schedule(), steps)[0], "readings": readings, "label_all": label_all,
            "keep": keep, "labels": label_all[keep] == "hallucinated",
            "n_shapes": np.array([sum(r["counts"]) for r in readings])[keep], "ink": column_ink(result.x0),
            "x_t_var": detect.hal(result.x_t, hal_window).numpy(), "seconds": result.seconds,
            "from_cache": result.from_cache, "source": trained.source}


def shapes_scores(x0_hat: torch.Tensor, ink, hal_window: int = 10) -> dict:
    """The four SIMPLE SHAPES scores of every image (keys: :data:`SHAPE_SCORES` values, in order): Hal of the
    whole image over the last ``hal_window`` rows of ``x0_hat`` (the paper's); the largest per-column Hal
    (:func:`mode_interp.detect.region_hal` over the three panels); the largest per-column Hal divided by
    the column's ink, max(ink, 1); and the largest column ink itself (no trajectory)."""
    from .shapes import column_regions

    x0_hat = detect._check_window(x0_hat)
    ink = check_array("ink", ink, ndim=2)
    if ink.shape != (x0_hat.shape[1], 3):
        raise ValueError(f"ink must be (n, 3) column ink, one row per sample ({x0_hat.shape[1]}), got {ink.shape}")
    hal_window = check_int("hal_window", hal_window, 2, x0_hat.shape[0])
    res = int(round(x0_hat.shape[2] ** 0.5))
    if res * res != x0_hat.shape[2]:
        raise ValueError(f"x0_hat must hold flattened square images (d = r*r), got d = {x0_hat.shape[2]}")
    column_hal = detect.region_hal(x0_hat[-hal_window:], column_regions(res)).numpy()
    values = (detect.hal(x0_hat, hal_window).numpy(), column_hal.max(axis=1),
              (column_hal / np.maximum(ink, 1.0)).max(axis=1), ink.max(axis=1))
    return dict(zip(SHAPE_SCORES.values(), values))


def score_filters(scores: dict, labels, strata, target: float = 0.95, z: float = 3.29) -> dict:
    """Per score: :func:`filter_at_removal` plus ``matched``, the AUROC with DeLong's interval comparing
    only samples of the same stratum (:func:`mode_interp.detect.auroc_interval` with ``strata``)."""
    check_instance("scores", scores, dict, " {name: (n,) scores}")
    return {name: {**filter_at_removal(s, labels, target, z), "matched": detect.auroc_interval(s, labels, z, strata)}
            for name, s in scores.items()}


def shapes_detection(trained, n: int, seed: int, *, steps: int = 250, window: int = 20, hal_window: int = 10,
                     target: float = 0.95, z: float = 3.29) -> dict:
    """:func:`shapes_run`, then :func:`shapes_scores` (``"scores"``, every image) and :func:`score_filters`
    on the valid and hallucinated images with the number of shapes as strata (``"results"``)."""
    run = shapes_run(trained, n, seed, steps=steps, window=window, hal_window=hal_window)
    run["scores"] = shapes_scores(run["x0_hat"], run["ink"], hal_window)
    run["results"] = score_filters({k: s[run["keep"]] for k, s in run["scores"].items()}, run["labels"],
                                   run["n_shapes"], target, z)
    return run


def shapes_summary_line(shapes: dict) -> str:
    """"n images x steps steps in s | labels: valid a, hallucinated b, ..."."""
    from .shape_counter import LABELS

    _need("shapes", shapes, ("n", "steps", "seconds", "label_all"))
    return (f"{shapes['n']:,} images x {shapes['steps']} steps in {_drawn(shapes)} | labels: "
            + ", ".join(f"{k} {int((shapes['label_all'] == k).sum())}" for k in LABELS))


def shapes_table(shapes: dict) -> str:
    """Markdown: per score, removed, valid retained, AUROC and count-matched AUROC (with the numbers of
    hallucinated and valid images compared)."""
    rows = []
    for name, r in _need("shapes", shapes, ("results",))["results"].items():
        m = r["matched"]
        rows.append([name, f"{r['removed']:.1%} ({r['n_removed']:,})",
                     f"{r['retained']:.1%} [{r['retained_lo']:.1%}, {r['retained_hi']:.1%}]", _interval(r),
                     f"{_interval(m)} ({m['n_hallucinated']} vs {m['n_in_support']})"])
    return markdown_table(["score", "removed", "valid retained (99.9% interval)", "AUROC (99.9% interval)",
                           "count-matched AUROC (hallucinated vs valid compared)"], rows)


def shapes_histogram_panels(shapes: dict, names=("Hal, whole image (paper)", "Hal, largest column")) -> list:
    """Panels for :func:`mode_interp.plots.plot_score_histograms`: the kept images' scores ``names``."""
    _need("shapes", shapes, ("scores", "keep", "labels", "results"))
    return [(name, shapes["scores"][name][shapes["keep"]], shapes["labels"], shapes["results"][name]["threshold"])
            for name in names]


def ink_explains(results: dict) -> bool:
    """True when the amount of shape explains Hal's signal: whole-image Hal's count-matched interval reaches
    0.5, so does per-unit-ink Hal's overall interval, and the ink baseline's AUROC is the highest."""
    _need("results", results, SHAPE_SCORES.values())
    return bool(results[SHAPE_SCORES["hal"]]["matched"]["lo"] <= 0.5
                and results[SHAPE_SCORES["unit"]]["lo"] <= 0.5
                and results[SHAPE_SCORES["ink"]]["auroc"] >= max(r["auroc"] for r in results.values()))


def shapes_verdict(results: dict) -> str:
    """The glued verdict: what Hal's SIMPLE SHAPES signal is (:func:`ink_explains`)."""
    return ("most of it is the amount of shape, not trajectory instability" if ink_explains(results)
            else "part of it survives the ink baselines (see §4.5)")


def signal_left(result: dict) -> str:
    """Whether a score's signal survives count matching: its matched interval's lower end above 0.5."""
    m = _need("result['matched']", _need("result", result, ("matched",))["matched"], ("auroc", "lo", "hi"))
    if m["lo"] > 0.5:
        return f"survives count matching (AUROC {m['auroc']:.3f}, interval [{m['lo']:.3f}, {m['hi']:.3f}] above 0.5)"
    return f"does not survive count matching (AUROC {m['auroc']:.3f}, interval [{m['lo']:.3f}, {m['hi']:.3f}] includes 0.5)"


def shapes_reading(shapes: dict) -> str:
    """The Markdown reading of the SIMPLE SHAPES table, and what it means (:func:`ink_explains`)."""
    r = _need("shapes", shapes, ("results", "labels", "n"))["results"]
    hal, col, unit, ink = (r[SHAPE_SCORES[k]] for k in ("hal", "col", "unit", "ink"))
    y = shapes["labels"]
    text = (f"**Reading.** Of {shapes['n']:,} generated images, {int(y.sum())} are hallucinated and "
            f"{int((~y).sum())} valid. Whole-image Hal separates them with AUROC {hal['auroc']:.3f}, but its signal "
            f"{signal_left(hal)}. Per-column Hal {signal_left(col)}; divided by the column's ink it "
            f"{signal_left(unit)} and its overall AUROC is {unit['auroc']:.3f}. The area baseline, which looks at "
            f"the final image only, reaches AUROC {ink['auroc']:.3f}.")
    if ink_explains(r):
        meaning = ("**What this means.** On SIMPLE SHAPES at this scale, Hal flags hallucinations largely because "
                   "they hold more shape. Whole-image Hal tracks the number of shapes; per-column Hal tracks how much "
                   "ink a column holds (two shapes in one column: twice the ink); per unit of ink, the trajectories of "
                   "hallucinated columns are no more unstable than those of valid ones. The trivial area baseline does "
                   "at least as well as every trajectory score, because the counter's definition of a hallucination "
                   "is nearly \"a column with two shapes' worth of ink\". This does not contradict §4.2, where the "
                   "label is a *position*, not an amount; it says that on this image data set the paper's score shows "
                   "nothing that counting ink does not. Whether a 64×64 model trained to convergence (the paper's "
                   "setting) behaves differently is open here.")
    else:
        meaning = ("**What this means.** Part of the trajectory signal survives the ink baselines in this run: "
                   "hallucinated columns are more unstable than valid ones even per unit of ink (table above).")
    return text + "\n\n" + meaning


def shapes_numbers(shapes: dict) -> dict:
    """``shapes_steps``, ``shapes_n``, ``shapes_n_hal``, ``shapes_n_valid``, ``shapes_verdict`` and, per
    score key s of :data:`SHAPE_SCORES`, ``shapes_s_auroc`` / ``_lo`` / ``_hi`` / ``_retained`` and
    ``shapes_s_matched_auroc`` / ``_lo`` / ``_hi``."""
    _need("shapes", shapes, ("results", "labels", "n", "steps"))
    y, r = shapes["labels"], shapes["results"]
    out = {"shapes_steps": shapes["steps"], "shapes_n": shapes["n"], "shapes_n_hal": int(y.sum()),
           "shapes_n_valid": int((~y).sum())}
    for key, name in SHAPE_SCORES.items():
        out.update({f"shapes_{key}_{k}": r[name][k] for k in ("auroc", "lo", "hi", "retained")})
        out.update({f"shapes_{key}_matched_{k}": r[name]["matched"][k] for k in ("auroc", "lo", "hi")})
    out["shapes_verdict"] = shapes_verdict(r)
    return out


# ---------------------------------------------------------------- beyond the paper: two other scores

def alternative_scores(toy: dict, shapes: dict | None = None, hal_window: int = 10, z: float = 3.29) -> dict:
    """``{data name: {"Hal (paper)", "normalised Hal", "variance of x_t": AUROC with DeLong's interval}}``
    for every toy record and (when given) the SIMPLE SHAPES run (its valid and hallucinated images):
    :func:`mode_interp.detect.normalised_hal` over the last ``hal_window`` recorded steps, in the schedule that
    produced them, and the streaming variance of x_t."""
    hal_window = check_int("hal_window", hal_window, 2, None)
    sets = {d["name"]: (d["labels"], d["hal"], d["x0_hat"], d["config"].schedule(), d["timesteps"], d["x_t_var"], None)
            for d in _records("toy", toy).values()}
    if shapes is not None:
        _need("shapes", shapes, ("labels", "scores", "x0_hat", "schedule", "timesteps", "x_t_var", "keep"))
        sets["SIMPLE SHAPES"] = (shapes["labels"], shapes["scores"][SHAPE_SCORES["hal"]], shapes["x0_hat"],
                                 shapes["schedule"], shapes["timesteps"], shapes["x_t_var"], shapes["keep"])
    out = {}
    for name, (labels, hal, x0_hat, schedule, timesteps, x_t_var, keep) in sets.items():
        scores = {"Hal (paper)": hal, "normalised Hal": detect.normalised_hal(x0_hat, schedule, timesteps, hal_window).numpy(),
                  "variance of x_t": x_t_var}
        if keep is not None:
            scores = {k: s[keep] for k, s in scores.items()}
        out[name] = {k: detect.auroc_interval(s, labels, z) for k, s in scores.items()}
    return out


def alternative_verdicts(alt: dict, reference: str = "Hal (paper)") -> list:
    """Per data set: "<data>: the paper's Hal is best", or "<data>: <score> is best (a vs b; disjoint
    intervals | overlapping intervals, so not a clear win)" (disjoint: the best score's lower end above the
    reference's upper end)."""
    verdicts = []
    for data_name, res in _records("alt", alt).items():
        _need(f"alt[{data_name!r}]", res, (reference,))
        best = max(res, key=lambda k: res[k]["auroc"])
        paper = res[reference]
        if best == reference:
            verdicts.append(f"{data_name}: the paper's Hal is best")
        else:
            b = res[best]
            verdicts.append(f"{data_name}: {best} is best ({b['auroc']:.3f} vs {paper['auroc']:.3f}; "
                            + ("disjoint intervals" if b["lo"] > paper["hi"] else "overlapping intervals, so not a clear win")
                            + ")")
    return verdicts


def alternative_table(alt: dict) -> str:
    """Markdown: one row per data set, one column per score, AUROC with its interval."""
    names = list(next(iter(_records("alt", alt).values())))
    return markdown_table(["data"] + names, [[d] + [_interval(res[k]) for k in names] for d, res in alt.items()])


# ---------------------------------------------------------------- the paper's headline

def paper_summary_table(rows, paper: str = "> 95% removed, 96% retained (aggregate)") -> str:
    """Markdown of ``rows`` = [(data, window text, filter summary)]: samples in the ROC, hallucinated,
    removed, retained, AUROC with interval, and the paper's aggregate claim."""
    return markdown_table(
        ["data", "window", "samples in the ROC", "hallucinated", "removed", "in-support retained", "AUROC", "paper"],
        [[d, w, f"{s['n']:,}", f"{s['n_hallucinated']:,}", f"{s['removed']:.1%}", f"{s['retained']:.1%}",
          _interval(s), paper] for d, w, s in _rows("rows", rows)])


def record_operating_points(row: dict, mixture: GaussianMixture, z: float = 3.29) -> dict:
    """The detector numbers of a ``toy_model`` record's row (measured with ``hal_window``:
    :func:`mode_interp.experiments.models.detector_numbers`) at its two thresholds, ``at_removal`` (95% of
    the hallucinations removed, the paper's headline) and ``at_retention`` (96% of the in-support samples
    kept): per threshold ``removed`` and ``retained`` with their Wilson intervals at ``z`` (``removed_lo``,
    ..., ``retained_hi``), ``n_hallucinated``, ``n_in_support``, the per-mode ``loss`` (share of a mode's
    in-support samples removed), ``worst_mode`` / ``worst_mode_loss``, ``median_mode_loss`` and
    ``origin_mode_loss``, ``vs_paper`` and ``shortfall`` (:func:`vs_paper_text`, :func:`shortfall_text`);
    ``at_removal`` also holds ``bound`` (:func:`mode_interp.detect.retention_bound`, None for a record without
    the per-threshold counts); plus the record's ``auroc``."""
    if not isinstance(row, dict) or not isinstance(row.get("detector"), dict):
        raise ValueError("row must be a toy_model record's row measured with hal_window > 0 (it has no 'detector')")
    det = row["detector"]
    n_hal = det["n_hallucinated"]
    out = {"auroc": det["auroc"]}
    for key in ("at_removal", "at_retention"):
        d = det[key]
        n_in, n_rm = np.asarray(d["n_in_support"]), np.asarray(d["n_removed"])
        if len(n_in) != mixture.n_modes:
            raise ValueError(f"the record has {len(n_in)} modes, the mixture {mixture.n_modes}")
        kept, removed = int(n_in.sum() - n_rm.sum()), int(d["n_hallucinated_removed"])
        out[key] = {"removed": removed / n_hal, "retained": kept / int(n_in.sum()), "n_hallucinated": n_hal,
                    "n_in_support": int(n_in.sum()), **_mode_losses(n_in, n_rm, mixture)}
        out[key].update(vs_paper=vs_paper_text(out[key]["retained"]), shortfall=shortfall_text(out[key]["retained"]))
        out[key]["removed_lo"], out[key]["removed_hi"] = wilson_interval(removed, n_hal, z)
        out[key]["retained_lo"], out[key]["retained_hi"] = wilson_interval(kept, int(n_in.sum()), z)
    below = det.get("below")                     # records made before it was kept have none
    out["at_removal"]["bound"] = (detect.retention_bound(below, det["at_removal"]["target"], BOUND_CONFIDENCE, z)
                                  if below else None)
    return out


def gated_claims(models: dict, min_retained: float = 0.90) -> dict:
    """Chapter 4's claim on each recorded 2-D model **that passes the strict gate** (``models``: label ->
    ``(measured, points)``, :func:`record_operating_points`): at the threshold that removes 95% of the
    hallucinations, at least ``min_retained`` of the in-support samples are kept (99.9% Wilson lower
    bound). A model that fails the gate contributes no claim: it is printed as withheld."""
    check_float("min_retained", min_retained, 0.0, 1.0)
    claims = {}
    for label, (measured, points) in models.items():
        if not measured["m"]["gate"]["passed"]:
            print(f"WITHHELD detector claim on {label}: fails the strict gate (chapter 2), so it is shown, not asserted")
            continue
        claims[f"{label} (passes the strict gate), at the threshold that removes 95%: >= {min_retained:.0%} of "
               "in-support samples retained (99.9% lower bound)"] = points["at_removal"]["retained_lo"] >= min_retained
    return claims


def operating_points_table(points: dict) -> str:
    """Markdown table of :func:`record_operating_points` results (label -> result): per model and threshold,
    removed and retained with their 99.9% intervals, the per-mode loss (median, worst, the mode at the
    origin), the threshold-aware retention bound at the removal threshold (:func:`bound_text`) and the AUROC."""
    body = []
    for label, p in points.items():
        for key, name in (("at_removal", "removes 95% of hallucinations"), ("at_retention", "keeps 96% in support")):
            q = p[key]
            body.append([label, name, f"{q['removed']:.1%} [{q['removed_lo']:.1%}, {q['removed_hi']:.1%}] "
                         f"of {q['n_hallucinated']:,}", f"{q['retained']:.1%} [{q['retained_lo']:.1%}, "
                         f"{q['retained_hi']:.1%}] of {q['n_in_support']:,}", f"{q['median_mode_loss']:.1%}",
                         f"{q['worst_mode_loss']:.1%} {q['worst_mode']}", f"{q['origin_mode_loss']:.1%}",
                         bound_text(q["bound"]) if key == "at_removal" else "", f"{p['auroc']:.3f}"])
    return markdown_table(["model", "threshold", "hallucinations removed (99.9%)", "in support retained (99.9%)",
                           "median mode's loss", "worst mode's loss", "loss at the origin's mode",
                           BOUND_HEADER, "AUROC"], body)


def operating_numbers(measured: dict, points: dict) -> dict:
    """What chapter 4 glues about one recorded model (``measured``: a measured model with ``"m"``, e.g.
    :func:`mode_interp.toy_report.measured_from_records`; ``points``: its :func:`record_operating_points`):
    ``gate`` ("passes" / "fails"), ``n``, ``auroc`` and every number of both thresholds (``at_removal_*``,
    ``at_retention_*``; the per-mode list left out) and the threshold-aware bound (``bound_retained``,
    ``bound_rank``, ``bound_n``, ``bound_text``; NaN / 0 / "–" for a record without it)."""
    bound = points["at_removal"].get("bound")
    return {"gate": "passes" if measured["m"]["gate"]["passed"] else "fails",
            "n": measured["m"]["hallucination"]["n"], "auroc": points["auroc"],
            **{f"{key}_{k}": v for key in ("at_removal", "at_retention") for k, v in points[key].items()
               if k not in ("loss", "bound")},
            "bound_retained": bound["retained_lo"] if bound else float("nan"), "bound_rank": bound["rank"] if bound else 0,
            "bound_n": bound["n_hallucinated"] if bound else 0, "bound_text": bound_text(bound)}
