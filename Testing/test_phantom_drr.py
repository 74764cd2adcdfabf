"""The radiograph's visibility rule (phantom/drr.py): hand-computed thickness and Rose areas."""

import numpy as np

from covidweak.phantom.drr import VISIBLE_AREA_MM2, VISIBLE_THICKNESS_MM, lesion_thickness, visible_opacity


def test_thickness_is_the_extra_water_equivalent_path_along_each_ray():
    healthy = np.full((2, 10, 3), -1000.0, np.float32)  # air: attenuation 0
    lesioned = healthy.copy()
    lesioned[0, 2:6, 1] = 0.0  # 4 voxels of water on one ray
    thickness = lesion_thickness(healthy, lesioned, spacing=(2.0, 1.5, 2.0))  # square pixels: rows == slices
    assert thickness.shape == (2, 3)
    # row 0 is the superior slice (the last z index); the water sits in z = 0, the bottom row
    assert np.isclose(thickness[1, 1], 4 * 1.5) and np.count_nonzero(thickness) == 1


def test_an_opacity_is_visible_only_when_thick_and_large_enough():
    pixel = 1.0
    side = int(np.ceil(np.sqrt(VISIBLE_AREA_MM2)))
    thickness = np.zeros((40, 40), np.float32)
    thickness[2:2 + side, 2:2 + side] = VISIBLE_THICKNESS_MM  # large and just thick enough: seen
    thickness[25:28, 25:28] = 10 * VISIBLE_THICKNESS_MM  # dense but 9 mm^2: lost in the texture
    thickness[25:25 + side, 5:5 + side] = 0.9 * VISIBLE_THICKNESS_MM  # large but too thin
    seen = visible_opacity(thickness, pixel)
    assert seen[2:2 + side, 2:2 + side].all()
    assert np.count_nonzero(seen) == side * side
    assert not visible_opacity(np.zeros((5, 5)), pixel).any()
