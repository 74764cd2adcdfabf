"""The lung-box input geometry: placement, hand-computed samples, and the round trip onto the CT grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.errors import InputError
from covidweak.lungs.geometry import from_canonical, to_canonical
from covidweak.preprocess import HU_WINDOW
from covidweak.preprocess.lungbox import (
    BOX_MARGIN_PX,
    BOX_SHAPE,
    CANONICAL_SPACING_MM,
    OUTSIDE_LUNG,
    box_stacks,
    fit_lung_box,
    from_box,
    to_box,
)


def ellipse_lungs(shape_zyx, spacing_yx, half_mm=(80.0, 120.0)) -> np.ndarray:
    """(Z, Y, X) uint8: an elliptic "both lungs" region of the given half-axes (mm) at the slice centre."""
    z, y, x = shape_zyx
    yy = (np.arange(y) - (y - 1) / 2) * spacing_yx[0]
    xx = (np.arange(x) - (x - 1) / 2) * spacing_yx[1]
    inside = (yy[:, None] / half_mm[0]) ** 2 + (xx[None, :] / half_mm[1]) ** 2 <= 1
    lungs = np.zeros(shape_zyx, np.uint8)
    lungs[1:-1] = inside
    return lungs


def test_box_at_canonical_spacing_is_a_plain_crop():
    lungs = ellipse_lungs((5, 256, 256), (1.4, 1.4))
    box = fit_lung_box(lungs, (1.4, 1.4))
    assert box.spacing == CANONICAL_SPACING_MM and box.shape == BOX_SHAPE
    assert all(float(o).is_integer() for o in box.origin)
    ct = np.random.default_rng(0).normal(size=(5, 256, 256)).astype(np.float32)
    cut = to_box(ct, box)
    y0, x0 = (int(o) for o in box.origin)
    h, w = BOX_SHAPE
    assert 0 <= y0 and y0 + h <= 256 and 0 <= x0 and x0 + w <= 256  # this box lies inside the CT
    # Box pixel (i, j) is CT pixel (y0 + i, x0 + j).
    np.testing.assert_array_equal(cut, ct[:, y0:y0 + h, x0:x0 + w])
    back = from_box(cut, box, fill=np.nan)
    covered = ~np.isnan(back)
    np.testing.assert_array_equal(back[covered], ct[covered])  # bit for bit where the box lies
    assert covered[lungs > 0].all()


def test_box_is_centred_on_the_lungs_with_the_margin():
    lungs = np.zeros((3, 300, 300), np.uint8)
    lungs[1, 100:180, 40:260] = 1  # 80 x 220 pixels at 1.4 mm: fits
    box = fit_lung_box(lungs, (1.4, 1.4))
    rows, cols = box.box_centres(0), box.box_centres(1)
    assert rows[0] <= 100 - BOX_MARGIN_PX and rows[-1] >= 179 + BOX_MARGIN_PX
    assert cols[0] <= 40 - BOX_MARGIN_PX and cols[-1] >= 259 + BOX_MARGIN_PX
    assert abs((rows[0] + rows[-1]) / 2 - 139.5) <= 0.5 and abs((cols[0] + cols[-1]) / 2 - 149.5) <= 0.5


def test_lungs_too_large_for_the_box_get_a_coarser_spacing_not_a_cut():
    # 400 mm across at 1 mm: more than 224 * 1.4 = 314 mm.
    lungs = ellipse_lungs((3, 300, 420), (1.0, 1.0), half_mm=(100.0, 200.0))
    box = fit_lung_box(lungs, (1.0, 1.0))
    assert box.spacing > CANONICAL_SPACING_MM
    z, rows, cols = np.nonzero(lungs)
    for axis, where in ((0, rows), (1, cols)):  # every lung pixel lies inside the box, none is cut
        position = box.ct_centres(axis)[where]
        assert position.min() >= BOX_MARGIN_PX - 1 and position.max() <= box.shape[axis] - BOX_MARGIN_PX


def test_hand_computed_samples_when_halving_a_07mm_ct():
    # One row 0..7 at 0.7 mm; the 1.4 mm box samples every second pixel with a [0.25, 0.5, 0.25] filter.
    lungs = np.zeros((1, 8, 8), np.uint8)
    lungs[0, 2:6, 2:6] = 1
    box = fit_lung_box(lungs, (0.7, 0.7), shape=(12, 12))
    assert box.step(0) == pytest.approx(2.0)
    ramp = np.tile(np.arange(8, dtype=np.float32), (8, 1))[None]
    cut = to_box(ramp, box, fill=-1.0)
    cols = box.box_centres(1)
    for j, c in enumerate(cols):
        if 0.5 <= c <= 6.5:  # filter fully inside the row: a linear ramp is reproduced exactly
            assert cut[0, 6, j] == pytest.approx(c, abs=1e-5)
        elif c < -0.5 or c > 7.5:
            assert cut[0, 6, j] == -1.0


@pytest.mark.parametrize("size, spacing", [(64, (2.8, 2.8)), (160, (1.4, 1.4)), (224, (1.6, 1.2)), (512, (0.7, 0.7))])
def test_linear_fields_and_masks_come_back_on_the_ct_grid(size, spacing):
    lungs = ellipse_lungs((3, size, size), spacing, half_mm=(0.25 * size * spacing[0], 0.3 * size * spacing[1]))
    box = fit_lung_box(lungs, spacing)
    assert box.spacing == CANONICAL_SPACING_MM
    yy, xx = np.meshgrid(np.arange(size) * spacing[0], np.arange(size) * spacing[1], indexing="ij")
    field = np.broadcast_to((0.5 * yy - 0.25 * xx + 3.0).astype(np.float32), (3, size, size))
    back = from_box(to_box(field, box), box, fill=np.nan)
    interior = np.zeros_like(lungs, bool)
    interior[:, 3:-3, 3:-3] = True  # the anti-aliasing filter is truncated at the CT's own edge
    check = (lungs > 0) & interior
    # Exact up to float32 sums at whole-number ratios and when upsampling; at 1.2 -> 1.4 mm the
    # widened tent filter sampled at whole pixels shifts a ramp by under 0.2 mm (0.1 in field units).
    exact = all(abs(1.4 / s - round(1.4 / s)) < 1e-9 or s >= 1.4 for s in spacing)
    np.testing.assert_allclose(back[check], field[check], rtol=1e-4, atol=1e-3 if exact else 0.1)
    mask_back = from_box(to_box(lungs, box, order=0), box, order=0)
    assert mask_back.shape == lungs.shape and mask_back.dtype == lungs.dtype
    agree = (mask_back == lungs).mean()
    assert agree > 0.99


def test_round_trip_through_a_non_lps_anisotropic_image_keeps_the_exact_grid():
    array = ellipse_lungs((6, 96, 128), (1.4, 1.4), half_mm=(50.0, 70.0))
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.4, 1.4, 3.0))
    image.SetOrigin((12.5, -40.0, 7.0))
    image.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, -1))  # RPI: not LPS
    canon = to_canonical(image)
    lungs = sitk.GetArrayFromImage(canon)
    sx, sy, _ = canon.GetSpacing()
    box = fit_lung_box(lungs, (sy, sx))
    back = sitk.GetImageFromArray(from_box(to_box(lungs, box, order=0), box, order=0))
    back.CopyInformation(canon)
    out = from_canonical(back, image)
    assert out.GetSize() == image.GetSize() and out.GetDirection() == image.GetDirection()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), array)


def test_box_stacks_window_mask_and_neighbours():
    hu = np.full((4, 160, 160), -800.0, np.float32)
    hu[:, :, :] += np.arange(4, dtype=np.float32)[:, None, None] * 100  # slice k: -800 + 100 k
    lungs = ellipse_lungs((4, 160, 160), (1.4, 1.4), half_mm=(60.0, 80.0))
    lungs[:] = lungs[1]  # every slice has lung
    box = fit_lung_box(lungs, (1.4, 1.4))
    x = box_stacks(hu, lungs, box, [0, 2])
    assert x.shape == (2, 3) + BOX_SHAPE and x.dtype == np.float32
    inside = to_box(lungs[0], box, order=0) > 0
    low, high = HU_WINDOW
    unit = lambda v: (v - low) / (high - low)  # noqa: E731
    # Stack around slice 0 repeats slice 0 (edge), then slices 0, 1; around 2: slices 1, 2, 3.
    for stack, slices in zip(x, ([0, 0, 1], [1, 2, 3])):
        for channel, k in zip(stack, slices):
            assert channel[inside] == pytest.approx(unit(-800 + 100 * k), abs=1e-6)
            assert (channel[~inside] == OUTSIDE_LUNG).all()


def test_bad_inputs_are_refused_in_one_line():
    with pytest.raises(InputError, match="empty"):
        fit_lung_box(np.zeros((2, 32, 32)), (1.0, 1.0))
    box = fit_lung_box(ellipse_lungs((3, 64, 64), (1.4, 1.4), (20.0, 30.0)), (1.4, 1.4))
    with pytest.raises(InputError, match="do not match"):
        to_box(np.zeros((2, 32, 32)), box)
    with pytest.raises(InputError, match="lung box grid"):
        from_box(np.zeros((2, 32, 32)), box)


def test_describe_input_names_the_geometry_a_network_reads():
    from covidweak.weakseg.prepare import describe_input

    assert describe_input({"geometry": "lung_box", "box_shape": [160, 224]}) == "lung box 160x224 at 1.4 mm"
    assert describe_input({"input_size": 128}) == "whole slice 128x128"
