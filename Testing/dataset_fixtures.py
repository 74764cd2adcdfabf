"""Builders of tiny datasets in each public dataset's on-disk layout, written at test time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY_SHAPE = (8, 16, 16)  # (z, y, x)

MA_CASES = ("coronacases_org_001", "coronacases_org_002",
            "radiopaedia_org_covid-19-pneumonia-10_85902_1-dcm", "radiopaedia_org_covid-19-pneumonia-10_85902_3-dcm")


def write_volume(path: Path, value: int = 0, dtype=np.int16) -> Path:
    """Write a TINY_SHAPE volume filled with ``value``; the format follows the suffix."""
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(np.full(TINY_SHAPE, value, dtype=dtype))
    image.SetSpacing((0.8, 0.8, 2.5))
    sitk.WriteImage(image, str(path))
    return path


def make_covid19_ct_seg(root: Path, cases=MA_CASES, masks=True, suffix=".nii.gz") -> Path:
    """Zenodo 3757476 layout: COVID-19-CT-Seg_20cases/, Lung_Mask/, Infection_Mask/, Lung_and_Infection_Mask/."""
    from covidweak.datasets.covid19_ct_seg import mask_name

    for case in cases:
        write_volume(root / "COVID-19-CT-Seg_20cases" / f"{case}{suffix}", -1000)
        if masks:
            for folder in ("Lung_Mask", "Infection_Mask", "Lung_and_Infection_Mask"):
                write_volume(root / folder / f"{mask_name(case)}{suffix}", 1, np.uint8)
    return root


def make_mosmeddata(root: Path) -> Path:
    """COVID19_1110 layout: studies/CT-0..CT-4/study_NNNN.nii.gz and masks/study_NNNN_mask.nii.gz."""
    studies = {"CT-0": (1, 2), "CT-1": (255, 256), "CT-2": (700,), "CT-4": (1100,)}
    for category, numbers in studies.items():
        for number in numbers:
            write_volume(root / "studies" / category / f"study_{number:04d}.nii.gz", -1000)
    write_volume(root / "masks" / "study_0255_mask.nii.gz", 1, np.uint8)
    return root


def make_cc_ccii(root: Path, slices: int = 4) -> Path:
    """CC-CCII layout: <NCP|CP|Normal>/<patient>/<scan>/<slice>.png (slices numbered without padding)."""
    from PIL import Image

    scans = {"NCP": {"1": ("1001", "1002"), "2": ("1003",)}, "CP": {"1": ("2001",)}, "Normal": {"7": ("3001",)}}
    for class_name, patients in scans.items():
        for patient, scan_ids in patients.items():
            for scan in scan_ids:
                folder = root / class_name / patient / scan
                folder.mkdir(parents=True)
                for k in range(slices):
                    # Slice k has grey level 10 * k, so slice order is visible in the volume.
                    Image.fromarray(np.full((12, 10), 10 * k, dtype=np.uint8)).save(folder / f"{k}.png")
    return root
