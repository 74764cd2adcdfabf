"""DICOM series folders: choose a series, check it is one consistent volume, read it in HU.

GDCM groups files by SeriesInstanceUID. A folder exported from PACS often holds
several series (scout, thin and thick reconstructions); the one with the most
slices is read and a warning names it. Inside the chosen series the headers are
checked before any voxel is read: one orientation, one slice size, slice
positions evenly spaced along the slice normal (a gap means missing slices) and
lying on that normal (a sideways drift means gantry tilt, which ITK would
silently read as an unsheared, hence wrong, volume). Files are sorted by
ImagePositionPatient projected on the normal, not by file name or InstanceNumber.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .files import itk_reason

ORIENTATION_TOLERANCE = 1e-4
SPACING_TOLERANCE = 0.01
"""Relative: slice steps may differ by 1 % (rounding of positions in headers) before the series counts as uneven."""
TILT_TOLERANCE = 0.1
"""Sideways drift of slice positions allowed, as a fraction of the in-plane pixel spacing."""


@dataclass(frozen=True)
class SliceHeader:
    path: str
    position: np.ndarray  # ImagePositionPatient, LPS mm, shape (3,)
    orientation: np.ndarray  # ImageOrientationPatient: row then column direction cosines, shape (6,)
    rows: int
    columns: int
    pixel_spacing: float
    rescale: tuple[float, float]  # (slope, intercept)


def _read_header(path: str) -> SliceHeader:
    import pydicom

    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=[
                "ImagePositionPatient",
                "ImageOrientationPatient",
                "Rows",
                "Columns",
                "PixelSpacing",
                "RescaleSlope",
                "RescaleIntercept",
            ],
        )
        position = np.asarray([float(v) for v in ds.ImagePositionPatient])
        orientation = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        spacing = min(float(v) for v in ds.get("PixelSpacing", [1.0, 1.0]))
        rows, columns = int(ds.Rows), int(ds.Columns)
        rescale = (float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0)))
    except AttributeError as error:
        raise InputError(
            f"DICOM file {Path(path).name} lacks {str(error).split()[-1].strip(chr(39))}: the series has no 3-D geometry "
            "(is it a scout or secondary capture?); export the CT series itself"
        ) from None
    except Exception as error:
        raise InputError(f"cannot read DICOM file {Path(path).name} ({error}); re-export the series") from None
    if position.shape != (3,) or orientation.shape != (6,):
        raise InputError(f"DICOM file {Path(path).name} has a malformed position or orientation; re-export the series")
    return SliceHeader(path, position, orientation, rows, columns, spacing, rescale)


def choose_series(folder: Path) -> tuple[str, list[str]]:
    """The SeriesInstanceUID with the most files in ``folder`` and its file names.

    Warns (``warnings.warn``) naming the chosen series when there are several.
    """
    try:
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    except RuntimeError as error:
        raise InputError(f"cannot scan {folder} for DICOM files ({itk_reason(error)})") from None
    if not series_ids:
        raise InputError(
            f"{folder} holds no DICOM series: give a folder of DICOM slices, or an image file (.nii.gz, .nrrd, .mha)"
        )
    files = {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in series_ids}
    chosen = max(series_ids, key=lambda uid: len(files[uid]))
    if len(series_ids) > 1:
        others = ", ".join(f"{uid} ({len(files[uid])} files)" for uid in series_ids if uid != chosen)
        warnings.warn(
            f"{folder} holds {len(series_ids)} DICOM series; reading {chosen} ({len(files[chosen])} files), "
            f"the one with most slices, and ignoring {others}; put one series per folder to choose another",
            stacklevel=3,
        )
    return chosen, files[chosen]


def sort_and_check(headers: list[SliceHeader], series: str) -> tuple[list[str], float]:
    """File names ordered along the slice normal, and the slice step in mm.

    Raises :class:`InputError` naming the problem for mixed orientations or
    sizes, duplicate positions, missing slices, uneven spacing or gantry tilt.
    """
    first = headers[0]
    for header in headers[1:]:
        if np.max(np.abs(header.orientation - first.orientation)) > ORIENTATION_TOLERANCE:
            raise InputError(
                f"DICOM series {series} mixes slice orientations ({Path(first.path).name} vs {Path(header.path).name}): "
                "it is not one volume; export each acquisition as its own series"
            )
        if (header.rows, header.columns) != (first.rows, first.columns):
            raise InputError(
                f"DICOM series {series} mixes slice sizes ({first.rows}x{first.columns} vs {header.rows}x{header.columns}): "
                "it is not one volume; export each reconstruction as its own series"
            )
    if len(headers) < 2:
        return [first.path], 1.0
    normal = np.cross(first.orientation[:3], first.orientation[3:])
    headers = sorted(headers, key=lambda h: float(h.position @ normal))
    distance = np.asarray([h.position @ normal for h in headers])
    steps = np.diff(distance)
    step = float(np.median(steps))
    if np.min(steps) <= SPACING_TOLERANCE * max(step, 1e-6):
        raise InputError(
            f"DICOM series {series} has several slices at the same position: it holds repeated acquisitions; "
            "export one acquisition per series"
        )
    gaps = steps > (1.5 * step)
    if np.any(gaps):
        missing = int(np.sum(np.round(steps[gaps] / step) - 1))
        where = float(distance[:-1][gaps][0])
        raise InputError(
            f"DICOM series {series} has missing slices (about {missing} missing, first gap after {where:.1f} mm "
            "along the slice normal): re-export the complete series"
        )
    if np.max(steps) - np.min(steps) > SPACING_TOLERANCE * step:
        raise InputError(
            f"DICOM series {series} has non-uniform slice spacing ({np.min(steps):.3g} to {np.max(steps):.3g} mm): "
            "resample it to even spacing or export a regularly spaced reconstruction"
        )
    offsets = np.asarray([h.position - first.position for h in headers])
    sideways = offsets - np.outer(offsets @ normal, normal)
    if np.max(np.linalg.norm(sideways, axis=1)) > TILT_TOLERANCE * first.pixel_spacing:
        raise InputError(
            f"DICOM series {series} has slices that drift sideways (gantry tilt or sheared geometry): "
            "correct the tilt (e.g. Slicer's DICOM scalar volume plugin) and export the corrected volume"
        )
    # The end-to-end mean averages out the rounding of positions in the headers.
    return [h.path for h in headers], float(distance[-1] - distance[0]) / (len(headers) - 1)


def read_dicom_series(folder: Path, pixel_type: Optional[int] = None) -> sitk.Image:
    """Read the longest DICOM series in ``folder`` as a 3-D image with rescale slope/intercept applied.

    ``pixel_type``: SimpleITK pixel type to read into (e.g. float32); None keeps
    GDCM's choice (an integer type when slope and intercept are integers).
    """
    series, names = choose_series(Path(folder))
    headers = [_read_header(name) for name in names]
    ordered, step = sort_and_check(headers, series)
    if pixel_type is None and len({h.rescale for h in headers}) > 1:
        # GDCM picks the pixel type from the first slice; slices rescaled differently
        # could then be rounded or overflow, so read all of them as float.
        pixel_type = sitk.sitkFloat32
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(ordered)
    if pixel_type is not None:
        reader.SetOutputPixelType(pixel_type)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise InputError(f"cannot read DICOM series {series} ({itk_reason(error)}); re-export the series") from None
    if len(ordered) > 1:
        # Use the checked step, so the spacing never depends on how ITK estimates it.
        spacing = list(image.GetSpacing())
        spacing[2] = step
        image.SetSpacing(spacing)
    return image
