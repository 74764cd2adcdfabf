"""Reader for MosMedData: Chest CT Scans with COVID-19 Related Findings (Morozov et al., 2020).

Expected layout (the unpacked ``COVID19_1110`` archive)::

    root/
      studies/CT-0/study_0001.nii.gz ...   normal lung tissue, no CT signs of viral pneumonia
      studies/CT-1/ ... studies/CT-4/      COVID-19 findings, severity 1 (<25 % of lung) to 4 (>75 %)
      masks/study_0255_mask.nii.gz ...     (optional) binary masks of ground glass and consolidation

The release has no patient identifiers, so each study is taken as its own
patient; the severity category is kept in ``extra["severity_category"]``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..records import StudyRecord
from .common import check_unique_ids, find_child_dir, require_dir, volume_files

SOURCE = "mosmeddata"
CATEGORIES = {f"CT-{k}": k for k in range(5)}
"""Category folder -> severity 0..4 (MosMedData README: CT-0 normal, CT-1..CT-4 increasing COVID-19 extent)."""
MASK_SUFFIX = "_mask"


def is_mosmeddata(root: Path) -> bool:
    """Whether ``root`` holds ``studies/CT-k`` folders."""
    studies = find_child_dir(Path(root), ("studies",))
    return studies is not None and any(find_child_dir(studies, (name,)) for name in CATEGORIES)


def read_mosmeddata(root: Path) -> list[StudyRecord]:
    """One :class:`StudyRecord` per study; masks attached from ``masks/`` when present."""
    root = require_dir(root, "MosMedData")
    studies_dir = find_child_dir(root, ("studies",))
    if studies_dir is None:
        raise InputError(f"{root} has no studies/ folder: point to the unpacked MosMedData folder (COVID19_1110)")
    masks_dir = find_child_dir(root, ("masks",))
    masks = volume_files(masks_dir) if masks_dir is not None else {}
    records = []
    for category, severity in CATEGORIES.items():
        folder = find_child_dir(studies_dir, (category,))
        if folder is None:
            continue
        for stem, path in volume_files(folder).items():
            records.append(
                StudyRecord(
                    study_id=stem,
                    patient_id=stem,
                    diagnosis="normal" if severity == 0 else "covid",
                    ct_path=path,
                    source=SOURCE,
                    lesion_mask_path=masks.get(stem + MASK_SUFFIX),
                    extra={"severity_category": severity},
                )
            )
    if not records:
        raise InputError(f"{studies_dir} holds no CT-0..CT-4 folders with .nii.gz studies: unpack the MosMedData archive there")
    return check_unique_ids(records, f"MosMedData {root}")
