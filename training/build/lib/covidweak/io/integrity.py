"""Detect truncated NIfTI files, which ITK reads without complaint (the missing voxels come back as zeros)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError

CHUNK = 4 << 20


def _expected_nifti_bytes(path: Path) -> int:
    """Header offset plus voxel bytes, from the header alone (nibabel loads lazily)."""
    import nibabel

    try:
        header = nibabel.load(str(path)).header
        shape = header.get_data_shape()
        itemsize = header.get_data_dtype().itemsize
        offset = int(header.get_data_offset())
    except Exception as error:  # nibabel raises many types for a damaged header
        raise InputError(f"cannot read {path.name}: the NIfTI header is damaged ({error}); re-export the file") from None
    return offset + int(np.prod(shape, dtype=np.int64)) * itemsize


def _gzip_trailer_size(path: Path) -> int:
    """ISIZE from the gzip trailer: the uncompressed length modulo 2**32."""
    with open(path, "rb") as stream:
        stream.seek(-4, 2)
        return struct.unpack("<I", stream.read(4))[0]


def _gzip_decompressed_size(path: Path) -> int:
    """Decompress in chunks (constant memory) and count; raise InputError if the stream ends early."""
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(CHUNK):
                total += len(chunk)
    except (EOFError, OSError, zlib.error):
        raise InputError(f"cannot read {path.name}: the compressed file is truncated or corrupt; re-export the file") from None
    return total


def check_nifti_complete(path: Path) -> None:
    """Raise :class:`InputError` if a .nii or .nii.gz file holds fewer bytes than its header promises.

    For .nii.gz the gzip trailer records the uncompressed size; when it matches
    the header the file is complete (a truncated file's last four bytes are
    compressed data and match by chance with probability 2**-32), so the usual
    case costs two small reads. Otherwise (trailing bytes, concatenated gzip
    members, files over 4 GiB, or real truncation) the stream is decompressed to be sure.
    """
    expected = _expected_nifti_bytes(path)
    if path.name.lower().endswith(".gz"):
        if path.stat().st_size >= 18 and _gzip_trailer_size(path) == expected % (1 << 32):
            return
        actual = _gzip_decompressed_size(path)
    else:
        actual = path.stat().st_size
    if actual < expected:
        raise InputError(
            f"cannot read {path.name}: the file is truncated ({actual} of {expected} bytes); re-export the file"
        )


def check_nifti_finite(path: Path) -> None:
    """Raise :class:`InputError` if a floating-point NIfTI file stores NaN or Inf voxels.

    ITK's NIfTI reader turns NaN into 0 without a warning, so a later check on
    the image in memory cannot see them and the zeros would pass as water. Only
    float files can hold NaN, and CTs are usually stored as integers, so the
    extra pass over the raw (unscaled) voxels is rarely paid.
    """
    import nibabel

    image = nibabel.load(str(path))
    if image.get_data_dtype().kind != "f":
        return
    raw = np.asarray(image.dataobj.get_unscaled())
    bad = int(raw.size - np.count_nonzero(np.isfinite(raw)))
    if bad:
        raise InputError(f"{path.name} holds {bad} NaN/Inf voxel(s); fill or mask them before use (e.g. set them to -1024 HU)")
