"""The cases of a batch: which CT each one reads, found from a folder or a CSV manifest.

Three kinds of ``--input``:

* a folder of image files (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd): one case per file;
* a folder of DICOM studies: one case per sub-folder that holds DICOM files
  (both kinds may be mixed in one folder);
* a CSV manifest, or a folder holding ``manifest.csv``, in any layout that
  :func:`covidweak.datasets.open_dataset` reads (the generic ``path,label,patient_id``
  manifest or the phantom's).

Nothing is read here beyond file names and headers: a file that turns out to
be broken becomes a failed case later, never a failed batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from covidweak.errors import InputError

CASE_ID_PATTERN = re.compile(r"[^A-Za-z0-9._-]+")
DICOM_SUFFIXES = ("", ".dcm", ".ima")
"""DICOM files are often named without an extension; these are the names worth opening to check."""


@dataclass(frozen=True)
class Case:
    """One CT of the batch. ``case_id`` names its output folder; ``dicom`` is True for a series folder."""

    case_id: str
    path: Path
    dicom: bool = False
    diagnosis: str = "unknown"


def safe_case_id(name: str) -> str:
    """``name`` with every character outside letters, digits, ``._-`` replaced by ``_`` (a folder name)."""
    cleaned = CASE_ID_PATTERN.sub("_", name).strip("._")
    return cleaned or "case"


def image_stem(path: Path) -> str:
    from covidweak.io.files import image_suffix

    suffix = image_suffix(path)
    return path.name[: -len(suffix)] if suffix else path.name


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` starts like a DICOM Part 10 file (128-byte preamble, then ``DICM``)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def holds_dicom(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in DICOM_SUFFIXES and is_dicom_file(p) for p in folder.iterdir())


def cases_in_folder(folder: Path) -> list[Case]:
    """Image files and DICOM series folders directly inside ``folder``, sorted by name."""
    from covidweak.io import READ_SUFFIXES
    from covidweak.io.files import image_suffix

    cases = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir() and holds_dicom(path):
            cases.append(Case(safe_case_id(path.name), path, dicom=True))
        elif path.is_file() and image_suffix(path) in READ_SUFFIXES:
            cases.append(Case(safe_case_id(image_stem(path)), path))
    return cases


def cases_in_manifest(path: Path) -> list[Case]:
    from covidweak.datasets import open_dataset

    return [Case(safe_case_id(r.study_id), Path(r.ct_path), dicom=Path(r.ct_path).is_dir(), diagnosis=r.diagnosis)
            for r in open_dataset(path)]


def find_cases(source: Path) -> list[Case]:
    """The cases of ``source`` (see the module notes); InputError when there are none or ids collide."""
    from covidweak.datasets.phantom import MANIFEST_NAME

    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"--input {source}: no such file or folder; check the path")
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise InputError(f"--input {source.name} is a file but not a CSV manifest: give a folder of CTs or a .csv")
        cases = cases_in_manifest(source)
    elif (source / MANIFEST_NAME).is_file():
        cases = cases_in_manifest(source)
    else:
        cases = cases_in_folder(source)
    if not cases:
        raise InputError(f"{source} holds no CT: give a folder of .nii.gz/.nrrd/.mha files or DICOM series "
                         "folders, or a CSV manifest")
    seen: dict[str, Path] = {}
    for case in cases:
        if case.case_id in seen:
            raise InputError(f"{seen[case.case_id].name} and {case.path.name} both give case id '{case.case_id}': "
                             "rename one of them")
        seen[case.case_id] = case.path
    return cases
