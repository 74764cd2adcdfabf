"""DICOM series folders: sorting by position, rescale, series choice and inconsistent series."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from covidweak.errors import InputError
from covidweak.io import read_ct, read_image

SHAPE = (20, 24, 16)  # (z, y, x)


def hu_volume() -> np.ndarray:
    """Integer HU values, shape (z, y, x), with a distinct value per slice so order errors show."""
    rng = np.random.default_rng(5)
    hu = rng.integers(-1000, 600, size=SHAPE).astype(np.float64)
    hu[:, 0, 0] = np.arange(SHAPE[0]) * 10 - 900
    return hu


def write_series(
    folder,
    hu: np.ndarray,
    *,
    slope=1.0,
    intercept=-1024.0,
    spacing=(0.75, 0.6, 2.0),
    origin=(-90.0, 40.0, 100.0),
    angle=0.35,
    series_uid=None,
    skip=(),
    overrides=None,
):
    """Write ``hu`` (z, y, x) as a CT series, one file per slice under shuffled names.

    The slice axes are rotated by ``angle`` about the patient y axis (oblique).
    ``overrides``: {slice index: {attribute: value or None to delete}} to corrupt single headers.
    Returns (series uid, IJK->LPS direction matrix 3x3).
    """
    folder.mkdir(parents=True, exist_ok=True)
    c, s = np.cos(angle), np.sin(angle)
    direction = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    stored = np.round((hu - intercept) / slope).astype(np.int16)
    names = [f"IMG{n:04d}.dcm" for n in range(len(hu))]
    random.Random(len(hu)).shuffle(names)
    for k in range(len(hu)):
        if k in skip:
            continue
        position = np.asarray(origin) + direction @ np.array([0.0, 0.0, k * spacing[2]])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.PatientID = "PHANTOM"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        # Instance numbers run backwards so that neither they nor file names give the order.
        ds.InstanceNumber = len(hu) - k
        ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [spacing[1], spacing[0]]  # row spacing (y), column spacing (x)
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[2]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept = f"{intercept:g}"
        ds.RescaleSlope = f"{slope:g}"
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        for key, value in (overrides or {}).get(k, {}).items():
            if value is None:
                delattr(ds, key)
            else:
                setattr(ds, key, value)
        ds.save_as(folder / names[k], enforce_file_format=True)
    return series_uid, direction


@pytest.mark.parametrize("slope", [1.0, 0.5])
def test_series_is_sorted_by_position_and_rescaled(tmp_path, slope):
    hu = hu_volume()
    if slope == 0.5:
        hu = np.round(hu * 2) / 2 + 0.5  # half-HU steps only representable with slope 0.5
    _, direction = write_series(tmp_path, hu, slope=slope)
    ct = read_ct(tmp_path)
    assert ct.GetPixelID() == sitk.sitkFloat32
    assert ct.GetSize() == (SHAPE[2], SHAPE[1], SHAPE[0])
    np.testing.assert_allclose(sitk.GetArrayFromImage(ct), hu, atol=1e-4)
    np.testing.assert_allclose(ct.GetSpacing(), (0.75, 0.6, 2.0), atol=1e-5)
    np.testing.assert_allclose(np.reshape(ct.GetDirection(), (3, 3)), direction, atol=1e-5)
    np.testing.assert_allclose(ct.GetOrigin(), (-90.0, 40.0, 100.0), atol=1e-3)


def test_read_image_keeps_an_integer_type_for_integer_rescale(tmp_path):
    write_series(tmp_path, hu_volume())
    image = read_image(tmp_path)
    assert image.GetPixelID() in (sitk.sitkInt16, sitk.sitkInt32)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), hu_volume())


def test_per_slice_rescale_is_applied_to_each_slice(tmp_path):
    hu = hu_volume()
    hu[1::2] = np.round(hu[1::2] * 2) / 2 + 0.5  # odd slices need slope 0.5
    halves = {k: {"RescaleSlope": "0.5"} for k in range(1, SHAPE[0], 2)}
    stored_twice = {k: {"PixelData": np.round((hu[k] + 1024) * 2).astype(np.int16).tobytes()} for k in halves}
    write_series(tmp_path, hu, overrides={k: halves[k] | stored_twice[k] for k in halves})
    image = read_image(tmp_path)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), hu, atol=1e-4)


def test_longest_series_is_chosen_with_a_warning(tmp_path):
    hu = hu_volume()
    long_uid, _ = write_series(tmp_path / "mixed", hu)
    short = np.full((6, SHAPE[1], SHAPE[2]), 55.0)
    write_series(tmp_path / "scout", short, spacing=(0.75, 0.6, 5.0))
    for path in (tmp_path / "scout").iterdir():
        path.rename(tmp_path / "mixed" / f"scout_{path.name}")
    with pytest.warns(UserWarning, match=f"2 DICOM series; reading {long_uid} \\(20 files\\)"):
        ct = read_ct(tmp_path / "mixed")
    np.testing.assert_allclose(sitk.GetArrayFromImage(ct), hu)


def test_single_series_reads_without_warning(tmp_path):
    write_series(tmp_path, hu_volume())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_ct(tmp_path)


def test_missing_slice_is_an_error(tmp_path):
    write_series(tmp_path, hu_volume(), skip=(7,))
    with pytest.raises(InputError, match=r"missing slices \(about 1 missing"):
        read_image(tmp_path)


def test_non_uniform_spacing_is_an_error(tmp_path):
    moved = {3: {"ImagePositionPatient": ["-90", "40", "106.6"]}}  # 0.6 mm off its 2 mm grid
    write_series(tmp_path, hu_volume(), angle=0.0, overrides=moved)
    with pytest.raises(InputError, match="non-uniform slice spacing"):
        read_image(tmp_path)


def test_mixed_orientation_is_an_error(tmp_path):
    tilted = {5: {"ImageOrientationPatient": ["1", "0", "0", "0", "0.8", "0.6"]}}
    write_series(tmp_path, hu_volume(), angle=0.0, overrides=tilted)
    with pytest.raises(InputError, match="mixes slice orientations"):
        read_image(tmp_path)


def test_mixed_size_is_an_error(tmp_path):
    uid, _ = write_series(tmp_path, hu_volume())
    small = np.zeros((1, 12, 16))
    write_series(tmp_path / "x", small, series_uid=uid, origin=(-90.0, 40.0, 160.0))
    for path in (tmp_path / "x").iterdir():
        path.rename(tmp_path / "small.dcm")
    with pytest.raises(InputError, match=r"mixes slice sizes \(24x16 vs 12x16\)"):
        read_image(tmp_path)


def test_gantry_tilt_is_an_error(tmp_path):
    hu = hu_volume()
    drift = {k: {"ImagePositionPatient": ["-90", f"{40 + 0.5 * k}", f"{100 + 2 * k}"]} for k in range(SHAPE[0])}
    write_series(tmp_path, hu, angle=0.0, overrides=drift)
    with pytest.raises(InputError, match="drift sideways"):
        read_image(tmp_path)


def test_series_without_position_is_an_error(tmp_path):
    write_series(tmp_path, hu_volume(), overrides={2: {"ImagePositionPatient": None}})
    with pytest.raises(InputError, match="lacks ImagePositionPatient"):
        read_image(tmp_path)
