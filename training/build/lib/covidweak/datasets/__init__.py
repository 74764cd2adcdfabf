"""Readers that turn a user's download of a public dataset (or the phantom, or a CSV) into StudyRecords.

Readers check the folder layout and that files exist; they never read voxel
data (CC-CCII's :func:`load_cc_ccii_volume` does, when asked). This package
does not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import InputError
from ..records import StudyRecord
from .cc_ccii import CC_CCII_ASSUMED_SPACING, is_cc_ccii, load_cc_ccii_volume, read_cc_ccii
from .covid19_ct_seg import is_covid19_ct_seg, read_covid19_ct_seg
from .manifest import is_generic_manifest, read_manifest
from .mosmeddata import is_mosmeddata, read_mosmeddata
from .phantom import MANIFEST_NAME, is_phantom, read_phantom
from .splits import SPLIT_NAMES, read_split, split_by_patient, write_split


def _manifest_folder(path: Path) -> Path:
    """The phantom folder for a path naming either it or its manifest.csv."""
    return path.parent if path.is_file() and path.name == MANIFEST_NAME else path


LAYOUTS: dict[str, tuple[str, Callable[[Path], bool], Callable[[Path], list[StudyRecord]]]] = {
    "phantom": ("folder with the phantom's manifest.csv (covidweak phantom)",
                lambda p: is_phantom(_manifest_folder(p)), lambda p: read_phantom(_manifest_folder(p))),
    "manifest": ("CSV file (or folder with manifest.csv) with columns path, label, patient_id",
                 lambda p: is_generic_manifest(p if p.is_file() else p / MANIFEST_NAME),
                 lambda p: read_manifest(p if p.is_file() else p / MANIFEST_NAME)),
    "covid19-ct-seg": ("folder with COVID-19-CT-Seg_20cases/ (+ Lung_Mask/, Infection_Mask/)",
                       is_covid19_ct_seg, read_covid19_ct_seg),
    "mosmeddata": ("folder with studies/CT-0..CT-4/ (+ masks/)", is_mosmeddata, read_mosmeddata),
    "cc-ccii": ("folder with NCP/, CP/, Normal/ holding <patient>/<scan>/<slice>.png", is_cc_ccii, read_cc_ccii),
}
"""kind -> (layout description, detector, reader); detection tries them in this order."""


def supported_layouts() -> str:
    """One line per supported kind, for help texts and errors."""
    return "; ".join(f"{kind}: {description}" for kind, (description, _, _) in LAYOUTS.items())


def detect_kind(path: Path) -> str:
    """The kind of dataset at ``path``; InputError listing the supported layouts when none fits."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"dataset path not found: {path}; check the path")
    for kind, (_, detect, _) in LAYOUTS.items():
        if detect(path):
            return kind
    raise InputError(f"{path} matches no supported dataset layout; expected one of -- {supported_layouts()}")


def open_dataset(path: Path, kind: str = "auto") -> list[StudyRecord]:
    """Read the dataset at ``path`` as StudyRecords; ``kind`` is "auto" or one of :data:`LAYOUTS`."""
    path = Path(path).expanduser()
    if kind == "auto":
        kind = detect_kind(path)
    if kind not in LAYOUTS:
        raise InputError(f"unknown dataset kind '{kind}': use auto or one of {', '.join(LAYOUTS)}")
    return LAYOUTS[kind][2](path)


__all__ = [
    "CC_CCII_ASSUMED_SPACING",
    "LAYOUTS",
    "SPLIT_NAMES",
    "detect_kind",
    "load_cc_ccii_volume",
    "open_dataset",
    "read_cc_ccii",
    "read_covid19_ct_seg",
    "read_manifest",
    "read_mosmeddata",
    "read_phantom",
    "read_split",
    "split_by_patient",
    "supported_layouts",
    "write_split",
]
