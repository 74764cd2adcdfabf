"""DICOM SEG export of a lesion mask: written on a CT series made from a phantom, read back with highdicom.

``write_ct_series`` (also used by the batch tests) writes a SimpleITK CT as a
DICOM series with the headers a scanner gives (study, series, Frame of
Reference UIDs, geometry, rescale), in shuffled file names so that only the
positions give the slice order.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from covidweak.errors import InputError

RESCALE_INTERCEPT = -1024.0


def write_ct_series(image: sitk.Image, folder: Path, patient_id: str = "PHANTOM") -> str:
    """Write ``image`` (3-D, HU) as one CT series in ``folder``; returns its FrameOfReferenceUID."""
    folder.mkdir(parents=True, exist_ok=True)
    hu = sitk.GetArrayFromImage(image)
    stored = np.round(hu - RESCALE_INTERCEPT).astype(np.int16)
    direction = np.reshape(image.GetDirection(), (3, 3))
    spacing, origin = np.asarray(image.GetSpacing()), np.asarray(image.GetOrigin())
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    names = [f"{n:08d}" for n in range(len(hu))]
    random.Random(7).shuffle(names)
    for k in range(len(hu)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.PatientName = "CT", patient_id, "Phantom^Test"
        ds.PatientBirthDate, ds.PatientSex, ds.StudyDate, ds.StudyTime = "19700101", "O", "20260101", "120000"
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName, ds.Manufacturer = "1", "A1", "", "phantom"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [f"{v:.4f}" for v in origin + direction @ np.array([0.0, 0.0, k * spacing[2]])]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [f"{spacing[1]:g}", f"{spacing[0]:g}"]
        ds.SliceThickness = f"{spacing[2]:g}"
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = f"{RESCALE_INTERCEPT:g}", "1"
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        ds.save_as(folder / names[k], enforce_file_format=True)
    return frame


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """A phantom CT with lesions written as a DICOM series: (folder, FrameOfReferenceUID, lesion mask)."""
    from covidweak.phantom import PhantomConfig, generate_study

    study = generate_study(3, 0, "covid", config=PhantomConfig(size=64, slices=16))
    folder = tmp_path_factory.mktemp("dicom") / "series"
    frame = write_ct_series(study.ct, folder)
    return folder, frame, study.lesions


def test_seg_round_trip_matches_mask_and_frame_of_reference(series, tmp_path):
    from covidweak.dicom_seg import read_dicom_seg, write_dicom_seg
    from covidweak.io import read_dicom_series

    folder, frame, lesions = series
    ct = read_dicom_series(folder)
    mask = sitk.GetImageFromArray((sitk.GetArrayFromImage(lesions) > 0).astype(np.uint8))
    mask.CopyInformation(ct)
    # A few voxels on the first and last slice make an off-by-one slice order visible.
    voxels = sitk.GetArrayFromImage(mask)
    voxels[0, :3, :5] = 1
    voxels[-1, -2:, -4:] = 1
    mask = sitk.GetImageFromArray(voxels)
    mask.CopyInformation(ct)
    assert 0 < voxels.sum() < voxels.size

    out = write_dicom_seg(mask, folder, tmp_path / "lesions_seg.dcm", algorithm="cam")
    back, seg_frame = read_dicom_seg(out, folder)
    np.testing.assert_array_equal(back, voxels)
    assert seg_frame == frame
    seg = pydicom.dcmread(out)
    assert seg.Modality == "SEG" and seg.SegmentSequence[0].SegmentLabel == "Lesion"
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "52988006"
    source = pydicom.dcmread(next(folder.iterdir()))
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID


def test_seg_refuses_a_mask_of_another_size_and_an_existing_file(series, tmp_path):
    from covidweak.dicom_seg import write_dicom_seg

    folder, _, lesions = series
    small = sitk.Image(32, 32, 16, sitk.sitkUInt8)
    with pytest.raises(InputError, match="give the mask computed on this series"):
        write_dicom_seg(small, folder, tmp_path / "x.dcm")
    existing = tmp_path / "taken.dcm"
    existing.write_bytes(b"mine")
    with pytest.raises(InputError, match="already exists"):
        write_dicom_seg(lesions, folder, existing)
    assert existing.read_bytes() == b"mine"
