"""SIMPLE SHAPES (the paper's SIMPLE SHAPES experiment): 64x64 images with a triangle, a square and a pentagon, each in its own
column and each present independently with probability 1/2.

Layout: three panels of 21 x 63 px side by side (63 x 63), zero-padded by one bottom row and one right
column to 64 x 64. Black background (0), white shapes (255). Shapes are drawn with PIL on their own panel,
so a shape can never leave its column. Sizes (white pixels, the official generator's assertions):

    square   PIL rectangle of size 7 -> 8 x 8 = 64 px, top-left x in [1, 7], y in [1, 49]
    triangle side 11, flat top edge, apex down -> 65 px, top-left x in [0, 10], y in [0, 52]
    pentagon regular, circumradius 5 -> 68 px (the official code asserts 70 +- 2), centre x in [5, 16],
             y in [5, 58]

Differences from the official generator, both deliberate: a seeded ``numpy.random.Generator`` replaces the
unseeded ``random`` module, and ``downsample`` gives the 32 x 32 working resolution used on a CPU (2 x 2
average pooling: a shape's summed intensity, its "soft area", is preserved up to the factor 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from ._validate import check_array, check_choice, check_float, check_int, check_tensor

SIZE, PANEL_W, PANEL_H = 64, 21, 63
COLUMNS = ("triangle", "square", "pentagon")            # left, middle, right
PLACEMENT = {"triangle": ((0, 10), (0, 52)), "square": ((1, 7), (1, 49)), "pentagon": ((5, 16), (5, 58))}
AREA = {"triangle": 65, "square": 64, "pentagon": 68}     # white pixels at 64 x 64 (tests check these)
RESOLUTIONS = (32, 64)


def draw_panel(kind: str, x: int, y: int) -> np.ndarray:
    """One 63 x 21 uint8 panel with ``kind`` placed at (x, y) (top-left corner, or centre for the pentagon)."""
    check_choice("kind", kind, COLUMNS)
    (x_lo, x_hi), (y_lo, y_hi) = PLACEMENT[kind]
    check_int("x", x, x_lo, x_hi)
    check_int("y", y, y_lo, y_hi)
    panel = Image.new("L", (PANEL_W, PANEL_H), 0)
    draw = ImageDraw.Draw(panel)
    if kind == "square":
        draw.rectangle([x, y, x + 7, y + 7], fill=255)
    elif kind == "triangle":
        draw.polygon([(x, y), (x + 11, y), (x + 5.5, y + 11 * math.sqrt(3) / 2)], fill=255)
    else:
        draw.regular_polygon((x, y, 5), 5, fill=255)
    return np.asarray(panel, dtype=np.uint8)


@dataclass
class ShapesData:
    """``images`` uint8 (n, 64, 64); ``present`` bool (n, 3) per column (triangle, square, pentagon);
    ``positions`` int (n, 3, 2) with the (x, y) of each shape inside its panel, -1 where absent."""

    images: np.ndarray
    present: np.ndarray
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def composition(self) -> dict:
        """Share of images per combination, keyed like ``("square", "pentagon")``."""
        keys = [tuple(c for c, p in zip(COLUMNS, row) if p) for row in self.present]
        return {k: keys.count(k) / len(keys) for k in sorted(set(keys), key=lambda k: (len(k), k))}


def simple_shapes(n: int = 5000, rng: np.random.Generator | None = None, max_draws: int = 8000) -> ShapesData:
    """Draw images until ``n`` non-blank ones are kept (each shape present with p = 1/2, blanks dropped),
    from at most ``max_draws`` draws, as the official generator does."""
    n = check_int("n", n, 1, None)
    max_draws = check_int("max_draws", max_draws, n, None)
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator (pass np.random.default_rng(seed))")
    images = np.zeros((n, SIZE, SIZE), np.uint8)
    present = np.zeros((n, 3), bool)
    positions = np.full((n, 3, 2), -1, np.int64)
    kept = 0
    for _ in range(max_draws):
        which = rng.random(3) < 0.5
        if not which.any():
            continue
        for c, kind in enumerate(COLUMNS):
            if which[c]:
                (x_lo, x_hi), (y_lo, y_hi) = PLACEMENT[kind]
                x, y = int(rng.integers(x_lo, x_hi + 1)), int(rng.integers(y_lo, y_hi + 1))
                images[kept, :PANEL_H, c * PANEL_W:(c + 1) * PANEL_W] = draw_panel(kind, x, y)
                positions[kept, c] = (x, y)
        present[kept] = which
        kept += 1
        if kept == n:
            return ShapesData(images, present, positions)
    raise ValueError(f"only {kept} of n={n} images after max_draws={max_draws}: raise max_draws")


def to_model_space(images: np.ndarray, resolution: int = 32) -> torch.Tensor:
    """uint8 (n, 64, 64) -> float32 (n, 1, r, r) in [-1, 1]; r = 32 averages 2 x 2 blocks."""
    resolution = check_int("resolution", resolution, 32, 64)
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
    images = check_array("images", images, ndim=3, dtype=None)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 grey levels (ShapesData.images), got dtype {images.dtype}")
    if images.ndim != 3 or images.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"images must have shape (n, {SIZE}, {SIZE}), got {images.shape}")
    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    if resolution == 32:
        x = torch.nn.functional.avg_pool2d(x, 2)
    return x * 2 - 1


def _images(name: str, x) -> torch.Tensor:
    """Model-space images as a finite float tensor on the CPU (a numpy array is accepted)."""
    if isinstance(x, torch.Tensor):
        return check_tensor(name, x.detach().cpu(), min_size=1)
    return torch.as_tensor(check_array(name, x, ndim=(2, 4)), dtype=torch.float32)


def to_intensity(x: torch.Tensor) -> np.ndarray:
    """Model space (n, 1, r, r) or (n, r*r) in [-1, 1] -> intensity (n, r, r) in [0, 1], clipped."""
    x = _images("x", x).to(torch.float32)
    r = int(round(math.sqrt(x[0].numel())))
    if x.ndim not in (2, 4) or r * r != x[0].numel():
        raise ValueError(f"x must be (n, 1, r, r) or (n, r*r) images, got shape {tuple(x.shape)}")
    return ((x.reshape(-1, r, r) + 1) / 2).clamp(0, 1).numpy()


def pixel_columns(resolution: int) -> np.ndarray:
    """The panel (0, 1, 2) of each pixel column at ``resolution``: the panel its left edge lies in. At 32 x 32
    the pixel straddling panels 0 and 1 goes to panel 0 (only triangle ink reaches it: squares start at
    x >= 1); panels 1 and 2 meet on a pixel border."""
    resolution = check_int("resolution", resolution, 1, SIZE)
    if SIZE % resolution:
        raise ValueError(f"resolution must divide {SIZE}, got {resolution}")
    return np.minimum(np.arange(resolution) * (SIZE // resolution) // PANEL_W, 2)


def keep_column(x: torch.Tensor, column: int) -> torch.Tensor:
    """A copy of model-space images (n, 1, r, r) with every other column set to background (-1)."""
    check_int("column", column, 0, 2)
    x = _images("x", x)
    if x.ndim != 4:
        raise ValueError(f"x must be (n, 1, r, r), got shape {tuple(x.shape)}")
    out = x.clone()
    out[..., torch.as_tensor(pixel_columns(x.shape[-1]) != column)] = -1.0
    return out


def column_ink(x: torch.Tensor) -> np.ndarray:
    """Summed intensity of each panel (triangle, square, pentagon columns) of model-space images, shape
    (n, 3), in 64-px units (a 64-px shape counts its white pixels at either resolution). The trivial
    "how much shape is in a column" statistic that chapter 4 uses as a baseline for the detector."""
    images = to_intensity(x)
    r = images.shape[-1]
    cols = pixel_columns(r)
    return np.stack([images[:, :, cols == c].sum(axis=(1, 2)) for c in range(3)], axis=1) * (SIZE / r) ** 2


def column_regions(resolution: int) -> np.ndarray:
    """The panel of every pixel of a flattened (row-major) image, for :func:`mode_interp.detect.region_hal`."""
    return np.tile(pixel_columns(resolution), resolution)


def hand_built(*parts, resolution: int = 32, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """One image built by hand, in model space (1, 1, r, r) (:func:`to_model_space`): each part
    ``(kind, x, y)`` is drawn with :func:`draw_panel` in ``kind``'s own column of a black 64 x 64 image, and
    parts in one column are OR-ed together, so two copies of a shape can share a column (never the case in
    training) and may overlap into one merged blob. With ``noise`` > 0, ``noise`` times standard normal
    noise (a generator seeded with ``seed``) is added to every pixel."""
    noise = check_float("noise", noise, 0.0, None)
    seed = check_int("seed", seed, 0, None)
    image = np.zeros((SIZE, SIZE), np.uint8)
    for i, part in enumerate(parts):
        if not isinstance(part, (tuple, list)) or len(part) != 3:
            raise ValueError(f"parts[{i}] must be a (kind, x, y) triple, got {part!r}")
        kind, x, y = part
        c = COLUMNS.index(check_choice(f"parts[{i}] kind", kind, COLUMNS))
        image[:PANEL_H, c * PANEL_W:(c + 1) * PANEL_W] |= draw_panel(kind, x, y)
    out = to_model_space(image[None], resolution)
    if noise:
        out = out + noise * torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return out
