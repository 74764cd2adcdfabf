"""Lesion table and involvement on hand-made masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.weakseg.lesions import LESION_COLUMNS, involvement, lesion_table


def _image(array, like=None):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 5.0))
    image.SetOrigin((10.0, 20.0, -100.0))
    return image


@pytest.fixture
def case():
    """Right lung x 0..9, left lung x 10..19, slices 0..11 (slice 11 most superior).
    Lesion A: 2x2x2 voxels in the right lower zone; lesion B: 1x3x4 in the left upper zone."""
    lungs = np.zeros((12, 8, 20), dtype=np.uint8)
    lungs[:, :, :10], lungs[:, :, 10:] = 1, 2
    mask = np.zeros_like(lungs)
    mask[0:2, 2:4, 3:5] = 1
    mask[10, 1:4, 12:16] = 1
    prob = np.where(mask > 0, 0.8, 0.05).astype(np.float32)
    prob[10, 2, 13] = 0.95
    hu = np.where(mask > 0, -300.0, -850.0).astype(np.float32)
    return _image(prob), _image(mask), _image(hu), _image(lungs)


def test_one_row_per_connected_lesion_with_volume_position_and_zone(case):
    prob, mask, ct, lungs = case
    rows = lesion_table(prob, mask, ct, lungs)
    assert [tuple(r) for r in rows] == [LESION_COLUMNS] * 2
    big, small = rows  # largest first: B has 12 voxels, A 8
    voxel_ml = 2 * 2 * 5 / 1000
    assert big["id"] == 1 and big["volume_ml"] == pytest.approx(12 * voxel_ml)
    assert small["volume_ml"] == pytest.approx(8 * voxel_ml)
    assert (big["lung"], big["zone"]) == ("left", "upper") and (small["lung"], small["zone"]) == ("right", "lower")
    assert big["max_probability"] == pytest.approx(0.95) and big["mean_hu"] == pytest.approx(-300.0)
    assert (big["bbox_i_min"], big["bbox_j_min"], big["bbox_k_min"]) == (12, 1, 10)
    assert (big["bbox_i_max"], big["bbox_j_max"], big["bbox_k_max"]) == (15, 3, 10)
    # LPS x = 10 + 2 i -> R = -(10 + 2 * 13.5); S = -100 + 5 * 10
    assert big["centroid_r"] == pytest.approx(-(10 + 2 * 13.5))
    assert big["centroid_a"] == pytest.approx(-(20 + 2 * 2.0))
    assert big["centroid_s"] == pytest.approx(-50.0)
    assert big["bbox_r_min"] == pytest.approx(-(10 + 2 * 15)) and big["bbox_r_max"] == pytest.approx(-(10 + 2 * 12))


def test_empty_mask_gives_no_rows(case):
    prob, mask, ct, lungs = case
    assert lesion_table(prob, _image(np.zeros((12, 8, 20), np.uint8)), ct, lungs) == []


def test_involvement_per_lung_and_zone(case):
    _, mask, _, lungs = case
    share = involvement(mask, lungs)
    voxel_ml = 2 * 2 * 5 / 1000
    assert share["total"]["lung_ml"] == pytest.approx(12 * 8 * 20 * voxel_ml)
    assert share["right"]["lesion_ml"] == pytest.approx(8 * voxel_ml)
    assert share["left"]["percent"] == pytest.approx(100 * 12 / (12 * 8 * 10), abs=1e-3)
    assert share["left_upper"]["lesion_ml"] == pytest.approx(12 * voxel_ml)
    assert share["right_lower"]["lesion_ml"] == pytest.approx(8 * voxel_ml)
    assert share["right_upper"]["lesion_ml"] == 0.0
    zones = sum(share[f"{lung}_{zone}"]["lung_ml"] for lung in ("right", "left") for zone in ("upper", "middle", "lower"))
    assert zones == pytest.approx(share["total"]["lung_ml"])
