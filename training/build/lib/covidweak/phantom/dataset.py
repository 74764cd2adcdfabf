"""A dataset of phantom patients with follow-ups, and its manifest."""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ..progress import Progress
from .config import PATTERNS, PhantomConfig
from .study import FILES, generate_study, write_study

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("study_id", "patient_id", "study_index", "diagnosis", *FILES, "meta", "n_lesions", "severity_global")
DEFAULT_MIX = {"covid": 0.5, "cap": 0.25, "normal": 0.25}
MAX_PATIENTS = 10_000
"""Patient seeds are seed * MAX_PATIENTS + patient number, readable and collision-free."""


def check_mix(mix: Optional[dict]) -> dict[str, float]:
    mix = dict(DEFAULT_MIX if mix is None else mix)
    unknown = sorted(set(mix) - set(PATTERNS))
    if unknown:
        raise InputError(f"unknown pattern(s) {', '.join(unknown)} in mix; use {', '.join(PATTERNS)}")
    if any(not np.isfinite(w) or w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise InputError(f"mix weights {mix} must be non-negative with a positive sum, e.g. covid=0.5,cap=0.25,normal=0.25")
    return mix


def allocate_patterns(patients: int, mix: Optional[dict], seed: int) -> list[str]:
    """Patterns for ``patients`` patients in proportion to ``mix``.

    Largest-remainder allocation (every pattern with weight > 0 gets a patient when
    there are at least as many patients as such patterns), then a seeded shuffle.
    """
    mix = check_mix(mix)
    names = [p for p in PATTERNS if mix.get(p, 0) > 0]
    weights = np.array([mix[p] for p in names], dtype=float)
    quota = weights / weights.sum() * patients
    counts = np.floor(quota).astype(int)
    if patients >= len(names):
        counts = np.maximum(counts, 1)
    while counts.sum() > patients:  # the minimum of one was granted beyond quota: take it back from the largest
        surplus = np.where(counts > 1, counts - quota, -np.inf)
        counts[np.argmax(surplus)] -= 1
    for i in np.argsort(-(quota - counts), kind="stable")[: patients - counts.sum()]:
        counts[i] += 1
    out = [name for name, c in zip(names, counts) for _ in range(c)]
    np.random.default_rng(seed).shuffle(out)
    return out


def generate_dataset(out_dir, patients: int, studies_per_patient: int, seed: int,
                     config: PhantomConfig = PhantomConfig(), mix: Optional[dict] = None,
                     progress: Optional[Progress] = None) -> Path:
    """Write ``patients`` x ``studies_per_patient`` studies and ``manifest.csv`` into ``out_dir``.

    Studies are written to a temporary folder inside ``out_dir`` and moved into place
    only when all are done, so a cancelled run leaves nothing half-written.
    Returns the manifest path.
    """
    if not 1 <= int(patients) <= MAX_PATIENTS:
        raise InputError(f"patients must be 1-{MAX_PATIENTS}, got {patients}")
    if int(studies_per_patient) < 1:
        raise InputError(f"studies per patient must be at least 1, got {studies_per_patient}")
    config.validate()
    patterns = allocate_patterns(int(patients), mix, int(seed))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    total = int(patients) * int(studies_per_patient)
    staging = Path(tempfile.mkdtemp(prefix=".phantom-", dir=out))
    rows = []
    try:
        done = 0
        if progress is not None:
            progress.update(0, total, "phantom")
        for number, pattern in enumerate(patterns):
            patient_seed = int(seed) * MAX_PATIENTS + number
            for index in range(int(studies_per_patient)):
                study = generate_study(patient_seed, index, pattern, config)
                write_study(study, staging)
                rows.append(_manifest_row(study))
                done += 1
                if progress is not None:
                    progress.update(done, total, f"phantom {study.study_id}")
        for row in rows:
            target = out / row["study_id"]
            if target.exists():
                shutil.rmtree(target)
            (staging / row["study_id"]).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = out / MANIFEST
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def _manifest_row(study) -> dict:
    row = {"study_id": study.study_id, "patient_id": study.patient_id, "study_index": study.study_index,
           "diagnosis": study.diagnosis}
    for name in FILES:
        row[name] = f"{study.study_id}/{name}.nii.gz"
    row["meta"] = f"{study.study_id}/meta.json"
    row["n_lesions"] = len(study.meta["lesions"])
    row["severity_global"] = study.meta["severity_global"]
    return row
