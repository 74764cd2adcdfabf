"""The lesion mask as a DICOM Segmentation (SEG) object that refers to its source CT series.

A PACS or Slicer's DICOM module shows a SEG over the CT it was made from: each
frame names its source slice (SOP Instance UID) and the SEG shares the series'
Frame of Reference. The frames are matched to slices in the order
:func:`covidweak.io.read_dicom_series` reads them (sorted along the slice
normal, checked for gaps and tilt), so voxel k of a mask computed on that image
lands on exactly the slice it came from. highdicom builds the object; the
segment is coded as SNOMED CT "Lesion" (52988006) in the category
"Morphologically abnormal structure" (49755003), the terms the Slicer module's
segments carry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import InputError
from .io.atomic import replacing

LESION_CODE = ("52988006", "SCT", "Lesion")
CATEGORY_CODE = ("49755003", "SCT", "Morphologically abnormal structure")
SEG_SERIES_NUMBER = 9001
"""High, so the SEG sorts after the scanner's own series in a viewer's list."""


def ordered_series(folder: Path) -> list[str]:
    """Files of the CT series in ``folder`` in the slice order of :func:`covidweak.io.read_dicom_series`."""
    from .io.dicom import _read_header, choose_series, sort_and_check

    series, names = choose_series(Path(folder))
    ordered, _ = sort_and_check([_read_header(name) for name in names], series)
    return ordered


def write_dicom_seg(mask: sitk.Image, series_folder: Path, out_path: Path, algorithm: str = "covidweak",
                    overwrite: bool = False) -> Path:
    """Write ``mask`` (3-D, > 0 = lesion, on the grid read from ``series_folder``) as a binary DICOM SEG.

    ``algorithm``: the name recorded as the segmenting algorithm (e.g. "mseamnam").
    The file is written to a temporary name and moved into place; an existing
    ``out_path`` is refused unless ``overwrite``.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from . import __version__

    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise InputError(f"{out_path} already exists: choose another name or allow overwriting")
    files = ordered_series(series_folder)
    sources = [pydicom.dcmread(name) for name in files]
    voxels = sitk.GetArrayViewFromImage(mask) > 0  # (k, row, column) = (slice, DICOM row, DICOM column)
    expected = (len(sources), int(sources[0].Rows), int(sources[0].Columns))
    if voxels.shape != expected:
        raise InputError(f"the mask is {voxels.shape[::-1]} voxels but the series {series_folder} is "
                         f"{expected[::-1]}: give the mask computed on this series")
    if "FrameOfReferenceUID" not in sources[0]:
        raise InputError(f"the series in {series_folder} has no FrameOfReferenceUID: a SEG cannot be placed on it; "
                         "export the CT with its full headers")
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Lesion",
        segmented_property_category=hd.sr.CodedConcept(*CATEGORY_CODE),
        segmented_property_type=hd.sr.CodedConcept(*LESION_CODE),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=algorithm, version=__version__, family=codes.cid7162.ArtificialIntelligence),
    )
    segmentation = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.ascontiguousarray(voxels, dtype=np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="covidweak",
        manufacturer_model_name="covidweak lesion segmentation (research use only)",
        software_versions=__version__,
        device_serial_number="none",
        series_description="COVID-19 lesions (research use only)",
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out_path) as temp:
        segmentation.save_as(temp)
    return out_path


def read_dicom_seg(seg_path: Path, series_folder: Path) -> tuple[np.ndarray, str]:
    """The lesion mask of a SEG on its source series' grid, and the SEG's Frame of Reference UID.

    Returns ((k, rows, columns) uint8 in the slice order of ``read_dicom_series``,
    FrameOfReferenceUID). Slices the SEG has no frame for (empty) read as 0.
    """
    import highdicom as hd
    import pydicom

    seg = hd.seg.segread(str(seg_path))
    uids = [str(pydicom.dcmread(name, stop_before_pixels=True).SOPInstanceUID)
            for name in ordered_series(series_folder)]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1],
                                               assert_missing_frames_are_empty=True)
    return (pixels[..., 0] > 0).astype(np.uint8), str(seg.FrameOfReferenceUID)
