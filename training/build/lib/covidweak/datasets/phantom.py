"""Reader for the synthetic phantom written by :mod:`covidweak.phantom`.

Layout::

    root/manifest.csv            study_id, patient_id, study_index, diagnosis, ct, lungs, lesions,
                                 cxr, cxr_lungs, meta, n_lesions, severity_global
    root/<study_id>/meta.json    slice_labels (one per z index), severity_array, lesions, ...

Paths in the manifest are relative to its folder. Unlike the public
datasets, the phantom knows every slice's weak label, read from meta.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..records import DIAGNOSES, SLICE_LABELS, StudyRecord
from .common import check_unique_ids, csv_header, read_table, require_dir, resolve_file

SOURCE = "phantom"
MANIFEST_NAME = "manifest.csv"
REQUIRED_COLUMNS = ("study_id", "patient_id", "study_index", "diagnosis", "ct", "lungs", "lesions", "meta")
META_EXTRA_KEYS = ("seed", "size", "slices", "spacing", "slice_has_lesion", "severity_array",
                   "severity_global", "lesions", "generator_version")


def is_phantom(root: Path) -> bool:
    """Whether ``root`` has a manifest.csv with the phantom's columns."""
    return csv_header(Path(root) / MANIFEST_NAME) >= set(REQUIRED_COLUMNS)


def read_phantom(root: Path) -> list[StudyRecord]:
    """One :class:`StudyRecord` per manifest row, with slice labels and metadata from meta.json."""
    root = require_dir(root, "phantom")
    manifest = root / MANIFEST_NAME
    rows = read_table(manifest, REQUIRED_COLUMNS, "phantom manifest")
    records = []
    for number, row in enumerate(rows, start=2):
        where = f"{manifest} row {number}"
        meta_path = resolve_file(root, row["meta"], "meta.json", where)
        meta = _read_meta(meta_path)
        diagnosis = row["diagnosis"]
        if diagnosis not in DIAGNOSES:
            raise InputError(f"{where}: diagnosis '{diagnosis}' is not one of {', '.join(DIAGNOSES)}; regenerate the phantom")
        slice_labels = _slice_labels(meta, where)
        try:
            study_index = int(row["study_index"])
        except ValueError:
            raise InputError(f"{where}: study_index '{row['study_index']}' is not an integer; regenerate the phantom") from None
        extra = {key: meta[key] for key in META_EXTRA_KEYS if key in meta}
        extra["meta_path"] = meta_path
        for column in ("cxr", "cxr_lungs"):
            if row.get(column):
                extra[f"{column}_path"] = resolve_file(root, row[column], column, where)
        records.append(
            StudyRecord(
                study_id=row["study_id"],
                patient_id=row["patient_id"],
                diagnosis=diagnosis,
                ct_path=resolve_file(root, row["ct"], "CT", where),
                source=SOURCE,
                study_index=study_index,
                lung_mask_path=resolve_file(root, row["lungs"], "lung mask", where),
                lesion_mask_path=resolve_file(root, row["lesions"], "lesion mask", where),
                slice_labels=slice_labels,
                extra=extra,
            )
        )
    return check_unique_ids(records, f"phantom manifest {manifest}")


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {path} ({error}); regenerate the phantom") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path} is not a JSON object; regenerate the phantom")
    return meta


def _slice_labels(meta: dict, where: str) -> list[str]:
    labels = meta.get("slice_labels")
    if not isinstance(labels, list) or not labels:
        raise InputError(f"{where}: meta.json has no slice_labels list; regenerate the phantom")
    bad = sorted({str(v) for v in labels if v not in SLICE_LABELS})
    if bad:
        raise InputError(f"{where}: meta.json slice_labels has {', '.join(bad)}; allowed: {', '.join(SLICE_LABELS)}")
    slices = meta.get("slices")
    if isinstance(slices, int) and slices != len(labels):
        raise InputError(f"{where}: meta.json has {len(labels)} slice_labels for {slices} slices; regenerate the phantom")
    return list(labels)
