"""Where images sit in a network's feature space (paper appendix: t-SNE of the U-Net bottleneck).

The paper shows "two squares" images lying *between* the "one square on top" and "one square at the
bottom" clusters. Two measurements make that quantitative without t-SNE's distortions:

    lambda(f) = <f - c_a, c_b - c_a> / ||c_b - c_a||^2       position along the segment c_a -> c_b
    d(f)      = || f - c_a - lambda(f) (c_b - c_a) || / ||c_b - c_a||   distance off that line

with c_a, c_b the centroids of the two reference groups: lambda = 0 and 1 at the centroids, lambda in
(0, 1) between them. :func:`pca_2d` gives the 2-D picture.
"""

from __future__ import annotations

import torch

from ._validate import check_array


def _as_2d(name: str, x, min_rows: int = 1) -> torch.Tensor:
    """A finite real (n, d) array (tensor, numpy or nested lists), n >= ``min_rows``, as float64."""
    return torch.as_tensor(check_array(name, x, ndim=2, min_len=min_rows))


def segment_coordinates(f, group_a, group_b) -> tuple:
    """(lambda, d) of each row of ``f`` relative to the centroids of ``group_a`` and ``group_b`` (above)."""
    f, a, b = _as_2d("f", f), _as_2d("group_a", group_a), _as_2d("group_b", group_b)
    if not f.shape[1] == a.shape[1] == b.shape[1]:
        raise ValueError("f, group_a and group_b must have the same number of columns")
    c_a, c_b = a.mean(0), b.mean(0)
    v = c_b - c_a
    norm2 = float(v @ v)
    if norm2 == 0:
        raise ValueError("group_a and group_b have the same centroid")
    lam = (f - c_a) @ v / norm2
    off = (f - c_a) - lam[:, None] * v
    return lam, off.norm(dim=1) / norm2 ** 0.5


def pca_2d(x, *others) -> list:
    """Project ``x`` and each of ``others`` on the first two principal axes of ``x``: a list of (n, 2)."""
    x = _as_2d("x", x, min_rows=2)
    if x.shape[1] < 2:
        raise ValueError(f"x must have at least 2 columns to project on two axes, got {x.shape[1]}")
    mean = x.mean(0)
    _, _, v = torch.linalg.svd(x - mean, full_matrices=False)
    return [((_as_2d("others", y) if i else y) - mean) @ v[:2].T for i, y in enumerate((x, *others))]
