"""A finished case's ``case.json``: its figures, models and every output file with its sha256.

Written last, so its presence marks a finished case; the hashes let a rerun
tell a finished case from one whose files were since changed, truncated or
deleted (that case is computed again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

CASE_FILE = "case.json"


def write_manifest(folder: Path, manifest: dict, outputs: dict) -> dict:
    """``manifest`` plus ``outputs`` ({key: file name in ``folder``}) with their sha256, written as case.json."""
    from covidweak.models.weights import sha256_of
    from covidweak.io.atomic import write_text

    folder = Path(folder)
    manifest = dict(manifest, outputs={key: {"file": name, "sha256": sha256_of(folder / name)}
                                       for key, name in sorted(outputs.items())})
    write_text(folder / CASE_FILE, json.dumps(manifest, indent=2) + "\n")
    return manifest


def verified_manifest(folder: Path) -> Optional[dict]:
    """The case.json of ``folder`` when it is complete and every listed file still has its sha256; else None."""
    from covidweak.models.weights import sha256_of

    path = Path(folder) / CASE_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        outputs = manifest["outputs"]
        intact = manifest.get("status") == "done" and all(
            (Path(folder) / entry["file"]).is_file() and sha256_of(Path(folder) / entry["file"]) == entry["sha256"]
            for entry in outputs.values())
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest if intact else None
