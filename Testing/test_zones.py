"""Kim et al.'s zone rule and severity array."""

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak import zones
from covidweak.errors import InputError


def _two_lungs_2d():
    lungs = np.zeros((120, 40), np.uint8)
    lungs[0:120, 2:18] = 1  # right lung: rows 0..119
    lungs[24:120, 22:38] = 2  # left lung starts lower: rows 24..119
    return lungs


def test_zone_lines_sit_at_5_12_and_2_3_of_each_lung_height():
    z = zones.zone_map_2d(_two_lungs_2d())
    right, left = z[:, 10], z[:, 30]
    # right: height 119 rows from 0 -> lines at 49.6 and 79.3
    assert right[49] == 1 and right[50] == 2 and right[79] == 2 and right[80] == 3
    # left: its own top (row 24), height 95 -> lines at 24+39.6 and 24+63.3
    assert left[63] == 1 and left[64] == 2 and left[87] == 2 and left[88] == 3
    assert z[0, 30] == 0 and z[5, 20] == 0


def test_severity_array_marks_zones_holding_lesions():
    lungs = _two_lungs_2d()
    z = zones.zone_map_2d(lungs)
    lesions = np.zeros_like(lungs)
    lesions[100, 5] = 1  # right lower
    lesions[30, 30] = 3  # left upper
    arr = zones.severity_array(z, lungs, lesions)
    assert arr.tolist() == [[0, 1], [0, 0], [1, 0]]
    assert zones.global_score(arr) == 2


def test_zone_map_3d_uses_physical_superior_axis_whatever_the_direction():
    lab = np.zeros((30, 8, 8), np.uint8)
    lab[:, :, :4] = 1
    lab[5:, :, 4:] = 2
    image = sitk.GetImageFromArray(lab)
    upright = zones.zone_map_3d(image)
    assert upright[29, 0, 0] == 1 and upright[0, 0, 0] == 3  # +z index is superior
    flipped = sitk.GetImageFromArray(lab[::-1].copy())
    flipped.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))  # index 0 is now the top
    # same anatomy, stored upside down: the zones must follow anatomy, not index order
    assert np.array_equal(zones.zone_map_3d(flipped)[::-1], upright)


def test_mismatched_shapes_are_refused():
    with pytest.raises(InputError, match="shape"):
        zones.severity_array(np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((4, 3)))
    with pytest.raises(InputError):
        zones.zone_map_2d(np.zeros((2, 2, 2)))


def _reference_zone_map_3d(image: sitk.Image) -> np.ndarray:
    """The rule voxel by voxel: each voxel's physical z from ITK itself, cut lines per lung."""
    labels = sitk.GetArrayFromImage(image)
    height = np.zeros(labels.shape)
    for k, j, i in np.ndindex(*labels.shape):
        height[k, j, i] = image.TransformIndexToPhysicalPoint((i, j, k))[2]
    out = np.zeros(labels.shape, np.uint8)
    for label in zones.LUNG_LABELS:
        inside = labels == label
        top, bottom = height[inside].max(), height[inside].min()
        depth = (top - height[inside]) / (top - bottom)
        out[inside] = 1 + (depth >= zones.ZONE_FRACTIONS[0]) + (depth >= zones.ZONE_FRACTIONS[1])
    return out


@pytest.mark.parametrize("direction", [
    (1, 0, 0, 0, 1, 0, 0, 0, 1),  # axial: height varies along one array axis only
    (1, 0, 0, 0, 0, 1, 0, -1, 0),  # coronal stack: height varies along the rows
    (1, 0, 0, 0, 0.8, -0.6, 0, 0.6, 0.8),  # tilted: height varies along two axes
])
def test_zone_map_3d_equals_the_voxel_by_voxel_rule(direction):
    rng = np.random.default_rng(3)
    lab = np.zeros((14, 12, 10), np.uint8)
    lab[1:13, 2:11, 1:5] = 1
    lab[3:12, 1:10, 5:9] = 2
    lab[rng.random(lab.shape) < 0.1] = 0  # holes, so the extremes are not just box corners
    image = sitk.GetImageFromArray(lab)
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetOrigin((10.0, -20.0, 300.0))
    image.SetDirection(direction)
    assert zones.superior_coordinate(image).size <= lab.size
    assert np.array_equal(zones.zone_map_3d(image), _reference_zone_map_3d(image))
