"""Samplers, step counts and smoothness against hallucination (chapter 6, beyond the paper).

The paper samples with the ancestral DDPM chain through all T = 1000 training steps. A practitioner often
uses DDIM (Song, Meng & Ermon 2021) on fewer steps T' (a respaced chain, Nichol & Dhariwal 2021). One
:class:`Sampler` names such a chain: ``eta = None`` is the paper's ancestral chain (sigma_t^2 = beta_t),
``eta`` in [0, 1] the DDIM chain (:func:`mode_interp.diffusion.ddim_step`; 0 deterministic after x_T, 1 the
ancestral chain with sigma_t^2 = beta_tilde_t), and ``steps`` = T' evenly spaced timesteps
(:func:`mode_interp.schedule.respace`).

:func:`run` samples one chain and measures it: the hallucinated share (farther than ``k`` sigma from every
mode, :func:`mode_interp.hallucination.is_hallucinated`) and the detector's AUROC, Hal over the chain's last
min(``window``, T' / 2) steps (:class:`mode_interp.detect.WindowVariance`; on a respaced chain those steps
span about ``window`` x T / T' training timesteps, and on a very short chain they reach the noisy steps
where x0_hat = (x_t - sqrt(1 - ab) eps) / sqrt(ab) divides by a tiny sqrt(ab): a non-finite prediction is
counted as +-1e30, so Hal stays a finite, very large score). :func:`grid` runs every sampler for every seed, :func:`summarise`
averages over seeds with a between-seed t-interval (the seeds are the replicates, not the samples), and
:func:`compare` is the paired across-seed test of two samplers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import check_bool, check_callable, check_float, check_int, check_ints
from .data import GaussianMixture, check_mixture
from .detect import WindowVariance, auroc
from .diffusion import check_eta, respaced_eps, sample
from .optimal import exact_eps_fn
from .hallucination import is_hallucinated, true_hallucination_rate
from .report import markdown_table
from .schedule import Schedule, check_schedule, respace
from .stats import mean_interval, paired_test, wilson_interval


@dataclass(frozen=True)
class Sampler:
    """A reverse chain on ``steps`` (T') evenly spaced training timesteps: the ancestral DDPM chain with
    sigma_t^2 = beta_t (``eta = None``, the paper's) or DDIM with noise scale ``eta`` in [0, 1]."""

    steps: int
    eta: float | None = None

    def __post_init__(self):
        check_int("steps", self.steps, 2, None)
        if self.eta is not None:
            object.__setattr__(self, "eta", check_eta(self.eta))

    @property
    def name(self) -> str:
        """"DDPM" or "DDIM eta=0.5" (the sampler without its step count)."""
        return "DDPM" if self.eta is None else f"DDIM eta={self.eta:g}"


def samplers(steps, etas=(None, 1.0, 0.5, 0.0)) -> list:
    """Every (eta, T') pair as a :class:`Sampler`, etas outermost (``None``: the ancestral chain)."""
    steps = check_ints("steps", steps, 2, None, min_len=1)
    if isinstance(etas, (str, bytes)) or not hasattr(etas, "__iter__") or not list(etas):
        raise ValueError(f"etas must be a non-empty list of DDIM noise scales in [0, 1] or None, got {etas!r}")
    return [Sampler(s, e) for e in etas for s in steps]


def chain(eps_fn, schedule: Schedule, steps: int) -> tuple:
    """``(schedule', eps_fn')``: the respaced chain on ``steps`` timesteps and the eps function evaluated at
    the original timesteps (:func:`mode_interp.diffusion.respaced_eps`); the chain itself when steps = T."""
    check_callable("eps_fn", eps_fn)
    steps = check_int("steps", steps, 2, check_schedule(schedule).T)
    if steps == schedule.T:
        return schedule, eps_fn
    short, tau = respace(schedule, steps)
    return short, respaced_eps(eps_fn, tau)


def run(eps_fn, mixture: GaussianMixture, schedule: Schedule, sampler: Sampler, n: int, seed: int,
        k: float = 5.0, window: int = 10, min_class: int = 5, clip_x0: float | None = None,
        return_samples: bool = False):
    """One chain of ``sampler`` from x_T drawn with ``seed``; its hallucinated share (> ``k`` sigma from every
    mode; a non-finite sample counts as hallucinated) and Hal's AUROC over its last ``window`` steps (NaN when
    either class has fewer than ``min_class`` samples; module docstring for the window). ``clip_x0``: clamp
    every x0_hat to [-c, c] (:func:`mode_interp.diffusion.posterior_step_mean`), as image samplers do; a
    short chain of a learned model needs it, because the first steps' x0_hat divides the network's eps error
    by sqrt(alpha_bar_t), about 1e-22 at t = T - 1 under the paper's schedule. Returns a plain dict (one row
    of :func:`grid`), or ``(row, samples)`` with ``return_samples``."""
    if not isinstance(sampler, Sampler):
        raise TypeError(f"sampler must be a Sampler, got {type(sampler).__name__}")
    dim = check_mixture(mixture).dim
    n = check_int("n", n, 1, None)
    seed = check_int("seed", seed, 0, None)
    k = check_float("k", k, 0.0, None, lo_open=True)
    window = check_int("window", window, 2, None)
    min_class = check_int("min_class", min_class, 1, None)
    short, eps = chain(eps_fn, schedule, sampler.steps)
    hal = WindowVariance(n, dim, max(2, min(window, sampler.steps // 2)), diverged=True)
    x = sample(eps, n, dim, short, torch.Generator().manual_seed(seed), eta=sampler.eta, observer=hal,
               clip_x0=clip_x0).x0
    labels = _labels(x, mixture, k)
    finite = torch.isfinite(x).all(dim=1)
    count = int(labels.sum())
    scores = hal.hal()
    enough = min(count, n - count) >= min_class
    row = {"sampler": sampler.name, "eta": sampler.eta, "steps": sampler.steps, "seed": seed, "n": n,
           "count": count, "rate": count / n, "n_nonfinite": int((~finite).sum()),
           "auroc": auroc(scores.numpy(), labels.numpy()) if enough else math.nan, "clip_x0": clip_x0}
    return (row, x) if check_bool("return_samples", return_samples) else row


def grid(eps_fns, mixture: GaussianMixture, schedule: Schedule, chains, n: int, seeds=(0, 1, 2), **kw) -> list:
    """:func:`run` for every sampler of ``chains`` and every seed. ``eps_fns``: one eps function for all
    seeds (e.g. the exact score: the seed is then the sampling seed) or a dict ``{seed: eps_fn}`` (one
    trained model per seed, each sampled with its own seed)."""
    seeds = check_ints("seeds", seeds, 0, None, min_len=1)
    if isinstance(eps_fns, dict):
        missing = [s for s in seeds if s not in eps_fns]
        if missing:
            raise ValueError(f"eps_fns has no eps function for seeds {missing} (it has {sorted(eps_fns)})")
    else:
        eps_fns = {s: check_callable("eps_fns", eps_fns) for s in seeds}
    return [run(eps_fns[s], mixture, schedule, c, n, s, **kw) for c in chains for s in seeds]


def _cells(rows, by, group, key):
    return np.array([r[key] for r in rows if tuple(r[b] for b in by) == group], dtype=float)


def summarise(rows, key: str = "rate", confidence: float = 0.95, by=("sampler", "steps")) -> list:
    """Per group of rows with equal ``by`` fields (default: per sampler and T'): the mean of ``key`` over
    seeds with its between-seed t-interval (``lo``, ``hi``; NaN bounds for a single seed) and, for the
    rate, the pooled count with its Wilson interval. NaN values (an AUROC with too few of one class) are
    left out and counted in ``n_missing``."""
    if key not in ("rate", "auroc"):
        raise ValueError(f"key must be 'rate' or 'auroc', got {key!r}")
    rows, by = list(rows), tuple(by)
    if not rows or any(b not in r for r in rows for b in by + (key,)):
        raise ValueError(f"rows must be a non-empty list of rows with the fields {by + (key,)}")
    out = []
    for group in dict.fromkeys(tuple(r[b] for b in by) for r in rows):
        v = _cells(rows, by, group, key)
        ok = v[np.isfinite(v)]
        row = {**dict(zip(by, group)), "n_seeds": len(ok), "n_missing": int(len(v) - len(ok)), "values": ok.tolist()}
        if len(ok) >= 2:
            row.update({q: mean_interval(ok, confidence)[q] for q in ("mean", "lo", "hi", "sd")})
        else:
            row.update({"mean": float(ok[0]) if len(ok) else math.nan, "lo": math.nan, "hi": math.nan, "sd": math.nan})
        if key == "rate":
            count = int(sum(_cells(rows, by, group, "count")))
            total = int(sum(_cells(rows, by, group, "n")))
            row.update({"count": count, "n": total, "pooled": count / total,
                        "pooled_lo": wilson_interval(count, total)[0], "pooled_hi": wilson_interval(count, total)[1]})
        out.append(row)
    return out


def compare(rows, a: str, b: str, steps: int, key: str = "rate", alternative: str = "greater",
            confidence: float = 0.95) -> dict:
    """Paired across-seed test of sampler ``a`` against ``b`` at T' = ``steps``
    (:func:`mode_interp.stats.paired_test` on the per-seed differences a - b; the seeds must match)."""
    pick = {name: {r["seed"]: r[key] for r in rows if r["sampler"] == name and r["steps"] == steps} for name in (a, b)}
    for name in (a, b):
        if not pick[name]:
            raise ValueError(f"no rows for sampler {name!r} at steps={steps}")
    seeds = sorted(set(pick[a]) & set(pick[b]))
    return {**paired_test([pick[a][s] for s in seeds], [pick[b][s] for s in seeds], confidence, alternative),
            "a": a, "b": b, "steps": steps, "seeds": seeds}


def _cell(row: dict, scale: float, digits: int) -> str:
    if not math.isfinite(row["mean"]):
        return "–"
    if not math.isfinite(row["lo"]):
        return f"{scale * row['mean']:.{digits}f}"
    return f"{scale * row['mean']:.{digits}f} [{scale * row['lo']:.{digits}f}, {scale * row['hi']:.{digits}f}]"


def table(summary, key: str = "rate") -> str:
    """A Markdown table: one row per sampler, one column per T', cells "mean [between-seed interval]"
    (the rate in %, the AUROC as a fraction)."""
    scale, digits = (100.0, 2) if key == "rate" else (1.0, 3)
    steps = sorted({r["steps"] for r in summary})
    names = list(dict.fromkeys(r["sampler"] for r in summary))
    at = {(r["sampler"], r["steps"]): r for r in summary}
    return markdown_table(["sampler"] + [f"T' = {s:,}" for s in steps],
                          [[name] + [_cell(at[name, s], scale, digits) if (name, s) in at else "" for s in steps]
                           for name in names])


# ---------------------------------------------------------------- smoothness alone (no network)

def _labels(x: torch.Tensor, mixture: GaussianMixture, k: float) -> torch.Tensor:
    """Hallucinated (> k sigma from every mode), a non-finite sample counted as hallucinated."""
    labels = ~torch.isfinite(x).all(dim=1)
    labels[~labels] = is_hallucinated(x[~labels], mixture, k)
    return labels


def _rate_row(x: torch.Tensor, mixture: GaussianMixture, k: float, **fields) -> dict:
    """``{**fields, "n", "count", "rate"}``; in 1-D also ``gaps``: per gap between neighbouring modes, its
    finite samples' count and mean position (:func:`mode_interp.interpolation.gap_profile`)."""
    from .interpolation import gap_profile
    count = int(_labels(x, mixture, k).sum())
    row = {**fields, "n": len(x), "count": count, "rate": count / len(x)}
    if mixture.dim == 1:
        finite = x[torch.isfinite(x).all(dim=1)]
        row["gaps"] = [{"between": list(pair), "count": sum(g["counts"]), "position": g["position"]}
                       for pair, g in gap_profile(finite, mixture, k).items()]
    return row


def tempered_rates(mixture: GaussianMixture, schedule: Schedule, taus, n: int, seeds=(0, 1, 2),
                   k: float = 5.0) -> list:
    """The paper's sampler (ancestral, all T steps) on the tempered optimal denoiser
    (:func:`mode_interp.smoothing.tempered_eps`) at each constant temperature of ``taus``, one chain per
    seed: rows ``{"tau", "seed", "n", "count", "rate"}`` (tau = 1 is the exact score)."""
    from .smoothing import tempered_eps_fn
    seeds = check_ints("seeds", seeds, 0, None, min_len=1)
    n, k = check_int("n", n, 1, None), check_float("k", k, 0.0, None, lo_open=True)
    rows = []
    for tau in taus:
        eps = tempered_eps_fn(mixture, schedule, check_float("taus", tau, 0.0, None, lo_open=True))
        for seed in seeds:
            x = sample(eps, n, mixture.dim, schedule, torch.Generator().manual_seed(seed)).x0
            rows.append(_rate_row(x, mixture, k, tau=float(tau), seed=seed))
    return rows


def matched_rates(models: dict, mixture: GaussianMixture, schedule: Schedule, ts, n: int, k: float = 5.0,
                  pair=(0, 1)) -> list:
    """For each ``{seed: network}``: the temperature schedule tau(t) that gives the exact denoiser that
    network's own transition width at every t (:func:`mode_interp.smoothing.matched_temperature`, measured
    at ``ts``), and the paper's sampler on that tempered denoiser (seeded with the replicate's seed). Rows
    ``{"seed", "tau", "tau_0", "tau_max", "n", "count", "rate"}`` (``tau``: the T values)."""
    from .smoothing import matched_temperature, tempered_eps_fn
    if not isinstance(models, dict) or not models:
        raise ValueError(f"models must be a non-empty dict {{seed: network}}, got {type(models).__name__}")
    rows = []
    for seed, model in models.items():
        tau = matched_temperature(model, mixture, schedule, ts, pair)
        x = sample(tempered_eps_fn(mixture, schedule, tau), check_int("n", n, 1, None), mixture.dim, schedule,
                   torch.Generator().manual_seed(check_int("seed", seed, 0, None))).x0
        rows.append(_rate_row(x, mixture, k, seed=seed, tau=tau.tolist(), tau_0=float(tau[0]),
                              tau_max=float(tau.max())))
    return rows


def memorisation(points, mixture: GaussianMixture, schedule: Schedule, n: int, seed: int = 0, k: float = 5.0) -> dict:
    """The paper's sampler on the *empirical* optimal denoiser of the training set ``points``
    (:func:`mode_interp.smoothing.empirical_mixture`): the hallucinated share against ``mixture``, and the
    median distance from a sample to its nearest training point beside the same for ``n`` fresh draws of
    ``mixture`` (``baseline_median``; seed + 1). A ratio below 1 means the samples sit on the training set
    (memorisation); the chain's last step averages training points closer than its final noise,
    sqrt(1 - alpha_bar_0), so with dense points the two are alike (a kernel density estimate)."""
    from .smoothing import empirical_mixture
    emp = empirical_mixture(points)
    n, seed = check_int("n", n, 1, None), check_int("seed", seed, 0, None)
    x = sample(exact_eps_fn(emp, schedule), n, emp.dim, schedule, torch.Generator().manual_seed(seed),
               dtype=torch.float64).x0
    fresh = mixture.sample(n, torch.Generator().manual_seed(seed + 1)).double()
    pts = torch.as_tensor(emp.means)
    dist = [torch.cat([torch.cdist(y[i:i + 4096], pts).min(dim=1).values for i in range(0, n, 4096)])
            for y in (x, fresh)]
    median, baseline = float(dist[0].median()), float(dist[1].median())
    return {**_rate_row(x, mixture, k, seed=seed), "n_points": len(pts), "median_distance": median,
            "baseline_median": baseline, "ratio": median / baseline}


# ---------------------------------------------------------------- chapter 6's numbers

def short_name(sampler: str) -> str:
    """A glue-key-safe name: "DDPM" -> "ddpm", "DDIM eta=0.5" -> "ddim05"."""
    return sampler.lower().replace(" eta=", "").replace(".", "")


def numbers(summary, prefix: str = "") -> dict:
    """A flat dict for the prose: ``<prefix><sampler>_<T'>`` (the mean over seeds) with ``_lo`` / ``_hi``
    (its between-seed interval) and, for a rate summary, ``_pooled_hi`` (the pooled Wilson upper bound)."""
    out = {}
    for r in summary:
        key = f"{prefix}{short_name(r['sampler'])}_{r['steps']}"
        out.update({key: r["mean"], f"{key}_lo": r["lo"], f"{key}_hi": r["hi"]})
        if "pooled_hi" in r:
            out[f"{key}_pooled_hi"] = r["pooled_hi"]
    return out


def per_seed(rows, sampler: str, steps: int, key: str = "rate") -> dict:
    """``{seed: value}`` of one sampler at one T'."""
    return {r["seed"]: r[key] for r in rows if r["sampler"] == sampler and r["steps"] == steps}


def record_rows(records) -> list:
    """The rows of ``sampler_grid`` records (e.g. :func:`mode_interp.sweep.sweep_records`), each tagged with
    its record's ``score`` ("learned" / "exact") and the ``T`` its model was trained with."""
    return [{**row, "score": rec["spec"]["score"], "T": rec["spec"]["model"].get("T", 1000)}
            for rec in records for row in rec["result"]["rows"]]


def trained_T_table(summary, sampler: str = "DDPM") -> str:
    """The trained-T ablation as a table: one row per training length T and score (learned / exact), one
    column per sampling length T' (a :func:`summarise` by ``("T", "score", "sampler", "steps")``; the
    rate in %, mean over seeds [between-seed interval]; empty where T' > T)."""
    cells = {(r["T"], r["score"], r["steps"]): r for r in summary if r["sampler"] == sampler}
    if not cells:
        raise ValueError(f"no rows for sampler {sampler!r}")
    steps = sorted({k[2] for k in cells})
    keys = sorted({k[:2] for k in cells}, key=lambda k: (k[0], k[1] != "learned"))
    return markdown_table(["T (trained)", "score"] + [f"T' = {s:,}" for s in steps],
                          [[f"{T:,}", score] + [_cell(cells[T, score, s], 100.0, 2) if (T, score, s) in cells else ""
                                               for s in steps] for T, score in keys])


def learned_excess(rows, T: int, steps: int, sampler: str = "DDPM") -> dict:
    """The learned score's error beyond discretisation at one (T, T'): per seed, the learned model's rate
    minus the exact score's on the same x_T and noise (the seeds share the sampling generator), with
    :func:`mode_interp.stats.paired_test` (one-sided "greater")."""
    pick = {score: {r["seed"]: r["rate"] for r in rows if r["T"] == T and r["steps"] == steps
                    and r["sampler"] == sampler and r["score"] == score} for score in ("learned", "exact")}
    seeds = sorted(set(pick["learned"]) & set(pick["exact"]))
    if len(seeds) < 2:
        raise ValueError(f"need >= 2 seeds with both scores at T={T}, T'={steps}, got {len(seeds)}")
    return {**paired_test([pick["learned"][s] for s in seeds], [pick["exact"][s] for s in seeds],
                          alternative="greater"), "T": T, "steps": steps}


def _summary_at(summary, T: int, score: str, steps: int, sampler: str = "DDPM") -> dict:
    for r in summary:
        if (r["T"], r["score"], r["steps"], r["sampler"]) == (T, score, steps, sampler):
            return r
    raise ValueError(f"no summary row for T={T}, {score}, T'={steps}, {sampler}")


def trained_T_numbers(rows, Ts, common: int = 100) -> dict:
    """The trained-T ablation's numbers (rows of :func:`record_rows` from the T-specific sweeps, the paper's
    chain): per T, the learned and exact rates on its own full chain (T' = T) with intervals and the
    learned excess over the exact score (:func:`learned_excess`); the rates at T' = ``common`` for every T;
    and ``verdict_full``, whether the full-chain rates of the shortest and the longest T are resolved
    apart (disjoint between-seed 95% intervals)."""
    summary = summarise(rows, by=("T", "score", "sampler", "steps"))
    Ts = sorted(check_ints("Ts", list(Ts), 2, None, min_len=2))
    out = {}
    for T in Ts:
        learned, exact = _summary_at(summary, T, "learned", T), _summary_at(summary, T, "exact", T)
        excess = learned_excess(rows, T, T)
        out.update({f"T{T}_learned": learned["mean"], f"T{T}_learned_lo": learned["lo"],
                    f"T{T}_learned_hi": learned["hi"], f"T{T}_exact_pooled_hi": exact["pooled_hi"],
                    f"T{T}_exact_count": exact["count"], f"T{T}_exact_n": exact["n"],
                    f"T{T}_excess": excess["mean"], f"T{T}_excess_lo": excess["lo"], f"T{T}_excess_p": excess["p_one_sided"],
                    f"T{T}_excess_agree": excess["n_agree"]})
        for score in ("learned", "exact"):
            out[f"T{T}_{score}_at{common}"] = _summary_at(summary, T, score, common)["mean"]
    short, long = _summary_at(summary, Ts[0], "learned", Ts[0]), _summary_at(summary, Ts[-1], "learned", Ts[-1])
    out["verdict_full"] = ("higher" if short["lo"] > long["hi"] else "lower" if short["hi"] < long["lo"]
                           else "not resolved apart")
    return out


def schedule_numbers(Ts, steps: int = 100, threshold: float = 0.01, **schedule_kw) -> dict:
    """For the linear schedule of each T (``schedule_kw``: its end points): ``sum_beta_<T>`` (the total
    sum_t beta_t) and ``noise_share_<T>``, the share of the chain's ``steps`` evenly respaced timesteps
    (:func:`mode_interp.schedule.respace`) where alpha_bar_t < ``threshold``: steps spent on near-pure noise."""
    from .schedule import linear_schedule, respace
    out = {}
    for T in check_ints("Ts", list(Ts), 2, None, min_len=1):
        schedule = linear_schedule(T, **schedule_kw)
        tau = respace(schedule, min(check_int("steps", steps, 2, None), T))[1]
        out[f"sum_beta_{T}"] = float(schedule.betas.sum())
        out[f"noise_share_{T}"] = float(np.mean(schedule.alpha_bar[tau] < threshold))
    return out


def trained_T_claims(rows, Ts, common: int = 100) -> dict:
    """The trained-T ablation's claims: on every T's own full chain the exact score's discretisation error is
    below the learned models' rate (its pooled 99.9% Wilson upper bound under their between-seed lower
    bound) and the learned model exceeds the exact score in every replicate (paired one-sided p < 0.05);
    at T' = ``common`` the model trained with T = ``common`` steps hallucinates
    less than the T = max(Ts) model respaced to that many steps, for the learned and the exact score
    (disjoint between-seed 95% intervals)."""
    summary = summarise(rows, by=("T", "score", "sampler", "steps"))
    Ts = sorted(Ts)
    excess = {T: learned_excess(rows, T, T) for T in Ts}
    native = {score: _summary_at(summary, common, score, common) for score in ("learned", "exact")}
    respaced = {score: _summary_at(summary, Ts[-1], score, common) for score in ("learned", "exact")}
    return {
        "trained T: on every T's full chain the exact score's rate (pooled 99.9% Wilson upper bound) is below the "
        "learned models' (lower end of the 95% between-seed interval): the learned-score error dominates":
            all(_summary_at(summary, T, "exact", T)["pooled_hi"] < _summary_at(summary, T, "learned", T)["lo"]
                for T in Ts),
        "trained T: on every T's full chain the learned model hallucinates more than the exact score, in every "
        "replicate (paired one-sided p < 0.05)": all(e["n_agree"] == e["n"] and e["p_one_sided"] < 0.05
                                                    for e in excess.values()),
        f"trained T: at T' = {common}, the model trained with T = {common} hallucinates less than the "
        f"T = {Ts[-1]} model respaced to {common} steps, learned and exact (disjoint 95% between-seed intervals)":
            all(native[s]["hi"] < respaced[s]["lo"] for s in ("learned", "exact")),
    }


def gate_table(records) -> str:
    """The strict quality gate of each learned replicate's paper chain (DDPM, all T steps), from
    ``sampler_grid`` records, with the T it was trained with: share within 3 sigma, median and worst mode spread over the exact chain's,
    worst mode weight x K, and the verdict."""
    rows = []
    for rec in records:
        if rec["spec"]["score"] != "learned":
            continue
        g = rec["result"]["reference"]["gate"]
        rows.append([f"{rec['spec']['model'].get('T', 1000):,}", rec["spec"]["seed"], f"{g['within']:.2%}", f"{g['median_spread_ratio']:.2f}",
                     f"{g['worst_spread_ratio']:.2f}", f"{g['worst_weight_ratio']:.2f}",
                     "passes" if g["passed"] else "fails: " + "; ".join(k for k, ok in g["checks"].items() if not ok)])
    return markdown_table(["T (trained)", "replicate", "within 3σ", "median spread / exact", "worst spread / exact",
                           "worst weight × K", "strict gate"], rows)


def tau_table(summary) -> str:
    """The tempered denoiser's hallucinated fraction per temperature: mean over seeds [between-seed
    interval] and the pooled count with its 99.9% Wilson interval."""
    return markdown_table(["τ", "hallucinated, % (mean [95% between seeds])", "pooled count / n", "pooled 99.9% Wilson"],
                          [[f"{r['tau']:g}", _cell(r, 100.0, 3), f"{r['count']:,} / {r['n']:,}",
                            f"[{r['pooled_lo']:.3%}, {r['pooled_hi']:.3%}]"] for r in sorted(summary, key=lambda r: r["tau"])])


def memo_table(memo) -> str:
    """One row per :func:`memorisation` result: training points, samples, hallucinated, median distance to
    the nearest training point (samples / fresh draws of the mixture) and their ratio."""
    return markdown_table(["training points N", "samples", "hallucinated", "median distance to nearest training "
                           "point: samples", "fresh draws", "ratio"],
                          [[f"{m['n_points']:,}", f"{m['n']:,}", m["count"], f"{m['median_distance']:.4f}",
                            f"{m['baseline_median']:.4f}", f"{m['ratio']:.2f}"] for m in memo])


def _pooled(rows) -> tuple:
    count, n = sum(r["count"] for r in rows), sum(r["n"] for r in rows)
    return (count / n, *wilson_interval(count, n))


def matched_comparison(matched, learned_rows, steps: int = 1000) -> dict:
    """Each replicate's width-matched tempered rate (:func:`matched_rates`) beside its network's rate on the
    paper's chain (DDPM on ``steps`` steps, from ``learned_rows``): a Markdown ``table``, the pooled rates
    with 99.9% Wilson intervals (``bands``, for :func:`mode_interp.plots.plot_temperature_curve`) and the
    per-replicate ``ratios`` (tempered / learned)."""
    learned = {r["seed"]: r for r in learned_rows if r["sampler"] == "DDPM" and r["steps"] == steps}
    missing = [m["seed"] for m in matched if m["seed"] not in learned]
    if missing:
        raise ValueError(f"learned_rows hold no DDPM chain on {steps} steps for replicates {missing}")
    table, ratios = [], {}
    for m in matched:
        ref = learned[m["seed"]]
        ratios[m["seed"]] = m["rate"] / ref["rate"] if ref["rate"] > 0 else math.inf
        lo, hi = wilson_interval(m["count"], m["n"])
        r_lo, r_hi = wilson_interval(ref["count"], ref["n"])
        table.append([m["seed"], f"{m['tau_0']:.1f}", f"{ref['rate']:.3%} [{r_lo:.3%}, {r_hi:.3%}] (n = {ref['n']:,})",
                      f"{m['rate']:.3%} [{lo:.3%}, {hi:.3%}] (n = {m['n']:,})", f"{ratios[m['seed']]:.2f}"])
    learned_pooled = _pooled([learned[m["seed"]] for m in matched])
    return {"table": markdown_table(["replicate", "τ(0)", "network, DDPM (99.9% Wilson)",
                                     "width-matched tempered denoiser (99.9% Wilson)", "ratio"], table),
            "bands": {"networks (DDPM, all steps)": learned_pooled, "width-matched tempered": _pooled(matched)},
            "ratios": ratios, "tau_0": [m["tau_0"] for m in matched], "learned": learned_pooled,
            "matched": _pooled(matched), "rows": [{k: m[k] for k in ("seed", "count", "n", "rate")} for m in matched]}


def matched_verdict(comparison: dict) -> str:
    """The width-matched comparison in words: whether the tempered rate is within a factor 2 of the
    network's in every replicate, and the range of the ratio."""
    ratios = list(comparison["ratios"].values())
    close = sum(0.5 <= r <= 2.0 for r in ratios)
    head = ("yes, within a factor 2 in every replicate" if close == len(ratios) else
            f"in part: within a factor 2 in {close} of {len(ratios)} replicates")
    return (f"{head} (tempered {comparison['matched'][0]:.2%} vs network {comparison['learned'][0]:.2%} pooled; "
            f"ratio {min(ratios):.2f}–{max(ratios):.2f})")


def records_mixture(records) -> GaussianMixture:
    """The mixture of the (first) record's model: every sampler_grid record of a sweep shares it."""
    from .experiments import as_spec
    return as_spec("sampler_grid", records[0]["spec"]).config.mixture()


def _at(summary, sampler: str, steps: int) -> dict:
    return next(r for r in summary if r["sampler"] == sampler and r["steps"] == steps)


def _ddim_verdict(cmp: dict) -> str:
    more = cmp["mean"] > 0 and cmp["n_agree"] == len(cmp["d"]) and cmp["p_one_sided"] < 0.05
    return ("yes: DDIM (eta = 0) hallucinates more in every replicate, paired p = "
            if more else "not shown: paired p = ") + f"{cmp['p_one_sided']:.3f}, {cmp['n_agree']} of {len(cmp['d'])} agree"


def chapter_numbers(exact, learned, auroc, ddim_vs_ddpm, comparison, memo, records, live) -> dict:
    """Chapter 6's glued numbers and verdicts, all recomputed from this run's results and the records: the
    sample sizes, every cell of the three grids (:func:`numbers`, prefixes ``exact_`` / ``learned_`` /
    ``auroc_``), the verdicts and the width-matched and memorisation results."""
    ratios = list(comparison["ratios"].values())
    few = [r["mean"] for r in auroc if r["steps"] <= 100 and math.isfinite(r["mean"])]
    return {
        "n_exact": exact[0]["n"] // exact[0]["n_seeds"], "n_seeds": exact[0]["n_seeds"], "n_live": live[0]["n"],
        "n_record": records[0]["spec"]["n_samples"],
        **numbers(exact, "exact_"), **numbers(learned, "learned_"), **numbers(auroc, "auroc_"),
        "verdict_steps": f"yes: the exact score hallucinates {_at(exact, 'DDPM', 10)['mean']:.0%} (DDPM) at 10 steps, "
                         f"{_at(exact, 'DDPM', 1000)['mean']:.2%} at 1,000",
        "verdict_ddim": _ddim_verdict(ddim_vs_ddpm),
        "verdict_hal": f"on all steps AUROC {_at(auroc, 'DDPM', 1000)['mean']:.3f} (DDPM), "
                       f"{_at(auroc, 'DDIM eta=0', 1000)['mean']:.3f} (DDIM eta = 0); at T' <= 100 at most "
                       f"{max(few):.2f}: the detector needs many fine steps, not noise",
        "verdict_matched": matched_verdict(comparison),
        "verdict_memo": "no: " + ", ".join(f"N = {m['n_points']:,}: {m['count']} of {m['n']:,} hallucinated" for m in memo),
        "auroc_few_max": max(few),
        "ddim_diff": ddim_vs_ddpm["mean"], "ddim_diff_lo": ddim_vs_ddpm["lo"], "ddim_diff_hi": ddim_vs_ddpm["hi"],
        "ddim_agree": ddim_vs_ddpm["n_agree"], "ddim_p": ddim_vs_ddpm["p_one_sided"],
        "tau0_min": min(comparison["tau_0"]), "tau0_max": max(comparison["tau_0"]),
        "matched_rate": comparison["matched"][0], "matched_lo": comparison["matched"][1],
        "matched_hi": comparison["matched"][2], "learned_rate": comparison["learned"][0],
        "learned_lo": comparison["learned"][1], "learned_hi": comparison["learned"][2],
        "ratio_min": min(ratios), "ratio_max": max(ratios),
        **{f"memo_{q}_{i}": m[key] for i, m in enumerate(memo)
           for q, key in (("n", "n"), ("points", "n_points"), ("count", "count"), ("median", "median_distance"),
                          ("baseline", "baseline_median"), ("ratio", "ratio"))},
    }


def _intervals_overlap(a: dict, b: dict) -> bool:
    a_lo, a_hi = wilson_interval(a["count"], a["n"])
    b_lo, b_hi = wilson_interval(b["count"], b["n"])
    return a_lo <= b_hi and b_lo <= a_hi


def chapter_claims(exact, learned_rows, auroc, ddim_vs_ddpm, tempered, comparison, memo, records, live) -> tuple:
    """Chapter 6's check cell: ``(claims, sanity)`` for :func:`mode_interp.report.check`."""
    ex = {(r["sampler"], r["steps"]): r for r in exact}
    au = {(r["sampler"], r["steps"]): r for r in auroc}
    names = list(dict.fromkeys(r["sampler"] for r in exact))
    record0 = {(r["sampler"], r["steps"]): r for r in learned_rows if r["seed"] == 0}
    tau = {r["tau"]: r for r in tempered}
    true = true_hallucination_rate(records_mixture(records), 5.0)
    matched_lo = wilson_interval(sum(m["count"] for m in comparison["rows"]), sum(m["n"] for m in comparison["rows"]))[0]
    claims = {
        "exact score, all 1,000 steps: every sampler at the true mixture's rate (99.9% Wilson lower bound <= true)":
            all(ex[n, 1000]["pooled_lo"] <= true for n in names),
        "exact score, 10 steps: every sampler hallucinates > 10% (lower between-seed bound)":
            all(ex[n, 10]["lo"] > 0.10 for n in names),
        "learned, 1,000 steps: DDIM eta=0 > DDPM in every replicate (paired one-sided p < 0.05)":
            ddim_vs_ddpm["n_agree"] == len(ddim_vs_ddpm["d"]) and ddim_vs_ddpm["p_one_sided"] < 0.05,
        "learned, 1,000 steps: Hal AUROC > 0.95 on DDPM in every replicate": min(au["DDPM", 1000]["values"]) > 0.95,
        "learned, T' <= 100: Hal AUROC < 0.7 for every sampler (mean over replicates)":
            all(r["mean"] < 0.7 for r in auroc if r["steps"] <= 100 and math.isfinite(r["mean"])),
        "tempered, tau = 1 (the exact score): at the true rate (99.9% Wilson lower bound <= true)":
            tau[1.0]["pooled_lo"] <= true,
        "tempered: the rate rises with tau from 2 to 20 (disjoint pooled 99.9% intervals)":
            all(tau[a]["pooled_hi"] < tau[b]["pooled_lo"] for a, b in ((2.0, 5.0), (5.0, 10.0), (10.0, 20.0))),
        "width-matched tempered denoiser hallucinates: pooled 99.9% lower bound > 100x the true rate":
            matched_lo > 100 * true,
        "empirical optimal denoiser: no sample beyond 5 sigma, at every N": all(m["count"] == 0 for m in memo),
        "empirical optimal denoiser of the smallest N: samples closer to the training points than fresh data "
        "(median distance < 0.75x)": min(memo, key=lambda m: m["n_points"])["ratio"] < 0.75,
        "live rerun of replicate 0 agrees with its record (99.9% Wilson intervals overlap)":
            all(_intervals_overlap(r, record0[r["sampler"], r["steps"]]) for r in live),
    }
    sanity = {
        "every record is the learned or the exact score of the same spec": {r["spec"]["score"] for r in records} <= {"learned", "exact"},
        "3 replicates per learned cell": all(r["n_seeds"] + r["n_missing"] == 3 for r in auroc),
    }
    return claims, sanity
