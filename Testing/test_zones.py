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
