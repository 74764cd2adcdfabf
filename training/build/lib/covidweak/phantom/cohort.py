"""What a written phantom cohort looks like beside the papers' patients.

``cohort_stats`` reads a dataset folder (manifest.csv plus studies) and measures lung
involvement, the share of slices with lesion and the lesion mix; ``cohort_table`` puts
those figures beside the references in a markdown table.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .burden import CT_BANDS, MOSMED_CT_SHARES, involvement_category
from .dataset import MANIFEST
from .grid import Grid
from .lesions import SMALL_RADIUS_MM, TYPE_NAMES

MSEAM_TEST_SETS = {"hospital 1": (4725, 24304, 65, 48), "hospital 2": (5303, 25447, 68, 49)}
"""M-SEAM-NAM (Sec. 3.1) test sets: lesion slices, all slices, positive and negative patients."""
WU_OWN_LESIONS = {"ggo": 54, "partial consolidation": 9, "consolidation": 14}
"""Wu et al. (Sec. 5.3, Table 7): radiologists' types of the 77 lesions detected in their own
13 COVID-19 patients. Partial consolidation is not crazy-paving: a loose reference only."""
SMALL_LESION_MM = SMALL_RADIUS_MM[1]
"""A lesion is small when its volume equals a sphere under this radius (reference mm)."""


def _study_figures(root: Path, row: dict) -> dict:
    """Figures of one study: involvement, slice counts, lesion voxels and lesions per type."""
    meta = json.loads((root / row["meta"]).read_text())
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(root / row["lungs"]))) > 0  # (z, y, x)
    lesions = sitk.GetArrayFromImage(sitk.ReadImage(str(root / row["lesions"])))  # (z, y, x) type 0-3
    grid = Grid(int(meta["size"]), int(meta["slices"]), tuple(meta["spacing"]))
    scale = float(np.cbrt(np.prod(grid.scale)))  # physical mm per reference mm
    small_ml = 4.0 / 3.0 * np.pi * (SMALL_LESION_MM * scale) ** 3 / 1000.0
    return {
        "diagnosis": row["diagnosis"],
        "involvement": float(np.count_nonzero(lesions)) / max(int(lungs.sum()), 1),
        "slices": lesions.shape[0],
        "lesion_slices": int(lesions.any(axis=(1, 2)).sum()),
        "lung_slices": int(lungs.any(axis=(1, 2)).sum()),
        "voxels": np.bincount(lesions.reshape(-1), minlength=4)[1:4],
        "counts": np.bincount([l["type"] for l in meta["lesions"]], minlength=4)[1:4],
        "small": sum(l["volume_ml"] < small_ml for l in meta["lesions"]),
        "n_lesions": len(meta["lesions"]),
        "drawn_category": (meta.get("burden") or {}).get("ct_category"),  # None before generator 1.2
    }


def cohort_stats(folder) -> dict:
    """Figures of the phantom dataset in ``folder`` (every study of its manifest).

    Returns a dict: ``studies``/``positive_studies`` counts; ``involvement`` (the COVID-19
    studies' lesion / lung voxel fractions, sorted: MosMedData grades COVID-19 only) and its
    ``median``; ``ct_shares`` {1..4: share of COVID-19 studies in MosMedData's category},
    ``drawn_ct_shares`` (the categories the generator drew, from meta.json) and
    ``category_agreement`` (share of COVID-19 studies whose measured category is the drawn
    one); slice shares with lesion
    ``slices_all`` (every study, negatives included), ``slices_positive`` (studies of
    positive patients), ``slices_positive_lung`` (their slices holding lung);
    ``small_per_patient`` (share of COVID-19 studies with a small lesion; CAP keeps 1.1's
    plan, see ``lesions.plan_cap``) and
    ``small_share`` (of all lesions); ``types`` {diagnosis: {"volume": {name: share},
    "count": {name: share}}}.
    """
    root = Path(folder)
    if not (root / MANIFEST).is_file():
        raise InputError(f"{root} has no {MANIFEST}; give a folder written by covidweak phantom")
    with open(root / MANIFEST, newline="") as handle:
        figures = [_study_figures(root, row) for row in csv.DictReader(handle)]
    if not figures:
        raise InputError(f"{root / MANIFEST} lists no studies")
    positive = [f for f in figures if f["diagnosis"] != "normal"]
    covid = [f for f in positive if f["diagnosis"] == "covid"]
    involvement = sorted(f["involvement"] for f in covid)
    categories = [involvement_category(v) for v in involvement]
    drawn = [f["drawn_category"] for f in covid]

    def share(rows, key, total="slices"):
        return sum(f[key] for f in rows) / max(sum(f[total] for f in rows), 1)

    return {
        "studies": len(figures),
        "positive_studies": len(positive),
        "involvement": involvement,
        "median": float(np.median(involvement)) if involvement else 0.0,
        "ct_shares": {k: categories.count(k) / max(len(covid), 1) for k in CT_BANDS},
        "drawn_ct_shares": {k: drawn.count(k) / max(len(covid), 1) for k in CT_BANDS},
        "category_agreement": float(np.mean([involvement_category(f["involvement"]) == f["drawn_category"]
                                             for f in covid])) if covid else 0.0,
        "slices_all": share(figures, "lesion_slices"),
        "slices_positive": share(positive, "lesion_slices"),
        "slices_positive_lung": share(positive, "lesion_slices", "lung_slices"),
        "small_per_patient": float(np.mean([f["small"] > 0 for f in covid])) if covid else 0.0,
        "small_share": sum(f["small"] for f in positive) / max(sum(f["n_lesions"] for f in positive), 1),
        "types": {d: _type_mix([f for f in positive if f["diagnosis"] == d])
                  for d in sorted({f["diagnosis"] for f in positive})},
    }


def _type_mix(rows: list[dict]) -> dict:
    """{"volume": {type name: share of lesion voxels}, "count": {type name: share of lesions}}."""
    out = {}
    for key, label in (("voxels", "volume"), ("counts", "count")):
        total = np.sum([f[key] for f in rows], axis=0)
        out[label] = {TYPE_NAMES[t]: float(total[t - 1] / max(total.sum(), 1)) for t in TYPE_NAMES}
    return out


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def cohort_table(stats: dict) -> str:
    """Markdown table: the phantom's figures beside MosMedData's and the papers'."""
    mseam = [(lesion / slices, lesion / (slices * pos / (pos + neg)), pos / (pos + neg))
             for lesion, slices, pos, neg in MSEAM_TEST_SETS.values()]
    positive_share = np.mean([p for _, _, p in mseam])
    wu_total = sum(WU_OWN_LESIONS.values())
    q1, q3 = np.percentile(stats["involvement"], [25, 75]) if stats["involvement"] else (0.0, 0.0)
    lines = [
        "| figure | phantom | reference |",
        "|---|---|---|",
    ]
    names = {1: "CT-1 (< 25 %)", 2: "CT-2 (25-50 %)", 3: "CT-3 (50-75 %)", 4: "CT-4 (≥ 75 %)"}
    for k in CT_BANDS:
        lines.append(f"| COVID-19 studies in {names[k]} (drawn) | {_pct(stats['ct_shares'][k])} "
                     f"({_pct(stats['drawn_ct_shares'][k])}) | MosMedData {_pct(MOSMED_CT_SHARES[k])} |")
    lines += [
        f"| COVID-19 studies measured in the category drawn for them | {_pct(stats['category_agreement'])} | – |",
        f"| lung involvement of COVID-19 studies, median (quartiles) | {_pct(stats['median'])} "
        f"({_pct(q1)}–{_pct(q3)}) | – |",
        f"| slices with lesion, all slices of the cohort ({stats['studies'] - stats['positive_studies']} of "
        f"{stats['studies']} studies negative) | {_pct(stats['slices_all'])} | M-SEAM-NAM test sets "
        f"{' / '.join(_pct(a) for a, _, _ in mseam)} (~42 % of patients negative) |",
        f"| same, reweighted to M-SEAM-NAM's {_pct(positive_share)} positive patients (comparable) | "
        f"{_pct(stats['slices_positive'] * positive_share)} | {' / '.join(_pct(a) for a, _, _ in mseam)} |",
        f"| slices with lesion among positive patients' slices | {_pct(stats['slices_positive'])} | "
        f"≈ {' / '.join(_pct(b) for _, b, _ in mseam)} (if every patient had as many slices) |",
        f"| slices with lesion among positive patients' lung slices | {_pct(stats['slices_positive_lung'])} | "
        "not reported |",
        f"| COVID-19 studies with a small lesion (< {SMALL_LESION_MM:g} mm equivalent radius) | "
        f"{_pct(stats['small_per_patient'])} | – |",
        f"| small lesions among all lesions | {_pct(stats['small_share'])} | – |",
    ]
    for diagnosis, mix in stats["types"].items():
        for label in ("count", "volume"):
            shares = " / ".join(_pct(v) for v in mix[label].values())
            reference = "–"
            if diagnosis == "covid" and label == "count":
                reference = ("Wu et al., own patients: GGO / partial consolidation / consolidation "
                             + " / ".join(_pct(v / wu_total) for v in WU_OWN_LESIONS.values()))
            lines.append(f"| {diagnosis} lesions by {label}: GGO / crazy-paving / consolidation | {shares} | {reference} |")
    return "\n".join(lines)
