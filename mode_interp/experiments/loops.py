"""Chapter 5's experiment: one arm of one replicate of a self-consuming loop (:mod:`mode_interp.recursive`),
and the per-generation metrics that the book and ``python -m mode_interp.recursive`` both report.

Replicate ``seed`` of a loop draws everything afresh: its real data (``data_seed + seed``), every
generation's initialisation and data order (``base.seed + seed``) and its sampling and random filter
(loop ``seed + seed``). Replicate 0 is the loop itself, so the shipped single-seed loops are replicate 0.
The three arms of a replicate share its generation 0, which a sweep computes once, first
(:func:`prepare`), so arms can then run in parallel.

:func:`generation_metrics` is the one definition of what a generation is measured by:

* Gaussian mixtures: ``hallucinated`` (share of the pool farther than ``k_label`` sigma from every mode,
  with its ``count`` and Wilson interval ``_lo`` / ``_hi`` at ``z``), ``within`` / ``spread`` / ``gate``
  (the loose check :func:`mode_interp.interpolation.quality_gate` on the pool; chapter 2's stricter gate:
  :func:`mode_interp.loop_report.generation0_gates`), ``kl`` (:func:`mode_interp.stats.histogram_kl`
  against ``n_pool`` true samples), ``kept_hallucinated`` / ``kept_spread`` (of the data passed on),
  ``hallucinated_removed`` (share of the pool's hallucinations the selection dropped) and
  ``removed_precision`` (share of the dropped samples that are hallucinations);
* digits (``digits_pca``): ``fd`` / ``kept_fd`` (Fréchet distance of ``n_fid`` decoded samples to decoded
  real digits, :mod:`mode_interp.fid`; for ``kept_fd`` the first ``n_fid`` kept samples in pool order), ``top_class`` (share of the most frequent predicted class) and
  ``confident`` (share of decoded samples the classifier labels with probability >= 0.9).

A digits record also keeps ``preview``: the first :data:`N_PREVIEW` codes of each generation's pool
(decode them with :func:`mode_interp.digits.digits_pca`), so a chapter can show samples without the pools.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from .._validate import check_float, check_int
from ..recursive import ARMS, LoopConfig, run_loop
from ..stats import histogram_kl
from ..train import ToyConfig
from .records import Experiment, check_fields, register


def replicate(loop: LoopConfig, seed: int) -> LoopConfig:
    """Replicate ``seed`` (0 .. 99) of ``loop`` (module docstring); replicate 0 is ``loop``."""
    seed = check_int("seed", seed, 0, 99)        # sampling seeds step by 100 per arm: keep replicates apart
    base = replace(loop.base, data_seed=loop.base.data_seed + seed, seed=loop.base.seed + seed)
    return replace(loop, base=base, seed=loop.seed + seed)


def loop_from_dict(d: dict) -> LoopConfig:
    """A :class:`LoopConfig` from its ``to_dict()`` (or a hand-written subset of its fields)."""
    if not isinstance(d, dict) or "base" not in d:
        raise ValueError(f"loop must be a dict with a 'base' ToyConfig dict, got {d!r}")
    d = check_fields(LoopConfig, dict(d), "loop")
    base = check_fields(ToyConfig, dict(d.pop("base")), "loop.base")
    return LoopConfig(ToyConfig.from_dict(base), **d)


@dataclass(frozen=True)
class RecursiveArm:
    """One arm of replicate ``seed`` of ``loop`` (``loop`` is the replicate-0 template)."""

    loop: LoopConfig
    arm: str
    seed: int = 0
    k_label: float = 5.0          # hallucinated: > k_label sigma from every mode (chapter 2)
    z: float = 3.29               # Wilson intervals (99.9%)
    n_fid: int = 2_000            # digits: samples per Fréchet distance

    def __post_init__(self):
        if not isinstance(self.loop, LoopConfig):
            raise TypeError(f"loop must be a LoopConfig, got {type(self.loop).__name__}")
        if self.arm not in ARMS:
            raise ValueError(f"arm must be one of {ARMS}, got {self.arm!r}")
        check_int("seed", self.seed, 0, 99)
        check_float("k_label", self.k_label, 0.0, None, lo_open=True)
        check_float("z", self.z, 0.0, None, lo_open=True)
        check_int("n_fid", self.n_fid, 2, None)

    @property
    def config(self) -> LoopConfig:
        return replicate(self.loop, self.seed)

    def to_dict(self) -> dict:
        return {"loop": self.loop.to_dict(), "arm": self.arm, "seed": self.seed, "k_label": self.k_label,
                "z": self.z, **({"n_fid": self.n_fid} if self.loop.base.data == "digits_pca" else {})}

    @classmethod
    def from_dict(cls, d: dict) -> "RecursiveArm":
        d = check_fields(cls, dict(d), "recursive_arm spec")
        if "loop" not in d or "arm" not in d:
            raise ValueError(f"recursive_arm spec needs 'loop' and 'arm', got keys {sorted(d)}")
        return cls(loop_from_dict(d.pop("loop")), **d)


# ---------------------------------------------------------------- metrics

def kl_grid(mixture) -> tuple:
    """``(bins, lo, hi)`` of the histogram KL: 240 bins from 0.5 below the lowest mode to 0.5 above the
    highest in 1-D; 100 per axis over +/- 1.3 max|mean| in 2-D."""
    if mixture.dim == 1:
        means = np.asarray(mixture.means)[:, 0]
        return 240, float(means.min()) - 0.5, float(means.max()) + 0.5
    edge = float(np.abs(mixture.means).max()) * 1.3
    return 100, -edge, edge


@functools.lru_cache(maxsize=4)
def _kl_reference(config: LoopConfig):
    mixture = config.base.mixture()
    return mixture.sample(config.n_pool, torch.Generator().manual_seed(10_000 + config.seed))


@functools.lru_cache(maxsize=2)
def _digits_scorer(latent_dim: int, n_fid: int, loop_seed: int):
    """The classifier, the PCA decoder and the reference features (real digits through the decoder)."""
    from ..digits import digits_pca, load_digits
    from ..fid import ClassifierConfig, load_or_train_classifier

    pca = digits_pca(latent_dim)
    classifier = load_or_train_classifier(ClassifierConfig(), progress=False)
    images, _ = load_digits()
    order = np.random.default_rng(10_000 + loop_seed).permutation(len(images))
    reference = pca.decode(pca.encode(images[order[:n_fid]] / 255))
    return pca, classifier, classifier.features(reference)


def digit_scores(codes: torch.Tensor, latent_dim: int, n_fid: int, loop_seed: int) -> dict:
    """``fd``, ``top_class`` and ``confident`` of the first ``n_fid`` codes (module docstring)."""
    from ..stats import frechet_distance

    pca, classifier, reference_features = _digits_scorer(latent_dim, n_fid, loop_seed)
    decoded = pca.decode(codes[:n_fid])
    probs = classifier.probabilities(decoded)
    top = probs.argmax(1)
    return {"fd": frechet_distance(reference_features, classifier.features(decoded)),
            "top_class": float(np.bincount(top.numpy(), minlength=10).max() / len(top)),
            "confident": float((probs.max(1).values >= 0.9).double().mean())}


def generation_metrics(config: LoopConfig, gen, k_label: float = 5.0, z: float = 3.29, n_fid: int = 2_000) -> dict:
    """The numbers of one :class:`mode_interp.recursive.Generation` (module docstring)."""
    from ..hallucination import is_hallucinated
    from ..interpolation import hallucination_summary, mode_summary, quality_gate

    row = {"generation": gen.generation, "n_pool": len(gen.pool), "n_kept": len(gen.kept)}
    dropped = np.ones(len(gen.pool), dtype=bool)
    dropped[gen.kept] = False
    if config.base.data == "digits_pca":
        row.update(digit_scores(gen.pool, config.base.latent_dim, n_fid, config.seed))
        # the kept samples in the pool's own (i.i.d.) order: the variance arm lists them by increasing Hal,
        # and its first n_fid would be the least varying ones, not a sample of what is passed on
        kept_in_pool_order = gen.pool[np.sort(gen.kept)]
        row["kept_fd"] = digit_scores(kept_in_pool_order, config.base.latent_dim, n_fid, config.seed)["fd"]
        return row
    mixture = config.base.mixture()
    h, s = hallucination_summary(gen.pool, mixture, k_label, z), mode_summary(gen.pool, mixture)
    bad = is_hallucinated(gen.pool, mixture, k_label).numpy()
    kept = gen.data_next
    bins, lo, hi = kl_grid(mixture)
    row.update({"hallucinated": h["rate"], "hallucinated_lo": h["lo"], "hallucinated_hi": h["hi"],
                "count": int(h["count"]), "within": s["within"], "spread": float(np.mean(s["std"])),
                "gate": bool(all(quality_gate(s).values())),
                "kl": histogram_kl(gen.pool, _kl_reference(config), bins, lo, hi),
                "kept_hallucinated": float(is_hallucinated(kept, mixture, k_label).double().mean()),
                "kept_spread": float(np.mean(mode_summary(kept, mixture)["std"])),
                "hallucinated_removed": float(dropped[bad].mean()) if bad.any() else math.nan,
                "removed_precision": float(bad[dropped].mean()) if dropped.any() else math.nan})
    return row


def loop_rows(config: LoopConfig, loop: dict, k_label: float = 5.0, z: float = 3.29, n_fid: int = 2_000) -> list:
    """:func:`generation_metrics` of every generation of a :func:`mode_interp.recursive.run_loop` result,
    with ``arm`` and the generation's ``train_seconds`` / ``sample_seconds``."""
    return [{"arm": arm, **generation_metrics(config, gen, k_label, z, n_fid),
             "train_seconds": gen.model.seconds, "sample_seconds": gen.sample_seconds}
            for arm, gens in loop.items() for gen in gens]


# ---------------------------------------------------------------- the experiment

N_PREVIEW = 10      # digits: the first codes of each generation's pool kept in the record (``preview``)

def run_arm(spec: RecursiveArm) -> tuple:
    """Run (or load) the arm's generations and measure them: ``(result, info)`` (see :mod:`.records`)."""
    config = spec.config
    loop = run_loop(config, arms=(spec.arm,), progress=False)
    rows = loop_rows(config, loop, spec.k_label, spec.z, spec.n_fid)
    gens = loop[spec.arm]
    result = {"rows": [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in rows],
              "sample_precision": gens[0].sample_precision, "precision": gens[0].model.precision}
    if config.base.data == "digits_pca":     # the book shows a few decoded samples per generation
        result["preview"] = [np.round(g.pool[:N_PREVIEW].numpy().astype(np.float64), 4).tolist() for g in gens]
    info = {"precision": gens[0].model.precision,
            "computed_seconds": round(sum(r["train_seconds"] + r["sample_seconds"] for r in rows[1:]), 1),
            "shared_key": prepare_key(spec),
            "shared_seconds": round(rows[0]["train_seconds"] + rows[0]["sample_seconds"], 1),
            "generations": [{"generation": r["generation"], "train_seconds": round(r["train_seconds"], 1),
                             "sample_seconds": round(r["sample_seconds"], 1)} for r in rows]}
    return result, info


def prepare(spec: RecursiveArm) -> None:
    """Compute (or find) the replicate's generation 0, which its three arms share."""
    run_loop(replace(spec.config, generations=1), arms=("none",), progress=False)


def prepare_key(spec: RecursiveArm) -> str:
    from .. import cache
    return cache.file_name(spec.config.key("none", 0), "recursive")


register(Experiment("recursive_arm", RecursiveArm, run_arm, prepare, prepare_key,
                    doc="one arm of one replicate of a self-consuming loop (chapter 5)"))


# ---------------------------------------------------------------- across replicates

def by_arm(recs: list, key: str) -> dict:
    """``{arm: (seeds, values)}`` from ``recursive_arm`` records: ``values[i, g]`` is ``row[key]`` of seed
    ``seeds[i]`` at generation g (seeds sorted; every record of an arm must have the same generations)."""
    if not isinstance(recs, (list, tuple)) or not all(
            isinstance(r, dict) and isinstance(r.get("spec"), dict) and isinstance(r.get("result"), dict) for r in recs):
        raise ValueError("recs must be a list of recursive_arm records (records.load_records(...))")
    if not recs:
        raise ValueError("recs holds no records")
    if not isinstance(key, str):
        raise ValueError(f"key must be the name of a per-generation metric (a string), got {key!r}")
    out = {}
    for arm in ARMS:
        mine = sorted((r for r in recs if r["spec"]["arm"] == arm), key=lambda r: r["spec"]["seed"])
        if not mine:
            continue
        lengths = {len(r["result"]["rows"]) for r in mine}
        if len(lengths) != 1:
            raise ValueError(f"arm {arm!r}: records have different numbers of generations {sorted(lengths)}")
        seeds = [r["spec"]["seed"] for r in mine]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"arm {arm!r}: seed listed twice in {seeds}")
        missing = [r["spec"]["seed"] for r in mine if any(key not in row for row in r["result"]["rows"])]
        if missing:
            raise ValueError(f"key {key!r} is not a metric of arm {arm!r}'s rows (seeds {missing})")
        out[arm] = (seeds, np.array([[row[key] for row in r["result"]["rows"]] for r in mine], dtype=np.float64))
    return out


def paired_at(recs: list, key: str, a: str, b: str, generation: int = -1, confidence: float = 0.95,
             alternative: str = "less") -> dict:
    """:func:`mode_interp.stats.paired_test` of arm ``a`` minus arm ``b`` on ``key`` at ``generation``
    (default: the last), paired by seed (only the seeds both arms have), plus ``seeds``."""
    from ..stats import paired_test

    table = by_arm(recs, key)
    for name, arm in (("a", a), ("b", b)):
        if arm not in table:
            raise ValueError(f"{name}: no records of arm {arm!r} (have {sorted(table)})")
    (sa, va), (sb, vb) = table[a], table[b]
    generation = check_int("generation", generation, -va.shape[1], va.shape[1] - 1)
    common = [s for s in sa if s in sb]
    if len(common) < 2:
        raise ValueError(f"arms {a!r} and {b!r} share {len(common)} seed(s); a paired test needs >= 2")
    x = np.array([va[sa.index(s), generation] for s in common])
    y = np.array([vb[sb.index(s), generation] for s in common])
    return paired_test(x, y, confidence, alternative) | {"seeds": common}


COMPARISONS = {"variance − no filter": ("variance", "none"), "variance − random": ("variance", "random"),
               "random − no filter (null yardstick)": ("random", "none")}


def compare_arms(recs: list, key: str = "hallucinated", generation: int = -1, confidence: float = 0.95) -> dict:
    """``{name: paired_at(...)}`` for the three :data:`COMPARISONS` (one-sided: H1 the difference < 0)."""
    return {name: paired_at(recs, key, a, b, generation, confidence) for name, (a, b) in COMPARISONS.items()}


def growth(recs: list, arm: str = "none", key: str = "hallucinated", confidence: float = 0.95) -> dict:
    """The arm's last generation minus its generation 0, paired by seed (one-sided: H1 growth > 0)."""
    from ..stats import paired_test

    seeds, values = by_arm(recs, key)[arm]
    return paired_test(values[:, -1], values[:, 0], confidence, alternative="greater") | {"seeds": seeds}
