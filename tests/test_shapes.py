import numpy as np
import pytest
import torch

from mode_interp import shape_counter as sc
from mode_interp.shapes import (AREA, COLUMNS, PANEL_H, PANEL_W, PLACEMENT, draw_panel, simple_shapes,
                                to_intensity, to_model_space)


@pytest.fixture(scope="module")
def data():
    return simple_shapes(2000, np.random.default_rng(0))


@pytest.fixture(scope="module", params=[32, 64])
def fitted(request, data):
    x = to_model_space(data.images, request.param)
    return request.param, x, sc.fit_tolerances(data, x)


@pytest.mark.parametrize("kind", COLUMNS)
def test_pixel_counts_at_every_placement(kind):
    (x_lo, x_hi), (y_lo, y_hi) = PLACEMENT[kind]
    counts = {int((draw_panel(kind, x, y) == 255).sum()) for x in range(x_lo, x_hi + 1) for y in range(y_lo, y_hi + 1)}
    if kind == "square":
        assert counts == {64}
    else:                      # official assertions: triangle 65 +- 2, pentagon 70 +- 2
        target = {"triangle": 65, "pentagon": 70}[kind]
        assert all(abs(c - target) <= 2 for c in counts), counts
    assert AREA[kind] in counts


def test_panels_are_binary_and_bad_placement_is_an_error():
    assert set(np.unique(draw_panel("square", 1, 1))) == {0, 255}
    with pytest.raises(ValueError, match="x"):
        draw_panel("square", 8, 1)
    with pytest.raises(ValueError, match="kind"):
        draw_panel("circle", 1, 1)


def test_columns_confinement_and_metadata(data):
    assert data.images.shape == (2000, 64, 64) and data.images.dtype == np.uint8
    assert not data.images[:, PANEL_H:, :].any() and not data.images[:, :, 3 * PANEL_W:].any()
    for c in range(3):
        ink = data.images[:, :, c * PANEL_W:(c + 1) * PANEL_W].reshape(len(data), -1).any(axis=1)
        assert np.array_equal(ink, data.present[:, c])
        assert np.array_equal(data.positions[:, c, 0] >= 0, data.present[:, c])
    assert data.present.any(axis=1).all()                  # blanks dropped


def test_composition_frequencies(data):
    comp = data.composition()
    assert len(comp) == 7 and abs(sum(comp.values()) - 1) < 1e-12
    for share in comp.values():                            # each non-empty combination: 1/7
        assert abs(share - 1 / 7) < 4 * np.sqrt((1 / 7) * (6 / 7) / len(data))
    assert abs(data.present.mean() - 4 / 7) < 0.03


def test_seeded_and_bad_input():
    a = simple_shapes(50, np.random.default_rng(3))
    b = simple_shapes(50, np.random.default_rng(3))
    assert np.array_equal(a.images, b.images)
    with pytest.raises(ValueError, match="rng"):
        simple_shapes(10, rng=None)
    with pytest.raises(ValueError, match="max_draws"):
        simple_shapes(10, np.random.default_rng(0), max_draws=5)
    with pytest.raises(ValueError, match="resolution"):
        to_model_space(a.images, 48)


def test_downsampling_preserves_soft_area(data):
    x = to_intensity(to_model_space(data.images[:20], 32))
    assert np.allclose(x.sum(axis=(1, 2)) * 4, (data.images[:20] / 255).sum(axis=(1, 2)), rtol=1e-5)


def test_counter_reads_the_training_set_exactly(data, fitted):
    _, x, tol = fitted
    readings = sc.count_shapes(x, tol)
    assert sc.label_rates(readings)["labels"]["valid"] == len(data)
    assert all(r["counts"] == tuple(int(p) for p in row) for r, row in zip(readings, data.present))


def _image(*parts):
    """64x64 uint8 from (kind, x, y) parts; several parts in one column are overlaid."""
    img = np.zeros((64, 64), np.uint8)
    for kind, x, y in parts:
        c = COLUMNS.index(kind)
        img[:PANEL_H, c * PANEL_W:(c + 1) * PANEL_W] |= draw_panel(kind, x, y)
    return img


def _read(img, resolution, tol, noise=0.0):
    x = to_model_space(img[None], resolution)
    if noise:
        x = x + noise * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    return sc.count_shapes(x, tol)[0]


def test_counter_categories_on_hand_built_images(fitted):
    r, _, tol = fitted
    two_squares = _read(_image(("square", 3, 2), ("square", 3, 40)), r, tol)
    assert two_squares["label"] == "hallucinated" and two_squares["counts"] == (0, 2, 0)
    two_triangles = _read(_image(("triangle", 2, 0), ("triangle", 2, 40), ("pentagon", 9, 30)), r, tol)
    assert two_triangles["label"] == "hallucinated" and two_triangles["counts"] == (2, 0, 1)
    assert _read(_image(("square", 3, 10), ("pentagon", 9, 30)), r, tol)["label"] == "valid"
    merged = _read(_image(("square", 3, 10), ("square", 3, 17)), r, tol)       # touching: one blob of 128 px
    assert merged["label"] == "malformed" and merged["malformed"] == 1
    partial = _image(("square", 3, 10))
    partial[10:15] = 0                                                          # 3 of 8 rows left: 24 px
    partial[40:46, 24:31] = 255                                                 # and a 42-px fragment
    assert _read(partial, r, tol)["label"] in ("noisy", "malformed")
    assert _read(np.zeros((64, 64), np.uint8), r, tol)["label"] == "malformed"  # blank
    noisy = _read(_image(("square", 3, 10)), r, tol, noise=0.15)
    assert noisy["label"] == "noisy"


def test_counter_bad_input(data):
    with pytest.raises(ValueError, match="image"):
        sc.blobs(np.zeros((30, 30)))
    with pytest.raises(ValueError, match="x has"):
        sc.fit_tolerances(data, to_model_space(data.images[:5]))


def test_a_white_noise_field_is_noisy_not_malformed(fitted):
    r, _, tol = fitted
    field = torch.rand(1, 1, r, r, generator=torch.Generator().manual_seed(1)) * 2 - 1 + 0.8
    assert sc.count_shapes(field.clamp(-1, 1), tol)[0]["label"] == "noisy"


def test_label_rates_counts_blank_and_multiples(fitted):
    r, _, tol = fitted
    x = torch.cat([to_model_space(_image(("square", 3, 2), ("square", 3, 40))[None], r),
                   to_model_space(np.zeros((1, 64, 64), np.uint8), r)])
    rates = sc.label_rates(sc.count_shapes(x, tol))
    assert rates["labels"]["hallucinated"] == 1 and rates["two_or_more"]["square"] == 1 and rates["blank"] == 1


def test_pixel_columns_and_keep_column():
    from mode_interp.shapes import keep_column, pixel_columns
    assert list(np.bincount(pixel_columns(64))) == [21, 21, 22]
    assert list(np.bincount(pixel_columns(32))) == [11, 10, 11]
    x = to_model_space(_image(("triangle", 2, 2), ("square", 3, 20), ("pentagon", 9, 30))[None], 32)
    kept = to_intensity(keep_column(x, 1))[0]
    assert kept[:, :11].sum() == 0 and kept[:, 21:].sum() == 0
    assert np.isclose(kept.sum() * 4, 64)
    with pytest.raises(ValueError, match="column"):
        keep_column(x, 3)


def test_column_ink_counts_each_panel():
    from mode_interp.shapes import column_ink, column_regions, draw_panel, to_model_space
    img = np.zeros((2, 64, 64), np.uint8)
    img[0, :63, 21:42] = draw_panel("square", 3, 10)
    img[1, :63, 0:21] = draw_panel("triangle", 2, 2)
    img[1, :63, 42:63] = draw_panel("pentagon", 9, 30)
    for r in (32, 64):
        ink = column_ink(to_model_space(img, r))
        assert ink.shape == (2, 3)
        assert np.allclose(ink[0], [0, 64, 0], atol=1e-3)
        assert ink[1, 1] == pytest.approx(0, abs=1e-3) and ink[1, 0] > 60 and ink[1, 2] > 60
        regions = column_regions(r)
        assert regions.shape == (r * r,) and set(regions) == {0, 1, 2}
