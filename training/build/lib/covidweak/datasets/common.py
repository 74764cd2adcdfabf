"""Layout checks shared by the dataset readers: folders, volume files, CSV tables."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from ..errors import InputError
from ..records import StudyRecord

VOLUME_SUFFIXES = (".nii.gz", ".nii")


def require_dir(path: Path, what: str) -> Path:
    """``path`` as an existing directory, else InputError naming ``what``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise InputError(f"{what} folder not found: {path}; check the path points to the unpacked download")
    return path


def find_child_dir(root: Path, names: Sequence[str]) -> Optional[Path]:
    """The first sub-folder of ``root`` whose name matches one of ``names`` (case-insensitive)."""
    wanted = [n.lower() for n in names]
    children = {c.name.lower(): c for c in sorted(root.iterdir()) if c.is_dir()} if root.is_dir() else {}
    for name in wanted:
        if name in children:
            return children[name]
    return None


def volume_stem(name: str) -> Optional[str]:
    """``name`` without its NIfTI suffix, or None when it is not a NIfTI name."""
    lower = name.lower()
    for suffix in VOLUME_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def volume_files(folder: Path) -> dict[str, Path]:
    """NIfTI volumes in ``folder`` keyed by name without suffix, sorted by name.

    Some repackaged downloads unpack every ``x.nii`` into a folder ``x.nii/``
    holding the file; such a folder stands for the file inside it.
    """
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        stem = volume_stem(entry.name)
        if stem is None or entry.name.startswith("."):
            continue
        if entry.is_dir():
            inner = entry / entry.name
            if not inner.is_file():
                continue
            entry = inner
        found[stem] = entry
    return found


def natural_number(text: str) -> Optional[int]:
    """The last run of digits in ``text`` as an int (slice and scan numbers), or None."""
    digits = re.findall(r"\d+", text)
    return int(digits[-1]) if digits else None


def read_table(path: Path, required: Iterable[str], what: str) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts with stripped values; InputError for missing columns or no rows."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}; check the path")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in required if c not in columns]
        if missing:
            raise InputError(
                f"{what} {path} lacks column(s) {', '.join(missing)}; it has {', '.join(columns) or 'no header'}: "
                "add the missing columns to the header row"
            )
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    rows = [row for row in rows if any(row.values())]
    if not rows:
        raise InputError(f"{what} {path} has a header but no rows: add one row per study")
    return rows


def resolve_file(base: Path, value: str, what: str, where: str) -> Path:
    """``value`` (absolute, or relative to ``base``) as an existing path, else InputError naming ``where``."""
    if not value:
        raise InputError(f"{where}: the {what} path is empty; fill it in or remove the row")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        raise InputError(f"{where}: {what} file not found: {path}; fix the path or restore the file")
    return path


def number_studies(records: list[StudyRecord], order: Optional[Callable[[StudyRecord], object]] = None) -> list[StudyRecord]:
    """Set each patient's ``study_index`` to 0, 1, ... in ``order`` (default: study_id); returns ``records``."""
    seen: dict[str, int] = {}
    for record in sorted(records, key=order or (lambda r: r.study_id)):
        record.study_index = seen.get(record.patient_id, 0)
        seen[record.patient_id] = record.study_index + 1
    return records


def check_unique_ids(records: list[StudyRecord], where: str) -> list[StudyRecord]:
    """InputError when two records share a study_id (splits and run folders key on it)."""
    seen: set[str] = set()
    for record in records:
        if record.study_id in seen:
            raise InputError(f"{where}: study_id '{record.study_id}' occurs twice; give every study a unique id")
        seen.add(record.study_id)
    return records


def csv_header(csv_path: Path) -> set[str]:
    """Column names of a CSV file; empty when it is missing or not readable text."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        return set()
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            return {c.strip() for c in next(csv.reader(handle), [])}
    except (OSError, UnicodeDecodeError, csv.Error):
        return set()
