"""Reader for the COVID-19 CT Lung and Infection Segmentation Dataset (Ma et al., Zenodo 3757476).

Expected layout (the Zenodo zip files unpacked side by side)::

    root/
      COVID-19-CT-Seg_20cases/   coronacases_org_001.nii.gz, radiopaedia_org_covid-19-pneumonia-4_85506_1-dcm.nii.gz, ...
      Lung_Mask/                 coronacases_001.nii.gz, radiopaedia_4_85506_1.nii.gz, ...   (optional)
      Infection_Mask/            same names as Lung_Mask                                    (optional)
      Lung_and_Infection_Mask/   same names as Lung_Mask                                    (optional)

The Kaggle repackaging (``ct_scans``, ``lung_mask``, ``infection_mask``,
``lung_and_infection_mask`` with ``.nii`` files) is read the same way.
All 20 cases are COVID-19. Masks label 1 left lung and 2 right lung (3
infection in the combined mask); ``extra["lung_label_map"]`` maps them onto
this project's convention (1 right, 2 left). The infection mask is binary.
"""

from __future__ import annotations

import re
from pathlib import Path
from ..errors import InputError
from ..records import StudyRecord
from .common import find_child_dir, number_studies, require_dir, volume_files

SOURCE = "covid19-ct-seg"
CT_FOLDERS = ("COVID-19-CT-Seg_20cases", "ct_scans")
LUNG_FOLDERS = ("Lung_Mask",)  # folder names match case-insensitively (Kaggle: lung_mask)
INFECTION_FOLDERS = ("Infection_Mask",)
COMBINED_FOLDERS = ("Lung_and_Infection_Mask",)
LUNG_LABEL_MAP = {1: 2, 2: 1}
"""Dataset lung label -> project lung label (dataset: 1 left, 2 right)."""
COMBINED_LABEL_MAP = {1: "left lung", 2: "right lung", 3: "infection"}

_CORONACASES = re.compile(r"^coronacases_org_(\d+)$", re.IGNORECASE)
_RADIOPAEDIA = re.compile(r"^radiopaedia_org_covid-19-pneumonia-(\d+)_(\d+)_(\d+)-dcm$", re.IGNORECASE)


def is_covid19_ct_seg(root: Path) -> bool:
    """Whether ``root`` holds this dataset's CT folder."""
    return find_child_dir(Path(root), CT_FOLDERS) is not None


def mask_name(ct_stem: str) -> str:
    """Mask file stem for a CT file stem: ``coronacases_org_001`` -> ``coronacases_001``,
    ``radiopaedia_org_covid-19-pneumonia-4_85506_1-dcm`` -> ``radiopaedia_4_85506_1``."""
    match = _CORONACASES.match(ct_stem)
    if match:
        return f"coronacases_{match.group(1)}"
    match = _RADIOPAEDIA.match(ct_stem)
    if match:
        return "radiopaedia_" + "_".join(match.groups())
    return ct_stem


def patient_name(ct_stem: str) -> str:
    """Patient of a case. Radiopaedia case numbers identify patients: cases 10 and 29 each
    contribute two series, which must stay in one split."""
    match = _CORONACASES.match(ct_stem)
    if match:
        return f"coronacases_{int(match.group(1)):03d}"
    match = _RADIOPAEDIA.match(ct_stem)
    if match:
        return f"radiopaedia_{int(match.group(1))}"
    return ct_stem


def read_covid19_ct_seg(root: Path) -> list[StudyRecord]:
    """One :class:`StudyRecord` per CT volume, with masks where their folders exist."""
    root = require_dir(root, "COVID-19-CT-Seg")
    ct_dir = find_child_dir(root, CT_FOLDERS)
    if ct_dir is None:
        raise InputError(f"{root} has no {CT_FOLDERS[0]}/ folder: point to the folder where the Zenodo zips were unpacked")
    cts = volume_files(ct_dir)
    if not cts:
        raise InputError(f"{ct_dir} holds no .nii or .nii.gz volumes: unpack COVID-19-CT-Seg_20cases.zip into it")
    mask_sets = {
        kind: _masks(root, names, cts)
        for kind, names in (("lungs", LUNG_FOLDERS), ("infection", INFECTION_FOLDERS), ("combined", COMBINED_FOLDERS))
    }
    records = []
    for stem, ct_path in cts.items():
        combined = mask_sets["combined"].get(stem)
        extra = {"lung_label_map": dict(LUNG_LABEL_MAP)}
        if combined is not None:
            extra["lung_and_infection_mask_path"] = combined
            extra["lung_and_infection_labels"] = dict(COMBINED_LABEL_MAP)
        records.append(
            StudyRecord(
                study_id=mask_name(stem),
                patient_id=patient_name(stem),
                diagnosis="covid",
                ct_path=ct_path,
                source=SOURCE,
                lung_mask_path=mask_sets["lungs"].get(stem),
                lesion_mask_path=mask_sets["infection"].get(stem),
                extra=extra,
            )
        )
    return number_studies(records)


def _masks(root: Path, names: tuple[str, ...], cts: dict[str, Path]) -> dict[str, Path]:
    """Mask path per CT stem from one mask folder; every CT must have one when the folder exists."""
    folder = find_child_dir(root, names)
    if folder is None:
        return {}
    files = volume_files(folder)
    missing = [mask_name(stem) for stem in cts if mask_name(stem) not in files]
    if missing:
        raise InputError(
            f"{folder} lacks masks for {len(missing)} case(s), e.g. {missing[0]}.nii.gz: "
            "unpack the complete mask zip or remove the folder"
        )
    return {stem: files[mask_name(stem)] for stem in cts}

