"""Paper-specified preprocessing: shapes, dtypes, ranges and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from covidweak.errors import InputError
from covidweak.preprocess import (
    DUCN_SIZE,
    HU_WINDOW,
    KIM_SIZE,
    MSEAM_SIZE,
    drop_end_slices,
    ducn_channels,
    end_slice_range,
    find_sliding_window,
    hu_window,
    intrapulmonary_distance,
    remap_labels,
    resize_slices,
    slice_stacks,
    sliding_window_normalize,
    sliding_window_normalize_slices,
    window_to_unit,
)


# --- fixed HU window -------------------------------------------------------

def test_hu_window_maps_ends_and_midpoint():
    low, high = HU_WINDOW
    image = np.array([[low - 500, low], [(low + high) / 2, high + 300]], dtype=np.int16)
    out = hu_window(image)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.5, 1.0]], atol=1e-6)


def test_window_rejects_empty_window():
    with pytest.raises(InputError, match="empty"):
        window_to_unit(np.zeros(3), 10, 10)


# --- Hu et al. W_{Q,S} ------------------------------------------------------

def test_sliding_window_picks_densest_range_by_hand():
    # 3 voxels near -1000, 6 voxels in [0, 20], 1 at 500.
    values = np.array([-1000, -995, -990, 0, 5, 10, 12, 15, 20, 500], dtype=np.float32)
    # Q=100, S=50: windows start at -1000, -950, ..., 500. [-1000, -900) holds 3 voxels;
    # every window containing [0, 20] starts at -50 or 0 and holds 6; the lowest wins.
    assert find_sliding_window(values, q=100, s=50) == (-50.0, 50.0)
    # Q=600: [-1000, -400) holds 3; [-50, 550) holds all six plus 500 -> 7, first reached at -50.
    assert find_sliding_window(values, q=600, s=50) == (-50.0, 550.0)


def test_sliding_window_normalize_range_and_scaling():
    values = np.array([[-1000, 0], [20, 100]], dtype=np.float32)
    out = sliding_window_normalize(values, q=100, s=50)  # window (-50, 50): 0, 20 inside
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.5], [0.7, 1.0]], atol=1e-6)


def test_sliding_window_per_slice_uses_each_slice_window():
    volume = np.stack([np.full((4, 4), -800.0), np.full((4, 4), 300.0)])
    volume[0, 0, 0] = -700.0
    out = sliding_window_normalize_slices(volume, q=200, s=50)
    assert out.shape == volume.shape and out.dtype == np.float32
    # slice 0: window starts at its minimum -800 -> -800 maps to 0, -700 to 0.5
    assert out[0, 1, 1] == pytest.approx(0.0) and out[0, 0, 0] == pytest.approx(0.5)
    assert np.all(out[1] == pytest.approx(0.0))


def test_sliding_window_requires_q_multiple_of_s():
    with pytest.raises(InputError, match="multiple"):
        find_sliding_window(np.arange(10.0), q=100, s=30)


# --- resizing ---------------------------------------------------------------

@pytest.mark.parametrize("size", [MSEAM_SIZE, DUCN_SIZE, KIM_SIZE])
def test_resize_image_stack_shape_dtype(size):
    stack = np.random.default_rng(0).uniform(0, 1, (3, 64, 80)).astype(np.float32)
    out = resize_slices(stack, size, order=1)
    assert out.shape == (3, size, size) and out.dtype == np.float32
    assert out.min() >= 0.0 - 1e-6 and out.max() <= 1.0 + 1e-6


def test_resize_mask_nearest_keeps_labels_and_dtype():
    mask = np.zeros((2, 4, 4), dtype=np.uint8)
    mask[:, :2, :2] = 1
    mask[:, 2:, 2:] = 2
    out = resize_slices(mask, 8, order=0)
    assert out.dtype == np.uint8 and out.shape == (2, 8, 8)
    assert set(np.unique(out)) == {0, 1, 2}
    # Each source pixel becomes an exact 2x2 block when doubling.
    np.testing.assert_array_equal(out[0], np.kron(mask[0], np.ones((2, 2), dtype=np.uint8)))


def test_resize_single_slice_and_rectangular_size():
    out = resize_slices(np.ones((10, 10)), (6, 12), order=3)
    assert out.shape == (6, 12)
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_resize_rejects_bad_order():
    with pytest.raises(InputError, match="order"):
        resize_slices(np.ones((4, 4)), 8, order=2)


# --- 2.5-D stacks -------------------------------------------------------------

def test_slice_stacks_neighbours_and_edges():
    volume = np.arange(4, dtype=np.int16)[:, None, None] * np.ones((1, 2, 3), dtype=np.int16)
    stacks = slice_stacks(volume)
    assert stacks.shape == (4, 3, 2, 3) and stacks.dtype == np.int16
    np.testing.assert_array_equal(stacks[:, :, 0, 0], [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]])


def test_slice_stacks_single_slice_repeats_itself():
    stacks = slice_stacks(np.full((1, 2, 2), 7.0))
    assert stacks.shape == (1, 3, 2, 2) and np.all(stacks == 7.0)


# --- Wu et al. end slices --------------------------------------------------------

def test_end_slice_range_drops_only_dark_ends():
    means = [0.0, 0.05, 0.2, 0.01, 0.3, 0.079, 0.0]
    volume = np.stack([np.full((3, 3), m, dtype=np.float32) for m in means])
    assert end_slice_range(volume) == (2, 5)
    kept = drop_end_slices(volume)
    assert kept.shape == (3, 3, 3)
    assert kept[1, 0, 0] == pytest.approx(0.01)  # dark interior slice stays


def test_end_slice_range_with_lung_mask_crops_and_masks():
    volume = np.full((4, 10, 10), 0.9, dtype=np.float32)  # bright body everywhere
    lungs = np.zeros((4, 10, 10), dtype=np.uint8)
    lungs[1:3, 2:6, 2:7] = 1  # lungs on slices 1-2, box 4 x 5 pixels
    lungs[3, 2, 2] = 1  # a single lung pixel on slice 3: mean 0.9 / 20 = 0.045 < 0.08
    volume[1:3, 2:6, 2:7] = 0.2
    assert end_slice_range(volume) == (0, 4)  # unmasked, the body keeps every slice
    assert end_slice_range(volume, lung_mask=lungs) == (1, 3)
    assert drop_end_slices(volume, lung_mask=lungs).shape == (2, 10, 10)


def test_end_slice_range_threshold_is_inclusive():
    volume = np.full((2, 2, 2), 0.08, dtype=np.float32)
    assert end_slice_range(volume) == (0, 2)


def test_end_slice_range_rejects_hu_input_and_empty_lungs():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        end_slice_range(np.full((2, 2, 2), -1000.0))
    with pytest.raises(InputError, match="lung mask"):
        end_slice_range(np.zeros((2, 2, 2)))


# --- DuCN distance map and channels --------------------------------------------------

def test_distance_known_pixels_square_lung():
    mask = np.zeros((7, 7), dtype=np.uint8)
    mask[1:6, 1:6] = 1  # 5x5 lung; centre (3, 3) is 3 pixels from the nearest background
    dist = intrapulmonary_distance(mask)
    assert dist.dtype == np.float32 and dist.shape == (7, 7)
    assert dist[3, 3] == pytest.approx(1.0)
    assert dist[1, 3] == pytest.approx(1.0 / 3.0)
    assert dist[0, 0] == 0.0 and np.all(dist[mask == 0] == 0)


def test_distance_uses_spacing():
    mask = np.zeros((5, 9), dtype=np.uint8)
    mask[1:4, 1:8] = 1
    # With 1 mm rows and 0.25 mm columns, the nearest boundary of (2, 4) is along x: 4 px * 0.25 = 1 mm,
    # while the pixel (2, 1) next to the left edge is 0.25 mm away.
    dist = intrapulmonary_distance(mask, spacing=(1.0, 0.25))
    assert dist[2, 1] / dist[2, 4] == pytest.approx(0.25)


def test_distance_per_slice_normalisation_and_lungs_measured_apart():
    mask = np.zeros((2, 5, 8), dtype=np.uint8)
    mask[0, 1:4, 1:4] = 1
    mask[0, 1:4, 4:7] = 2  # touching lungs: their shared border counts as boundary
    dist = intrapulmonary_distance(mask, spacing=(5.0, 1.0, 1.0))
    assert dist.shape == (2, 5, 8)
    assert dist[0].max() == pytest.approx(1.0) and np.all(dist[1] == 0)
    assert dist[0, 2, 2] == pytest.approx(1.0) and dist[0, 2, 3] == pytest.approx(0.5)


def test_distance_volume_mode_scales_over_volume():
    mask = np.zeros((3, 5, 5), dtype=np.uint8)
    mask[:, 1:4, 1:4] = 1
    dist = intrapulmonary_distance(mask, per_slice=False)
    assert dist.max() == pytest.approx(1.0) and dist[1, 2, 2] == pytest.approx(1.0)
    assert dist[0, 2, 2] == pytest.approx(0.5)  # the end slices are 1 voxel from outside along z


def test_distance_rejects_mismatched_spacing():
    with pytest.raises(InputError, match="spacing"):
        intrapulmonary_distance(np.ones((3, 3)), spacing=(1.0, 1.0, 1.0))


def test_ducn_channels_layout():
    raw = np.full((2, 4, 4), 0.5, dtype=np.float32)
    mask = np.zeros((2, 4, 4), dtype=np.uint8)
    mask[:, 1:3, 1:3] = 1
    dist = intrapulmonary_distance(mask)
    channels = ducn_channels(raw, mask, dist)
    assert channels.shape == (2, 3, 4, 4) and channels.dtype == np.float32
    np.testing.assert_array_equal(channels[:, 0], raw)
    assert channels[0, 1, 0, 0] == 0 and channels[0, 1, 1, 1] == 0.5
    np.testing.assert_array_equal(channels[:, 2], dist)
    assert ducn_channels(raw[0], mask[0], dist[0]).shape == (3, 4, 4)


def test_remap_labels_swaps_simultaneously():
    mask = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    out = remap_labels(mask, {1: 2, 2: 1})
    np.testing.assert_array_equal(out, [[0, 2], [1, 3]])
    assert out.dtype == np.uint8 and mask[0, 1] == 1  # input untouched


def test_remap_labels_accepts_whole_floats_rejects_images():
    np.testing.assert_array_equal(remap_labels(np.array([1.0, 2.0]), {1: 2, 2: 1}), [2.0, 1.0])
    with pytest.raises(InputError, match="non-integer"):
        remap_labels(np.array([0.5, 1.0]), {1: 2})
