"""Usage: python scripts/merge_manifests.py ROOT PART [PART ...]

Write ROOT/manifest.csv listing the studies of every ROOT/PART/manifest.csv (phantom cohorts generated
at different sizes), with file paths made relative to ROOT, so one training run reads them all.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

PATH_COLUMNS = ("ct", "lungs", "lesions", "cxr", "cxr_lungs", "meta")
"""Manifest columns that hold file paths relative to the manifest's folder."""


def main(root: Path, parts: list[str]) -> None:
    rows = []
    for part in parts:
        with open(root / part / "manifest.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                rows.append({key: f"{part}/{value}" if key in PATH_COLUMNS and value else value for key, value in row.items()})
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
