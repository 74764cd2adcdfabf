"""Image files: reading any supported format, writing atomically, and turning ITK errors into one line."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Union

import SimpleITK as sitk

from ..errors import InputError
from .atomic import replacing
from .integrity import check_nifti_complete, check_nifti_finite

PathLike = Union[str, "os.PathLike[str]"]

READ_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
WRITE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")
"""Single-file formats only: a header/data pair (.nhdr, .mhd) cannot be renamed into place atomically."""


def image_suffix(path: Path) -> str:
    """The lower-case extension that decides the format, ``.nii.gz`` counted as one."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def itk_reason(error: BaseException) -> str:
    """The one informative line of a multi-line SimpleITK/ITK exception message.

    ITK prefixes the useful text with source file paths, line numbers and object
    addresses; users need none of that.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):
        text = re.sub(r"^(sitk::ERROR:|ITK ERROR:|\[\w+\]|Reason:)\s*", "", line)
        text = re.sub(r"^\w+\(0x[0-9a-f]+\):\s*", "", text)
        if text and not text.startswith("Exception thrown in") and "No such file" not in text:
            return text[:160]
    return "unreadable content"


def read_image(path: PathLike, pixel_type: Optional[int] = None) -> sitk.Image:
    """Read an image file (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd) or a DICOM series folder.

    ``pixel_type``: a SimpleITK pixel type id (e.g. ``sitk.sitkFloat32``) to
    convert to while reading, so that no second full-size copy is made; None
    keeps the stored type (DICOM: rescale slope/intercept are applied either way).

    Returns the image with its geometry in LPS. Raises :class:`InputError` for a
    missing path, an unsupported extension, a corrupt or truncated file, or a
    folder without a DICOM series.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        from .dicom import read_dicom_series

        return read_dicom_series(path, pixel_type=pixel_type)
    suffix = image_suffix(path)
    if suffix == ".dcm":
        raise InputError(f"{path.name} is a single DICOM file: give the folder that holds the whole series")
    if suffix not in READ_SUFFIXES:
        raise InputError(
            f"{path.name}: unsupported file type '{suffix or path.name}'; give one of "
            f"{', '.join(READ_SUFFIXES)} or a DICOM series folder"
        )
    if suffix in (".nii", ".nii.gz"):
        # ITK's NIfTI reader fills a truncated file with zeros and reads NaN as 0, silently.
        check_nifti_complete(path)
        check_nifti_finite(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    if pixel_type is not None:
        reader.SetOutputPixelType(pixel_type)
    try:
        return reader.Execute()
    except RuntimeError as error:
        raise InputError(
            f"cannot read {path.name}: the file is corrupt or truncated ({itk_reason(error)}); re-export the file"
        ) from None


def read_ct(path: PathLike) -> sitk.Image:
    """Read a CT (file or DICOM folder) as a 3-D float32 image in HU and check it is plausible.

    Raises :class:`InputError` for unreadable input or for an image that is not
    a CT in Hounsfield units (see :func:`covidweak.validate.check_ct`).
    """
    from ..validate import check_ct

    image = read_image(path, pixel_type=sitk.sitkFloat32)
    check_ct(image)
    return image


def write_image(image: sitk.Image, path: PathLike, overwrite: bool = False) -> Path:
    """Write ``image`` to ``path`` (.nii, .nii.gz, .nrrd, .mha) and return the path.

    The image is written to a temporary file in the target folder and moved
    into place only when complete, so a crash never leaves half a file under
    the final name. Parent folders are created. An existing file is kept and
    :class:`InputError` raised unless ``overwrite`` is True.
    """
    path = Path(path).expanduser()
    suffix = image_suffix(path)
    if suffix not in WRITE_SUFFIXES:
        raise InputError(f"{path.name}: cannot write '{suffix or path.name}' files; use one of {', '.join(WRITE_SUFFIXES)}")
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file name ending in {suffix}")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists: choose another name or allow overwriting")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name keeps the real extension because SimpleITK picks the writer from it.
        with replacing(path, suffix=f".tmp{suffix}", overwrite=overwrite) as temp:
            _write_complete(image, temp, path, suffix)
    except OSError as error:  # read-only or full file system, no permission
        raise InputError(f"cannot write {path}: {error.strerror}; check the folder is writable and has space") from None
    return path


def _write_complete(image: sitk.Image, temp: Path, path: Path, suffix: str) -> None:
    """Write ``image`` to ``temp`` and check that all of it arrived; ``path`` names the target in errors."""
    try:
        sitk.WriteImage(image, str(temp), useCompression=suffix != ".nii")
    except RuntimeError as error:
        raise InputError(f"cannot write {path}: {itk_reason(error)}; check the folder is writable and has space") from None
    if suffix in (".nii", ".nii.gz"):
        # ITK's NIfTI writer reports a short write (full disk) on stderr only and returns normally.
        try:
            check_nifti_complete(temp)
        except InputError:
            raise InputError(f"cannot write {path}: the file came out incomplete; "
                             "check the folder is writable and has space") from None
