"""read_image / read_ct / write_image on NIfTI, NRRD and MetaImage files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.errors import InputError
from covidweak.io import read_ct, read_image, write_image

FORMATS = [".nii", ".nii.gz", ".nrrd", ".mha"]


def oblique_ct() -> sitk.Image:
    """int16 HU volume, shape (z, y, x) = (18, 20, 22), anisotropic spacing and a rotated direction."""
    rng = np.random.default_rng(3)
    array = rng.integers(-1000, 400, size=(18, 20, 22), dtype=np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetOrigin((-120.5, 33.25, 410.0))
    c, s = np.cos(0.3), np.sin(0.3)
    image.SetDirection((c, 0, s, 0, 1, 0, -s, 0, c))
    return image


def assert_same_image(a: sitk.Image, b: sitk.Image, tol=1e-4):
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=tol)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))


@pytest.mark.parametrize("suffix", FORMATS)
def test_write_then_read_keeps_voxels_and_geometry(tmp_path, suffix):
    image = oblique_ct()
    path = write_image(image, tmp_path / "deep" / "folder" / f"ct{suffix}")
    assert path.exists()
    back = read_image(path)
    assert back.GetPixelID() == sitk.sitkInt16
    assert_same_image(image, back)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_read_ct_returns_float32_hu(tmp_path):
    path = write_image(oblique_ct(), tmp_path / "ct.nrrd")
    ct = read_ct(path)
    assert ct.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(oblique_ct()))


def test_read_ct_rejects_a_non_ct(tmp_path):
    mr = sitk.GetImageFromArray(np.random.default_rng(0).uniform(0, 900, (20, 20, 20)).astype(np.float32))
    with pytest.raises(InputError, match="looks like MR"):
        read_ct(write_image(mr, tmp_path / "mr.nii.gz"))


def test_write_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "ct.nii.gz"
    path.write_bytes(b"user data")
    with pytest.raises(InputError, match="already exists"):
        write_image(oblique_ct(), path)
    assert path.read_bytes() == b"user data"
    write_image(oblique_ct(), path, overwrite=True)
    assert read_image(path).GetSize() == (22, 20, 18)


def test_write_refuses_unknown_format(tmp_path):
    with pytest.raises(InputError, match="cannot write '.png'"):
        write_image(oblique_ct(), tmp_path / "ct.png")


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        read_image(tmp_path / "nothere.nii.gz")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "scan.jpg"
    path.write_bytes(b"\xff\xd8")
    with pytest.raises(InputError, match=r"unsupported file type '.jpg'.*DICOM series folder"):
        read_image(path)


def test_single_dicom_file_points_to_the_folder(tmp_path):
    path = tmp_path / "slice.dcm"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match="give the folder"):
        read_image(path)


@pytest.mark.parametrize("suffix", FORMATS)
def test_garbage_bytes_are_reported_in_one_line(tmp_path, suffix):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(b"not an image at all " * 40)
    with pytest.raises(InputError, match="re-export the file") as info:
        read_image(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("compress", [True, False])
def test_truncated_file_is_reported(tmp_path, suffix, compress):
    whole = tmp_path / f"whole{suffix}"
    sitk.WriteImage(oblique_ct(), str(whole), useCompression=compress)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="truncated") as info:
        read_image(cut)
    assert "\n" not in str(info.value)


def test_nifti_with_trailing_gzip_member_is_still_read(tmp_path):
    # A concatenated gzip member defeats the trailer shortcut; the full check must still accept it.
    path = write_image(oblique_ct(), tmp_path / "ct.nii.gz")
    with open(path, "ab") as stream:
        stream.write(gzip.compress(b"\0" * 16))
    assert_same_image(oblique_ct(), read_image(path))


def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="holds no DICOM series"):
        read_image(tmp_path)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_nan_voxels_in_a_file_are_reported_not_zeroed(tmp_path, suffix):
    # ITK reads NaN in NIfTI as 0; the reader must catch it before that happens.
    volume = np.full((20, 20, 20), -1000.0, np.float32)
    volume[5:15, 5:15, 5:15] = 40.0
    volume[10, 10, 10] = np.nan
    path = tmp_path / f"nan{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(path))
    with pytest.raises(InputError, match="NaN"):
        read_ct(path)
