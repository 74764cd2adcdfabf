"""check_ct / check_cxr turn wrong kinds of images into one-line InputErrors."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.errors import InputError
from covidweak.validate import check_ct, check_cxr


def ct_like(shape=(20, 24, 28), spacing=(0.8, 0.8, 2.5)) -> sitk.Image:
    """Air around a soft-tissue block with an air-filled 'lung' inside: shape (z, y, x)."""
    array = np.full(shape, -1000.0, dtype=np.float32)
    array[2:-2, 4:-4, 4:-4] = 40.0
    array[4:-4, 8:-8, 8:-8] = -850.0
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    return image


def test_plausible_ct_passes():
    check_ct(ct_like())
    check_ct(sitk.Cast(ct_like(), sitk.sitkInt16))


def test_two_d_image_is_refused_with_fix():
    with pytest.raises(InputError, match=r"3-D CT volume but got a 2-D image of size 64x64.*not a single slice"):
        check_ct(sitk.Image(64, 64, sitk.sitkInt16))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_are_refused(bad):
    array = sitk.GetArrayFromImage(ct_like())
    array[5, 5, 5] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        check_ct(sitk.GetImageFromArray(array))


def test_all_air_volume_is_refused():
    image = sitk.GetImageFromArray(np.full((20, 20, 20), -1000, np.int16))
    with pytest.raises(InputError, match="only air, no body"):
        check_ct(image)


def test_mr_like_range_is_refused():
    array = np.random.default_rng(0).uniform(0, 1200, (20, 20, 20)).astype(np.float32)
    with pytest.raises(InputError, match=r"intensities range 0.*looks like MR or a non-HU image"):
        check_ct(sitk.GetImageFromArray(array))


def test_ct_without_rescale_applied_is_refused():
    # Raw stored values (HU + 1024) have no negative numbers at all.
    raw = sitk.Cast(ct_like(), sitk.sitkInt16) + 1024
    with pytest.raises(InputError, match="Hounsfield"):
        check_ct(raw)


def test_absurd_spacing_is_refused():
    with pytest.raises(InputError, match=r"spacing \(0.8, 0.8, 25\) mm is not plausible"):
        check_ct(ct_like(spacing=(0.8, 0.8, 25.0)))


def test_too_few_slices_is_refused():
    with pytest.raises(InputError, match="too small to be a chest CT"):
        check_ct(ct_like(shape=(5, 24, 28)))


def test_colour_image_is_refused():
    image = sitk.Image([20, 20, 20], sitk.sitkVectorFloat32, 3)
    with pytest.raises(InputError, match="3 channels"):
        check_ct(image)


def test_check_ct_does_not_copy_a_full_size_ct():
    array = np.full((600, 512, 512), -1000, np.int16)
    array[100:500, 100:400, 100:400] = 40
    image = sitk.GetImageFromArray(array)
    del array
    tracemalloc.start()  # numpy reports its buffers to tracemalloc, so a copy of the voxels would show here
    try:
        check_ct(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 600 * 512 * 512 * 2 / 100, f"check_ct allocated {peak} bytes for a 300 MB CT"


def test_radiograph_checks():
    rng = np.random.default_rng(1)
    flat = rng.uniform(0, 4095, (256, 200)).astype(np.float32)
    check_cxr(sitk.GetImageFromArray(flat))
    check_cxr(sitk.GetImageFromArray(flat[None]))  # one-slice 3-D, as DICOM radiographs read
    with pytest.raises(InputError, match="not a CT volume"):
        check_cxr(ct_like())
    flat[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        check_cxr(sitk.GetImageFromArray(flat))
    with pytest.raises(InputError, match="blank"):
        check_cxr(sitk.GetImageFromArray(np.full((64, 64), 7, np.uint16)))
    with pytest.raises(InputError, match="too small"):
        check_cxr(sitk.GetImageFromArray(np.arange(100, dtype=np.float32).reshape(10, 10)))
