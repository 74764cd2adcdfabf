"""Patient-level train/validation/test splits, and the split files stored with training runs.

Splitting is by patient, never by slice or study: slices of one scan, and
follow-up scans of one patient, are near-duplicates, and letting them reach
both training and test inflates every metric (DuCN Sec. 3.1 splits "in
patient-level" for this reason).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError
from ..records import StudyRecord
from .common import check_unique_ids

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
SPLIT_FILE_VERSION = 1


def split_by_patient(
    records: Sequence[StudyRecord],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    stratify: bool = True,
) -> dict[str, list[StudyRecord]]:
    """Assign whole patients to "train", "val" and "test".

    Patient counts per split follow ``fractions`` (largest remainder), except
    that every split with a non-zero fraction gets at least one patient when
    there are enough patients, so small datasets still have a test set. With
    ``stratify`` each diagnosis is spread over the splits in proportion as far
    as the counts allow; a patient whose studies carry different diagnoses
    forms a stratum of that combination. Rare strata are placed first so they
    reach every split. Deterministic for a given ``seed`` and set of records;
    records keep their input order within each split.
    """
    fractions = _check_fractions(fractions)
    records = check_unique_ids(list(records), "split_by_patient")
    if not records:
        raise InputError("no studies to split: the dataset reader returned nothing")
    by_patient: dict[str, list[StudyRecord]] = defaultdict(list)
    for record in records:
        by_patient[record.patient_id].append(record)
    targets = _split_sizes(len(by_patient), fractions)

    strata: dict[str, list[str]] = defaultdict(list)
    for patient, studies in sorted(by_patient.items()):
        key = "+".join(sorted({s.diagnosis for s in studies})) if stratify else "all"
        strata[key].append(patient)
    rng = random.Random(seed)
    assigned: dict[str, int] = {}
    filled = [0] * len(SPLIT_NAMES)
    for key in sorted(strata, key=lambda k: (len(strata[k]), k)):
        patients = strata[key]
        rng.shuffle(patients)
        placed = [0] * len(SPLIT_NAMES)
        for patient in patients:
            open_splits = [k for k in range(len(SPLIT_NAMES)) if filled[k] < targets[k]]
            # Most under-filled split for this stratum, relative to its share; ties go to the
            # split with the most room left overall, then to the earlier split.
            best = max(
                open_splits,
                key=lambda k: ((fractions[k] * len(patients) - placed[k]) / fractions[k],
                               (targets[k] - filled[k]) / targets[k], -k),
            )
            assigned[patient] = best
            placed[best] += 1
            filled[best] += 1
    return {name: [r for r in records if assigned[r.patient_id] == k] for k, name in enumerate(SPLIT_NAMES)}


def write_split(path: Path, splits: dict[str, list[StudyRecord]], seed: Optional[int] = None,
                fractions: Optional[Sequence[float]] = None) -> Path:
    """Save a split as JSON: study ids and patient ids per split, plus how it was made."""
    _check_no_leak(splits)
    document = {
        "version": SPLIT_FILE_VERSION,
        "seed": seed,
        "fractions": list(fractions) if fractions is not None else None,
        "studies": {name: [r.study_id for r in splits.get(name, [])] for name in SPLIT_NAMES},
        "patients": {name: sorted({r.patient_id for r in splits.get(name, [])}) for name in SPLIT_NAMES},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def read_split(path: Path, records: Sequence[StudyRecord], allow_new: bool = False) -> dict[str, list[StudyRecord]]:
    """Rebuild a saved split from ``records`` (the same dataset, read again).

    Every study id in the file must be among ``records``; a study in
    ``records`` but not in the file is an error unless ``allow_new``, in
    which case it is left out (it was not part of the run being reproduced).
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise InputError(f"split file not found or unreadable: {path}; check the run folder") from None
    except ValueError as error:
        raise InputError(f"split file {path} is not valid JSON ({error}); restore it or make a new split") from None
    if not isinstance(document, dict) or document.get("version") != SPLIT_FILE_VERSION:
        raise InputError(f"split file {path} is not a version {SPLIT_FILE_VERSION} covidweak split; make a new split")
    studies = document.get("studies") or {}
    by_id = {r.study_id: r for r in check_unique_ids(list(records), "read_split")}
    listed = {sid for name in SPLIT_NAMES for sid in studies.get(name, [])}
    unknown = sorted(listed - set(by_id))
    if unknown:
        raise InputError(f"split file {path} names {len(unknown)} study id(s) missing from the dataset, e.g. "
                         f"'{unknown[0]}': point to the dataset the split was made from")
    new = sorted(set(by_id) - listed)
    if new and not allow_new:
        raise InputError(f"the dataset has {len(new)} study id(s) not in split file {path}, e.g. '{new[0]}': "
                         "use the dataset the split was made from, or allow new studies to leave them out")
    splits = {name: [by_id[sid] for sid in studies.get(name, [])] for name in SPLIT_NAMES}
    _check_no_leak(splits)
    return splits


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(f) for f in fractions)
    if len(values) != len(SPLIT_NAMES) or min(values) < 0 or abs(sum(values) - 1.0) > 1e-6 or values[0] == 0:
        raise InputError(f"split fractions {tuple(fractions)} are invalid: give three non-negative numbers "
                         "(train, val, test) summing to 1 with train > 0, e.g. 0.7 0.15 0.15")
    return values


def _split_sizes(n_patients: int, fractions: tuple[float, ...]) -> list[int]:
    """Patients per split: largest remainder of ``n * fraction``, then at least one per non-empty fraction."""
    ideal = [n_patients * f for f in fractions]
    sizes = [int(v) for v in ideal]
    by_remainder = sorted(range(len(ideal)), key=lambda k: (-(ideal[k] - sizes[k]), k))
    for k in by_remainder[: n_patients - sum(sizes)]:
        sizes[k] += 1
    for k, fraction in enumerate(fractions):
        if fraction > 0 and sizes[k] == 0:
            donor = max(range(len(sizes)), key=lambda j: (sizes[j], -j))
            if sizes[donor] > 1:
                sizes[donor] -= 1
                sizes[k] += 1
    return sizes


def _check_no_leak(splits: dict[str, list[StudyRecord]]) -> None:
    """InputError when a patient appears in two splits (a hand-edited or mismatched split)."""
    owner: dict[str, str] = {}
    for name in SPLIT_NAMES:
        for record in splits.get(name, []):
            previous = owner.setdefault(record.patient_id, name)
            if previous != name:
                raise InputError(f"patient '{record.patient_id}' is in both {previous} and {name}: "
                                 "splits must keep each patient's studies together; make a new split")
