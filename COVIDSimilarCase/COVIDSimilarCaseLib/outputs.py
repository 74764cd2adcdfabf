"""The output files of ``covidweak similar`` and ``covidweak clusters``, read and checked.

No MRML here. Readers check the documented contract so that a folder from a
mismatched covidweak version fails with one line naming the fix.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from covidweak.errors import CovidWeakError

SIMILAR_JSON = "similar.json"
RESULT_KEYS = ("rank", "study_id", "patient_id", "diagnosis", "distance", "source_path", "query_slice", "match_slice")
LESIONS_CSV, LESION_LABELS = "lesions.csv", "lesion_labels.nii.gz"
LESION_COLUMNS = ("study_id", "lesion_id", "centroid_r", "centroid_a", "centroid_s", "cluster", "score",
                  "tsne_x", "tsne_y", "type")
INTEGER_COLUMNS = ("lesion_id", "cluster")
FLOAT_COLUMNS = ("centroid_r", "centroid_a", "centroid_s", "score", "tsne_x", "tsne_y")


def _mismatch(path: Path, what: str) -> CovidWeakError:
    return CovidWeakError(f"{path} {what}: the covidweak package and the module are out of step; "
                          "reinstall the extension or rerun the command")


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise CovidWeakError(f"{path.name} is missing from {path.parent}: run the command again into an empty folder")
    return path


def read_similar(path) -> dict:
    """``similar.json`` with its result list checked (ranks ascending, every documented key present)."""
    path = _require_file(Path(path))
    try:
        report = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise _mismatch(path, "is not valid JSON") from None
    results = report.get("results")
    if not isinstance(results, list) or "query" not in report:
        raise _mismatch(path, "has no query and results")
    for result in results:
        missing = [key for key in RESULT_KEYS if key not in result]
        if missing:
            raise _mismatch(path, f"has a result without {', '.join(missing)}")
        result.setdefault("lesions", "not recorded")  # files written before the lesion summary existed
    if [r["rank"] for r in results] != sorted(r["rank"] for r in results):
        raise _mismatch(path, "lists results out of rank order")
    return report


def read_lesions(path) -> list[dict]:
    """Rows of a clusters ``lesions.csv``: ids and clusters as int, coordinates and scores as float."""
    path = _require_file(Path(path))
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        if tuple(reader.fieldnames or ()) != LESION_COLUMNS:
            raise _mismatch(path, f"has columns {reader.fieldnames}, expected {', '.join(LESION_COLUMNS)}")
        try:
            return [{**row, **{c: int(row[c]) for c in INTEGER_COLUMNS}, **{c: float(row[c]) for c in FLOAT_COLUMNS}}
                    for row in reader]
        except ValueError as error:
            raise _mismatch(path, f"holds a value that is not a number ({error})") from None


def read_lesion_labels(folder):
    from covidweak.io import read_image

    return read_image(_require_file(Path(folder) / LESION_LABELS))
