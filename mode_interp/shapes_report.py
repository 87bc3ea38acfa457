"""Chapter 3's measurements on SIMPLE SHAPES (the paper's SIMPLE SHAPES experiment), one function each, so
the chapter reads as prose and calls: the training set's composition and how the counter reads it back,
the model's record, a short training from scratch, the generated images counted by label (with 99.9%
Wilson intervals), and where "two squares" images sit in the U-Net's bottleneck features.

The ``*_numbers`` functions and ``numbers()`` methods return flat dicts of plain numbers (and a few
strings) named like the chapter's glue keys, for :func:`mode_interp.report.glue_all`; the ``*_table``
functions return Markdown for ``IPython.display.Markdown``.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ._validate import check_bool, check_float, check_instance, check_int, check_points
from .diffusion import SampleResult
from .features import pca_2d, segment_coordinates
from .image_train import ShapesConfig, TrainedUNet, train_shapes
from .plots import plot_image_grid
from .report import markdown_table
from .shape_counter import LABELS, Tolerances, count_shapes, label_rates
from .shapes import COLUMNS, ShapesData, hand_built, keep_column, to_intensity
from .stats import wilson_interval
from .train import SHIPPED_DIR
from .unet import UNet


def _readings(readings) -> list:
    label_rates(readings)                        # checks: a non-empty list of read_image() results
    return list(readings)


def _images(name: str, x, data: ShapesData | None = None) -> torch.Tensor:
    """Model-space images (n, 1, r, r) or (n, r*r) as a float tensor (n, 1, r, r); as many as ``data``'s."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of model-space images, got {type(x).__name__}")
    if x.ndim not in (2, 4) or not len(x):
        raise ValueError(f"{name} must be (n, 1, r, r) or (n, r*r) images, n >= 1, got shape {tuple(x.shape)}")
    r = int(round(x[0].numel() ** 0.5))
    if r * r != x[0].numel():
        raise ValueError(f"{name} must be (n, 1, r, r) or (n, r*r) images, got shape {tuple(x.shape)}")
    x = check_points(name, x.reshape(len(x), -1)).reshape(-1, 1, r, r)
    if data is not None and len(x) != len(data):
        raise ValueError(f"{name} has {len(x)} images but data has {len(data)}")
    return x


def composition_table(data: ShapesData) -> str:
    """Markdown table of the training set's combinations: images, share, and the expected share 1/7 (each
    shape present with probability 1/2, all-black draws dropped: 7 equally likely combinations)."""
    check_instance("data", data, ShapesData)
    comp = data.composition()
    return markdown_table(["combination", "images", "share", "expected"],
                          [[" + ".join(k), f"{round(v * len(data)):,}", f"{v:.1%}", f"{1 / 7:.1%}"]
                           for k, v in comp.items()])


def tolerance_table(tol: Tolerances) -> str:
    """Markdown table of the counter's per-column soft-area ranges (64-px units), from the training set."""
    check_instance("tol", tol, Tolerances, " (from fit_tolerances)")
    return markdown_table(["column", "shape", "soft area range (64-px units)"],
                          [[c, COLUMNS[c], f"{lo:.1f} – {hi:.1f}"] for c, (lo, hi) in tol.area.items()])


def training_numbers(data: ShapesData, x: torch.Tensor, tol: Tolerances) -> dict:
    """The counter read back on the training set: ``n_images``, ``n_combinations`` (distinct
    combinations), ``train_{label}`` (images per label of :data:`mode_interp.shape_counter.LABELS`) and
    ``train_exact`` (images whose per-column counts equal the generator's ``present`` metadata)."""
    check_instance("data", data, ShapesData)
    check_instance("tol", tol, Tolerances, " (from fit_tolerances)")
    readings = count_shapes(_images("x", x, data), tol)
    rates = label_rates(readings)
    exact = sum(r["counts"] == tuple(int(p) for p in row) for r, row in zip(readings, data.present))
    return {"n_images": len(data), "n_combinations": len(data.composition()),
            **{f"train_{name}": rates["labels"][name] for name in LABELS}, "train_exact": int(exact)}


def model_numbers(trained: TrainedUNet) -> dict:
    """The U-Net's record: ``n_params``, ``steps`` (of its config), ``train_seconds``, ``source`` (shipped
    checkpoint, local cache or trained in this run) and ``model_summary``, a one-line description followed, for a
    shipped checkpoint, by the command, threads, machine, torch version and date of its MANIFEST entry."""
    check_instance("trained", trained, TrainedUNet, " (from load_or_train_shapes)")
    n_params = sum(p.numel() for p in trained.model.parameters())
    steps = trained.config.steps
    summary = (f"{n_params:,} parameters | {steps:,} steps | {trained.source} | "
               f"trained in {trained.seconds:.0f} s")
    manifest = SHIPPED_DIR / "MANIFEST.json"
    if trained.path and manifest.exists():
        entries = {m["file"]: m for m in json.loads(manifest.read_text())}
        e = entries.get(Path(trained.path).name)
        if e and Path(trained.path).parent == SHIPPED_DIR:
            summary += (f"\ncommand: {e['command']} ({e['threads']} thread(s), {e['machine']}, "
                        f"torch {e['torch']}, {e['date']})")
    return {"n_params": n_params, "steps": steps, "train_seconds": float(trained.seconds),
            "source": trained.source, "model_summary": summary}


def smoke_training(config: ShapesConfig, steps: int) -> dict:
    """Train a fresh U-Net for ``steps`` steps with ``config``'s recipe (in a temporary folder: nothing is
    cached) to check the training code in every run. Returns ``steps_smoke``, ``smoke_first`` and
    ``smoke_last`` (mean loss over the first and the last block of 50 steps), ``smoke_seconds``,
    ``smoke_step_seconds`` and a one-line ``smoke_summary``. Needs ``steps`` >= 50 (one loss block)."""
    check_instance("config", config, ShapesConfig)
    steps = check_int("steps", steps, 50, None)
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        smoke = train_shapes(replace(config, steps=steps), progress=False, directory=Path(run_dir),
                             checkpoint_every=steps)
        seconds = time.perf_counter() - start
    first, last = float(smoke.losses[0]), float(smoke.losses[-1])
    summary = (f"{steps} steps from scratch in {seconds:.0f} s ({seconds / steps:.2f} s/step, "
               f"{torch.get_num_threads()} thread(s)): mean loss over steps 1-50 {first:.4f}, "
               f"over the last 50 {last:.4f}")
    return {"steps_smoke": steps, "smoke_first": first, "smoke_last": last, "smoke_seconds": seconds,
            "smoke_step_seconds": seconds / steps, "smoke_summary": summary}


@dataclass
class Generated:
    """Generated images read by the counter: ``result`` (the sampler's :class:`SampleResult`: ``x0``,
    ``x0_hat`` of the last steps, ``timesteps``), ``readings`` (:func:`count_shapes`), ``seconds`` (sampling
    time)."""

    result: SampleResult
    readings: list
    seconds: float

    @property
    def labels(self) -> np.ndarray:
        return np.array([r["label"] for r in self.readings])

    def indices(self, *names: str) -> dict:
        """``{label: indices of the images with that label}`` for each label of ``names``."""
        for name in names:
            if name not in LABELS:
                raise ValueError(f"names must be labels among {LABELS}, got {name!r}")
        labels = self.labels
        return {name: np.flatnonzero(labels == name) for name in names}

    def numbers(self, z: float = 3.29) -> dict:
        """Per label (valid, hallucinated, malformed, noisy): ``{label}_count``, ``{label}_rate`` and the
        Wilson interval ``{label}_lo``, ``{label}_hi`` at ``z`` (3.29: 99.9%); ``multi_{shape}``:
        hallucinated images with >= 2 copies of the shape in its column, ``multi_total`` their sum over the
        shapes; ``unseen_combination``: hallucinated images with at most one copy per column (a combination
        absent from training); ``blank``: malformed images with no shape at all; ``n_generated``."""
        z = check_float("z", z, 0.0, None, lo_open=True)
        readings = _readings(self.readings)
        rates, n = label_rates(readings), len(readings)
        out = {"n_generated": n}
        for name in LABELS:
            count = rates["labels"][name]
            lo, hi = wilson_interval(count, n, z)
            out.update({f"{name}_count": count, f"{name}_rate": count / n, f"{name}_lo": lo, f"{name}_hi": hi})
        for kind in COLUMNS:
            out[f"multi_{kind}"] = rates["two_or_more"][kind]
        out["multi_total"] = sum(rates["two_or_more"].values())
        out["unseen_combination"] = sum(r["label"] == "hallucinated" and max(r["counts"]) <= 1 for r in readings)
        out["blank"] = rates["blank"]
        return out


def generate(trained: TrainedUNet, tol: Tolerances, n: int, seed: int, steps: int | None = None,
             window: int = 0, cache: bool = False) -> Generated:
    """``n`` images from ``trained`` (:meth:`TrainedUNet.sample`: seeded, x0_hat clipped, "fixed_small",
    on a chain respaced to ``steps`` steps, keeping x0_hat of the last ``window`` steps), read by the
    counter, with the chain's wall time. ``cache``: the draw keeps x_t over the window as well and goes to
    the sample cache (``TrainedUNet.sample(cache=True)``), where chapter 4's detector reads it back."""
    check_instance("trained", trained, TrainedUNet, " (from load_or_train_shapes)")
    check_instance("tol", tol, Tolerances, " (from fit_tolerances)")
    result = trained.sample(n, seed, steps=steps, window=window, keep_x_t=check_bool("cache", cache), cache=cache)
    return Generated(result, count_shapes(result.x0, tol), result.seconds)


def label_table(numbers: dict, training: dict) -> str:
    """Markdown table: per label, the generated count, rate and 99.9% Wilson interval
    (:meth:`Generated.numbers`) beside the training set's count (:func:`training_numbers`)."""
    check_instance("numbers", numbers, dict, " (from Generated.numbers)")
    check_instance("training", training, dict, " (from training_numbers)")
    return markdown_table(["label", "generated", "rate", "99.9% Wilson interval", "training set"],
                          [[name, f"{numbers[f'{name}_count']:,}", f"{numbers[f'{name}_rate']:.1%}",
                            f"[{numbers[f'{name}_lo']:.1%}, {numbers[f'{name}_hi']:.1%}]",
                            f"{training[f'train_{name}']:,} of {training['n_images']:,}"] for name in LABELS])


def hallucination_table(numbers: dict) -> str:
    """Markdown table of the hallucinated images by kind: >= 2 copies of each shape in its column, and
    well-formed images with at most one copy per column in an unseen combination (:meth:`Generated.numbers`)."""
    check_instance("numbers", numbers, dict, " (from Generated.numbers)")
    return markdown_table(["hallucination", "images"],
                          [[f"≥ 2 {kind}s in one column", f"{numbers[f'multi_{kind}']:,}"] for kind in COLUMNS]
                          + [["well-formed, ≤ 1 per column, unseen combination",
                              f"{numbers['unseen_combination']:,}"]])


def label_grids(generated: Generated, most=(("valid", 16), ("hallucinated", 32), ("malformed", 16),
                                            ("noisy", 8))) -> list:
    """One image grid per label: the first ``most`` images of each (pairs ``(label, how many)``), titled with
    the counter's per-column counts."""
    check_instance("generated", generated, Generated, " (from generate)")
    images, labels, figures = to_intensity(generated.result.x0), generated.labels, []
    for name, k in most:
        k = check_int("most", k, 1, None)
        idx = generated.indices(name)[name][:k]
        figures.append(plot_image_grid(images[idx], titles=[str(generated.readings[i]["counts"]) for i in idx],
                                       ncols=16, title=f"{name}: {int((labels == name).sum()):,} of "
                                                       f"{len(labels):,} (first {len(idx)} shown)"))
    return figures


def plot_readings(examples: dict, tol: Tolerances):
    """The counter's reading of a few images ``{name: model-space image (1, 1, r, r)}``, one per panel,
    titled with the name, the label and the per-column counts."""
    check_instance("examples", examples, dict)
    check_instance("tol", tol, Tolerances, " (from fit_tolerances)")
    if not examples:
        raise ValueError("examples must hold at least one image")
    x = torch.cat([_images(f"examples[{name!r}]", v) for name, v in examples.items()])
    readings = count_shapes(x, tol)
    return plot_image_grid(to_intensity(x), ncols=len(examples), size=1.6,
                           titles=[f"{k}\n→ {r['label']} {r['counts']}" for k, r in zip(examples, readings)])


GROUPS = ("training: one square, top", "training: one square, bottom", "hand-built: two squares",
          "generated: two squares")


@dataclass
class SquarePositions:
    """Bottleneck features (``features[group]``, (n, d)) of the four groups of :data:`GROUPS` and their
    position along the segment between the one-square centroids (``lam[group]``, ``dist[group]``:
    :func:`mode_interp.features.segment_coordinates`; None for an empty group)."""

    features: dict
    lam: dict
    dist: dict

    def _median(self, group: str):
        return None if self.lam[group] is None else float(self.lam[group].median())

    def numbers(self) -> dict:
        """``n_generated_two``, ``hand_lambda`` (median lambda of the hand-built two squares), ``gen_lambda``
        (the generated ones' median as text, "(none generated)" if there are none) and
        ``between_verdict``: whether both medians lie inside (0.2, 0.8), i.e. between the two groups."""
        hand, gen = self._median(GROUPS[2]), self._median(GROUPS[3])
        inside = [m is not None and 0.2 < m < 0.8 for m in (gen, hand)]
        verdict = ("between the two one-square groups, as in the paper's t-SNE" if all(inside) else
                   "not clearly between the two one-square groups (median λ outside 0.2–0.8), unlike the "
                   "paper's t-SNE")
        return {"n_generated_two": len(self.features[GROUPS[3]]), "hand_lambda": hand,
                "gen_lambda": f"{gen:.2f}" if gen is not None else "(none generated)", "between_verdict": verdict}

    def table(self) -> str:
        """Markdown table per group: n, median lambda, its 10-90% range and the median distance d."""
        rows = []
        for g in GROUPS:
            lam, d = self.lam[g], self.dist[g]
            rows.append([g, f"{len(self.features[g]):,}", "–", "–", "–"] if lam is None else
                        [g, f"{len(lam):,}", f"{float(lam.median()):.2f}",
                         f"{float(lam.quantile(0.1)):.2f} – {float(lam.quantile(0.9)):.2f}", f"{float(d.median()):.2f}"])
        return markdown_table(["images", "n", "median λ", "10–90% of λ", "median distance d"], rows)

    def projection(self) -> dict:
        """The groups on the first two principal axes of the training features (:func:`pca_2d`), named for
        :func:`mode_interp.plots.plot_projection`."""
        f_top, f_bottom, f_hand, f_gen = (self.features[g].double() for g in GROUPS)
        proj = pca_2d(torch.cat([f_top, f_bottom]), f_hand, *([f_gen] if len(f_gen) else []))
        groups = {"one square, top": proj[0][:len(f_top)], "one square, bottom": proj[0][len(f_top):],
                  "hand-built two squares": proj[1]}
        if len(f_gen):
            groups["generated two squares"] = proj[2]
        return groups


def square_positions(model: UNet, data: ShapesData, x_train: torch.Tensor, generated: Generated, seed: int = 0,
                     n_hand: int = 40) -> SquarePositions:
    """Where "two squares" images sit between the two one-square clusters in ``model``'s bottleneck
    features (clean images, t = 0, with every column but the middle one set to background:
    :func:`mode_interp.shapes.keep_column`). Reference groups: training images holding only a square, with
    the square on top (y < 20, 64-px units) or at the bottom (y > 30). Placed on the segment between their
    centroids: the generated hallucinated images with exactly two squares in the middle column, and
    ``n_hand`` hand-built ones (:func:`mode_interp.shapes.hand_built`: one square at y in [1, 13], one at y
    in [30, 49], x in [1, 7], drawn from ``numpy.random.default_rng(seed)``)."""
    check_instance("model", model, UNet)
    check_instance("data", data, ShapesData)
    check_instance("generated", generated, Generated, " (from generate)")
    x_train = _images("x_train", x_train, data)
    seed = check_int("seed", seed, 0, None)
    n_hand = check_int("n_hand", n_hand, 1, None)
    r = x_train.shape[-1]
    square_only = np.flatnonzero((data.present == [False, True, False]).all(axis=1))
    y_square = data.positions[square_only, 1, 1]
    top, bottom = square_only[y_square < 20], square_only[y_square > 30]
    if not len(top) or not len(bottom):
        raise ValueError("data must hold square-only images with the square on top (y < 20) and at the bottom "
                         "(y > 30)")
    two = [i for i, rd in enumerate(generated.readings) if rd["label"] == "hallucinated" and rd["counts"][1] == 2]
    rng = np.random.default_rng(seed)
    hand = torch.cat([hand_built(("square", int(rng.integers(1, 8)), int(rng.integers(1, 14))),
                                 ("square", int(rng.integers(1, 8)), int(rng.integers(30, 50))), resolution=r)
                      for _ in range(n_hand)])
    x_gen = _images("generated.result.x0", generated.result.x0)

    def features(x):
        with torch.no_grad():
            return model.bottleneck_features(keep_column(x.reshape(-1, 1, r, r), 1))

    f_top = features(x_train[top])
    f_gen = features(x_gen[two]) if two else f_top[:0]
    feats = dict(zip(GROUPS, (f_top, features(x_train[bottom]), features(hand), f_gen)))
    lam, dist = {}, {}
    for g, f in feats.items():
        lam[g], dist[g] = segment_coordinates(f, feats[GROUPS[0]], feats[GROUPS[1]]) if len(f) else (None, None)
    return SquarePositions(feats, lam, dist)
