"""Count the shapes in SIMPLE SHAPES images, real or generated, and label each image (the paper's SIMPLE SHAPES experiment).

Reading one image (intensity in [0, 1], 64 x 64 or 32 x 32):

0. *Background*: the image's median (its background: shapes cover under 10% of it) is subtracted and the
   rest rescaled to [0, 1]. Training images have a median of exactly 0; a generated image with a uniform
   faint grey floor is read by its shapes, and its floor does not count as noise.
1. *Components*: pixels brighter than ``level`` are grouped into 8-connected blobs within each column. A
   pixel belongs to the panel its left edge lies in (21 px per panel, in 64-px units): at 32 x 32 the
   pixel straddling panels 0 and 1 only ever holds triangle ink, since a square starts at x >= 1. A blob's
   soft area is its summed intensity in 64-px units (x 4 at 32 x 32: 2 x 2 pooling preserves the sum).
2. *Shapes*: a blob whose soft area lies in its column's range (``Tolerances``, derived from the training
   set, never typed in) is one copy of that column's shape; any other blob is *malformed* (a partial or
   merged shape). Blobs below ``min_blob`` of the smallest shape are specks.
3. *Image label*, first match wins:
   ``noisy``        background not clean: mean intensity outside blobs above ``noise_floor``, specks
                    of total area above ``speck_area``, or more ink than twice the most any training
                    image has (a grey or white field);
   ``malformed``    a malformed blob, or no shape at all;
   ``hallucinated`` only well-formed shapes, but a combination the training set never has: two or more
                    copies in a column (the paper's "two squares") or a combination outside ``seen``;
   ``valid``        one of the training set's combinations.

Shape *type* is read from the column and the area (each type lives in one column in training); a blob of
the right area but the wrong outline would count as the column's shape. This mirrors the per-column white
pixel counts of the official generator's assertions and of the VSM follow-up's counter.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ._validate import check_array, check_float, check_instance
from .shapes import COLUMNS, SIZE, ShapesData, pixel_columns, to_intensity

LABELS = ("valid", "hallucinated", "malformed", "noisy")


def _image(image) -> np.ndarray:
    """One finite intensity image, square, with a side dividing 64, as float64."""
    image = check_array("image", image, ndim=2)
    if image.shape[0] != image.shape[1] or SIZE % image.shape[0]:
        raise ValueError(f"image must be square with a side dividing {SIZE}, got shape {image.shape}")
    return image


def _level(level) -> float:
    return check_float("level", level, 0.0, 1.0, lo_open=True, hi_open=True)


def blobs(image: np.ndarray, level: float = 0.2) -> list:
    """8-connected components of ``image > level`` within each column: a list of dicts with ``area`` (soft,
    64-px units), ``column`` (0, 1, 2) and ``pixels`` (count at the image's own resolution)."""
    image, level = _image(image), _level(level)
    if image.ndim != 2 or image.shape[0] != image.shape[1] or SIZE % image.shape[0]:
        raise ValueError(f"image must be square with a side dividing {SIZE}, got shape {image.shape}")
    r = image.shape[0]
    scale = SIZE // r
    mask = image > level
    column = pixel_columns(r)
    seen = np.zeros_like(mask)
    found = []
    for i0, j0 in zip(*np.nonzero(mask)):
        if seen[i0, j0]:
            continue
        seen[i0, j0] = True
        queue, members = deque([(i0, j0)]), []
        while queue:
            i, j = queue.popleft()
            members.append((i, j))
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    a, b = i + di, j + dj
                    if 0 <= a < r and 0 <= b < r and mask[a, b] and not seen[a, b] and column[b] == column[j0]:
                        seen[a, b] = True
                        queue.append((a, b))
        rows, cols = np.array(members).T
        found.append({"area": float(image[rows, cols].sum()) * scale * scale, "column": int(column[j0]),
                      "pixels": len(members)})
    return found


def remove_background(image: np.ndarray) -> np.ndarray:
    """(image - median) / (1 - median), clipped to [0, 1]: step 0 of the reading above."""
    image = _image(image)
    floor = float(np.median(image))
    return np.clip((image - floor) / max(1.0 - floor, 1e-6), 0.0, 1.0)


def residual(image: np.ndarray, level: float = 0.2) -> float:
    """Mean intensity of the pixels at or below ``level`` (the background): 0 for a clean image."""
    image, level = _image(image), _level(level)
    return float(np.where(image > level, 0.0, image).mean())


@dataclass
class Tolerances:
    """Per-column soft-area ranges (64-px units) and the background limit, from :func:`fit_tolerances`."""

    area: dict                    # column index -> (lo, hi)
    max_residual: float           # mean background intensity above which an image is noisy
    min_blob: float               # blobs smaller than this (64-px units) are specks
    max_speck_area: float         # total speck area (64-px units) above which an image is noisy
    max_ink: float                # total intensity (64-px units) above which an image is a noise field
    seen: set = field(default_factory=set)   # combinations present in training: tuples of 0/1 per column
    level: float = 0.2


def fit_tolerances(data: ShapesData, x, margin: float = 0.15, level: float = 0.2, noise_floor: float = 0.02,
                   speck_area: float = 8.0) -> Tolerances:
    """Ranges from the training set itself: each column's soft areas widened by ``margin`` (relative),
    specks = blobs below half the smallest shape, noise field = more than twice the largest training ink;
    the background limits are the training set's (0 for clean images) plus ``noise_floor`` (mean
    intensity) and ``speck_area`` (64-px units: two white pixels at 32 x 32).
    ``x``: the training images in model space (any resolution), aligned with ``data``."""
    margin = check_float("margin", margin, 0.0, 1.0)
    check_instance("data", data, ShapesData)
    level = _level(level)
    noise_floor = check_float("noise_floor", noise_floor, 0.0, None)
    speck_area = check_float("speck_area", speck_area, 0.0, None)
    images = [remove_background(image) for image in to_intensity(x)]
    if len(images) != len(data):
        raise ValueError(f"x has {len(images)} images but data has {len(data)}")
    areas = {c: [] for c in range(3)}
    residuals, ink, found = [], [], []
    for image in images:
        ink.append(float(image.sum()) * (SIZE / image.shape[0]) ** 2)
        found.append(blobs(image, level))
        for blob in found[-1]:
            areas[blob["column"]].append(blob["area"])
        residuals.append(residual(image, level))
    if any(not a for a in areas.values()):
        raise ValueError("the training set must contain every shape at least once")
    area = {c: (min(a) * (1 - margin), max(a) * (1 + margin)) for c, a in areas.items()}
    seen = {tuple(int(p) for p in row) for row in data.present}
    min_blob = 0.5 * min(min(a) for a in areas.values())
    specks = [sum(b["area"] for b in image_blobs if b["area"] < min_blob) for image_blobs in found]
    return Tolerances(area, max(residuals) + noise_floor, min_blob, max(specks) + speck_area, 2 * max(ink),
                      seen, level)


def read_image(image: np.ndarray, tol: Tolerances) -> dict:
    """``label`` (one of LABELS), ``counts`` (copies per column), ``malformed`` and ``specks`` counts.
    A NaN or infinite pixel is an error, never a "malformed" reading."""
    check_instance("tol", tol, Tolerances, " (from fit_tolerances)")
    image = remove_background(image)
    counts, malformed, specks, speck_area = [0, 0, 0], 0, 0, 0.0
    for blob in blobs(image, tol.level):
        lo, hi = tol.area[blob["column"]]
        if blob["area"] < tol.min_blob:
            specks += 1
            speck_area += blob["area"]
        elif lo <= blob["area"] <= hi:
            counts[blob["column"]] += 1
        else:
            malformed += 1
    ink = float(image.sum()) * (SIZE / image.shape[0]) ** 2
    if residual(image, tol.level) > tol.max_residual or speck_area > tol.max_speck_area or ink > tol.max_ink:
        label = "noisy"
    elif malformed or not any(counts):
        label = "malformed"
    elif max(counts) > 1 or tuple(int(c > 0) for c in counts) not in tol.seen:
        label = "hallucinated"
    else:
        label = "valid"
    return {"label": label, "counts": tuple(counts), "malformed": malformed, "specks": specks}


def count_shapes(x, tol: Tolerances) -> list:
    """:func:`read_image` for every image of ``x`` (model space, (n, 1, r, r) or (n, r*r))."""
    check_instance("tol", tol, Tolerances, " (from fit_tolerances)")
    return [read_image(image, tol) for image in to_intensity(x)]


def label_rates(readings: list) -> dict:
    """Counts per label and per column-count pattern: ``{"n", "labels": {label: count},
    "two_or_more": {shape: hallucinated images with >= 2 copies of it}, "blank": malformed images with no
    blob at all}``. (Blank images never occur in training either; they are counted as malformed, not as
    hallucinated, because they hold no shape to combine.)"""
    if not isinstance(readings, (list, tuple)) or not readings or not all(
            isinstance(r, dict) and {"label", "counts", "malformed"} <= set(r) for r in readings):
        raise ValueError("readings must be a non-empty list of read_image() / count_shapes() results")
    labels = {name: sum(r["label"] == name for r in readings) for name in LABELS}
    multi = {kind: sum(r["counts"][c] >= 2 and r["label"] == "hallucinated" for r in readings)
             for c, kind in enumerate(COLUMNS)}
    blank = sum(r["label"] == "malformed" and not any(r["counts"]) and not r["malformed"] for r in readings)
    return {"n": len(readings), "labels": labels, "two_or_more": multi, "blank": blank}
