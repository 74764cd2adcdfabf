"""The output folders of ``covidweak severity`` and ``covidweak diagnose``, read and checked.

Nothing here touches MRML: the Logic turns what these readers return into
nodes. Each reader checks the files against the contract the commands write
(see the covidweak README) so a folder from a mismatched covidweak version
fails with one line naming the fix, not with a KeyError deep in the Logic.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covidweak.errors import CovidWeakError

CXR_JSON, CXR_MAP, CXR_LUNGS = "severity.json", "severity_map.nii.gz", "cxr_lungs.nii.gz"
CT_JSON, CT_ZONES = "ct_severity.json", "zones.nii.gz"
DIAGNOSIS_JSON, SLICES_CSV = "diagnosis.json", "slices.csv"
SLICE_COLUMNS = ("slice", "p_covid", "p_cap", "p_normal")
ROWS, COLUMNS = ("upper", "middle", "lower"), ("right", "left")


@dataclass
class CxrSeverity:
    """``severity.json`` and its two images (SimpleITK, the radiograph's geometry)."""

    report: dict
    probability_map: object  # float 0..1
    lungs: object  # uint8 0 / 1 right / 2 left

    @property
    def probability(self) -> np.ndarray:
        """(3, 2) zone probabilities, rows upper/middle/lower, columns right/left."""
        return np.asarray(self.report["probability"], dtype=float)

    @property
    def binary(self) -> np.ndarray:
        return np.asarray(self.report["binary"], dtype=int)


@dataclass
class CtSeverity:
    """``ct_severity.json`` and the zone label image (0 outside, 1..6 right upper .. left lower)."""

    report: dict
    zones: object


@dataclass
class Diagnosis:
    """``diagnosis.json`` and the per-slice probabilities of ``slices.csv`` (one dict per lung slice)."""

    report: dict
    slices: list[dict]


def _mismatch(path: Path, what: str) -> CovidWeakError:
    return CovidWeakError(f"{path} {what}: the covidweak package and the module are out of step; "
                          "reinstall the extension or rerun the command")


def read_json(path: Path, required: tuple[str, ...]) -> dict:
    if not path.is_file():
        raise CovidWeakError(f"{path.name} is missing from {path.parent}: run the command again into an empty folder")
    try:
        report = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise _mismatch(path, "is not valid JSON") from None
    missing = [key for key in required if key not in report]
    if missing:
        raise _mismatch(path, f"lacks {', '.join(missing)}")
    return report


def _read_image(path: Path):
    from covidweak.io import read_image

    if not path.is_file():
        raise CovidWeakError(f"{path.name} is missing from {path.parent}: run the command again into an empty folder")
    return read_image(path)


def read_cxr_severity(folder) -> CxrSeverity:
    folder = Path(folder)
    report = read_json(folder / CXR_JSON, ("modality", "probability", "binary", "global_score", "zone_lines"))
    if report["modality"] != "cxr" or np.shape(report["probability"]) != (3, 2) or np.shape(report["binary"]) != (3, 2):
        raise _mismatch(folder / CXR_JSON, "is not a 3x2 chest X-ray severity report")
    return CxrSeverity(report, _read_image(folder / CXR_MAP), _read_image(folder / CXR_LUNGS))


def read_ct_severity(folder) -> CtSeverity:
    folder = Path(folder)
    report = read_json(folder / CT_JSON, ("modality", "zones", "lungs", "total_score", "involvement_percent"))
    if report["modality"] != "ct" or len(report["zones"]) != 6:
        raise _mismatch(folder / CT_JSON, "is not a six-zone CT severity report")
    return CtSeverity(report, _read_image(folder / CT_ZONES))


def read_diagnosis(folder) -> Diagnosis:
    folder = Path(folder)
    report = read_json(folder / DIAGNOSIS_JSON, ("classes", "probabilities", "prediction"))
    path = folder / SLICES_CSV
    if not path.is_file():
        raise CovidWeakError(f"{SLICES_CSV} is missing from {folder}: run covidweak diagnose again")
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        if tuple(reader.fieldnames or ()) != SLICE_COLUMNS:
            raise _mismatch(path, f"has columns {reader.fieldnames}, expected {', '.join(SLICE_COLUMNS)}")
        slices = [{"slice": int(row["slice"]), **{c: float(row[c]) for c in SLICE_COLUMNS[1:]}} for row in reader]
    return Diagnosis(report, slices)


def zone_label_map_2d(lungs: np.ndarray) -> np.ndarray:
    """Radiograph zone labels 1..6 (right upper, middle, lower, left upper, middle, lower; 0 outside).

    lungs: (rows, cols) 0 / 1 right / 2 left. The zones are Kim et al.'s
    per-lung 5/12 and 2/3 split lines (covidweak.zones), the same ones the
    command draws as zone_lines, numbered like the CT's zones.nii.gz.
    """
    from covidweak.zones import zone_map_2d

    lungs = np.asarray(lungs)
    zones = zone_map_2d(lungs)
    return np.where(zones > 0, (lungs.astype(np.uint8) - 1) * 3 + zones, 0).astype(np.uint8)
