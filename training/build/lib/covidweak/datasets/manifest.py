"""Reader for a generic CSV manifest: the way to bring any other collection of CT studies.

Columns (header row required, any order, extra columns kept in ``extra``):

* ``path`` -- CT volume, absolute or relative to the CSV's folder (required)
* ``label`` -- covid, cap, normal or unknown; common aliases accepted (required)
* ``patient_id`` -- splits keep all studies of a patient together (required)
* ``mask`` -- lesion mask (optional), ``lung_mask`` -- lung mask (optional)
* ``study_id`` -- unique id (optional; default: the CT file name without suffix)
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..records import DIAGNOSES, StudyRecord
from .common import check_unique_ids, csv_header, read_table, resolve_file, volume_stem

SOURCE = "manifest"
REQUIRED_COLUMNS = ("path", "label", "patient_id")
OPTIONAL_COLUMNS = ("mask", "lung_mask", "study_id")
LABEL_ALIASES = {
    "covid-19": "covid", "covid19": "covid", "ncp": "covid",
    "community-acquired pneumonia": "cap", "cp": "cap",
    "healthy": "normal", "np": "normal", "non-pneumonia": "normal",
}
"""Names other datasets use for the same classes (CC-CCII NCP/CP, Hu et al. NP)."""


def parse_label(value: str, where: str) -> str:
    """A diagnosis from ``DIAGNOSES`` or ``unknown`` for a manifest label, case-insensitive."""
    label = value.strip().lower()
    label = LABEL_ALIASES.get(label, label)
    if label not in DIAGNOSES + ("unknown",):
        raise InputError(f"{where}: unknown label '{value}'; use one of {', '.join(DIAGNOSES)} or unknown")
    return label


def read_manifest(csv_path: Path) -> list[StudyRecord]:
    """One :class:`StudyRecord` per row; files are checked to exist, ids to be unique."""
    csv_path = Path(csv_path).expanduser()
    rows = read_table(csv_path, REQUIRED_COLUMNS, "manifest")
    base = csv_path.parent
    records = []
    per_patient: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        where = f"{csv_path.name} row {number}"
        ct_path = resolve_file(base, row["path"], "CT", where)
        patient = row["patient_id"]
        if not patient:
            raise InputError(f"{where}: patient_id is empty; give every study its patient's id")
        study_id = row.get("study_id") or volume_stem(ct_path.name) or ct_path.stem
        optional = {
            column: resolve_file(base, row[column], column.replace("_", " "), where) if row.get(column) else None
            for column in ("mask", "lung_mask")
        }
        known = set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
        records.append(
            StudyRecord(
                study_id=study_id,
                patient_id=patient,
                diagnosis=parse_label(row["label"], where),
                ct_path=ct_path,
                source=SOURCE,
                study_index=per_patient.get(patient, 0),
                lung_mask_path=optional["lung_mask"],
                lesion_mask_path=optional["mask"],
                extra={k: v for k, v in row.items() if k not in known and v},
            )
        )
        per_patient[patient] = per_patient.get(patient, 0) + 1
    return check_unique_ids(records, f"manifest {csv_path}")


def is_generic_manifest(csv_path: Path) -> bool:
    """Whether ``csv_path`` is a CSV whose header has the required manifest columns."""
    return csv_header(csv_path) >= set(REQUIRED_COLUMNS)

