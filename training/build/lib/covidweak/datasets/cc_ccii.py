"""Reader for CC-CCII, the China Consortium of Chest CT Image Investigation dataset (Zhang et al., Cell 2020).

Expected layout (the unpacked COVID19-*.zip, CP-*.zip and Normal-*.zip archives)::

    root/
      NCP/<patient_id>/<scan_id>/<slice>.png|.jpg    novel coronavirus pneumonia -> "covid"
      CP/<patient_id>/<scan_id>/<slice>.png|.jpg     common pneumonia            -> "cap"
      Normal/<patient_id>/<scan_id>/<slice>.png|.jpg normal controls             -> "normal"

A scan is a folder of axial slice images, so each record's ``ct_path`` is
the scan folder; :func:`load_cc_ccii_volume` stacks its slices into a
volume. Patient numbers are only unique within a class folder, so patient
ids are prefixed with the class ("NCP-123").
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..records import StudyRecord
from .common import check_unique_ids, find_child_dir, natural_number, number_studies, require_dir

SOURCE = "cc-ccii"
CLASSES = {"NCP": "covid", "CP": "cap", "Normal": "normal"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CC_CCII_ASSUMED_SPACING = (1.0, 1.0, 1.0)
"""Voxel spacing (x, y, z) in mm given to assembled CC-CCII volumes.

The slice images carry no geometry, and pixel size and slice thickness vary
between the contributing hospitals. Unit spacing makes every physical
measurement read in pixels, which is honest, rather than a plausible-looking
millimetre value that is wrong for most scans; pass real spacing when known.
"""


def is_cc_ccii(root: Path) -> bool:
    """Whether ``root`` holds at least one of the NCP, CP, Normal class folders."""
    return any(find_child_dir(Path(root), (name,)) for name in CLASSES)


def slice_files(scan_dir: Path) -> list[Path]:
    """Slice images of one scan sorted by slice number (the last number in the file name)."""
    scan_dir = Path(scan_dir)
    images = [p for p in scan_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise InputError(f"scan folder {scan_dir} holds no .png/.jpg slices: remove it or restore its images")
    numbered = []
    for path in images:
        number = natural_number(path.stem)
        if number is None:
            raise InputError(f"slice {path} has no number in its name: CC-CCII slices are named by slice number")
        numbered.append((number, path))
    numbered.sort()
    numbers = [n for n, _ in numbered]
    if len(set(numbers)) != len(numbers):
        duplicate = next(n for n in numbers if numbers.count(n) > 1)
        raise InputError(f"scan folder {scan_dir} has two slices numbered {duplicate}: keep one image per slice")
    return [p for _, p in numbered]


def read_cc_ccii(root: Path) -> list[StudyRecord]:
    """One :class:`StudyRecord` per scan folder, ``study_index`` in scan-number order per patient."""
    root = require_dir(root, "CC-CCII")
    records = []
    for class_name, diagnosis in CLASSES.items():
        class_dir = find_child_dir(root, (class_name,))
        if class_dir is None:
            continue
        for patient_dir in sorted(p for p in class_dir.iterdir() if p.is_dir()):
            scans = sorted(p for p in patient_dir.iterdir() if p.is_dir())
            if not scans:
                raise InputError(f"patient folder {patient_dir} holds no scan folders: expected {class_name}/<patient>/<scan>/<slice>.png")
            for scan_dir in scans:
                records.append(
                    StudyRecord(
                        study_id=f"{class_name}-{patient_dir.name}-{scan_dir.name}",
                        patient_id=f"{class_name}-{patient_dir.name}",
                        diagnosis=diagnosis,
                        ct_path=scan_dir,
                        source=SOURCE,
                        extra={"n_slices": len(slice_files(scan_dir)), "class": class_name},
                    )
                )
    if not records:
        raise InputError(f"{root} has no NCP/, CP/ or Normal/ folder with <patient>/<scan>/ slices: point to the unpacked CC-CCII data")
    number_studies(records, order=lambda r: (natural_number(r.ct_path.name) or 0, r.ct_path.name))
    return check_unique_ids(records, f"CC-CCII {root}")


def load_cc_ccii_volume(scan_dir: Path, spacing: Sequence[float] = CC_CCII_ASSUMED_SPACING):
    """Stack a scan folder's slice images into a SimpleITK image.

    Slices are ordered by slice number; slice k becomes z index k. Colour
    images are converted to grey. Values stay the 8-bit grey levels of the
    images (CC-CCII ships windowed images, not HU). spacing: (x, y, z) mm.
    Returns a 3-D ``SimpleITK.Image`` of pixel type uint8, origin 0,
    identity direction.
    """
    import SimpleITK as sitk
    from PIL import Image

    files = slice_files(scan_dir)
    planes = []
    for path in files:
        with Image.open(path) as image:
            plane = np.asarray(image.convert("L"), dtype=np.uint8)
        if planes and plane.shape != planes[0].shape:
            raise InputError(
                f"slice {path} is {plane.shape[1]}x{plane.shape[0]} but earlier slices are "
                f"{planes[0].shape[1]}x{planes[0].shape[0]}: a scan's slices must share one size"
            )
        planes.append(plane)
    spacing = tuple(float(v) for v in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise InputError(f"spacing {spacing} is invalid: give three positive values (x, y, z) in mm")
    volume = sitk.GetImageFromArray(np.stack(planes))
    volume.SetSpacing(spacing)
    return volume
