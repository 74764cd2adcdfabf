"""The output folder of ``covidweak segment`` and reading it back.

Files (names fixed, so Slicer and scripts find them)::

    lesion_prob.nii.gz   float32 lesion probability 0-1, the CT's grid, 0 outside the lungs
    lesion_seg.nii.gz    uint8 mask, probability > t_fg
    lungs.nii.gz         uint8 lung labels 0 / 1 right / 2 left used for the analysis
    lesions.csv          one row per connected lesion (columns: lesions.LESION_COLUMNS)
    summary.json         volumes, involvement, thresholds, model, runtime, version
    lesion_boxes.json    Hu et al. lesion boxes (RAS corners, centre, size, slices, score), when asked for

Nothing is written when any file exists and ``overwrite`` is false, so a folder never
mixes the files of two runs.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional

from ..errors import InputError
from ..io.atomic import write_text
from .infer import T_BG, T_FG, SegmentResult
from .lesions import LESION_COLUMNS

OUTPUT_FILES = {"probability": "lesion_prob.nii.gz", "mask": "lesion_seg.nii.gz", "lungs": "lungs.nii.gz",
                "lesions": "lesions.csv", "summary": "summary.json"}
INTEGER_COLUMNS = {"id", "bbox_i_min", "bbox_j_min", "bbox_k_min", "bbox_i_max", "bbox_j_max", "bbox_k_max"}
TEXT_COLUMNS = {"lung", "zone"}
BOXES_FILE = "lesion_boxes.json"


def output_paths(out_dir: Path, files: Optional[dict[str, str]] = None) -> dict[str, Path]:
    return {key: Path(out_dir) / name for key, name in (files or OUTPUT_FILES).items()}


def check_writable(out_dir: Path, overwrite: bool = False, files: Optional[dict[str, str]] = None) -> dict[str, Path]:
    """The paths of ``files`` (key -> file name; default: this command's) in ``out_dir``, or InputError
    when one exists and ``overwrite`` is false (call before working). Every command writing a fixed set
    of files into a folder checks it here."""
    paths = output_paths(out_dir, files)
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise InputError(f"--out {out_dir} is a file: give a folder")
    existing = [p.name for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{out_dir} already holds {', '.join(existing)}: choose another --out or pass --overwrite")
    return paths


def lesions_csv_text(rows: list[dict]) -> str:
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=LESION_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return stream.getvalue()


def write_outputs(result: SegmentResult, out_dir: Path, overwrite: bool = False) -> dict[str, Path]:
    """Write the five files of :data:`OUTPUT_FILES` (and :data:`BOXES_FILE` when ``result`` has boxes)
    into ``out_dir`` (created) and return their paths."""
    from ..io import write_image

    files = {**OUTPUT_FILES, **({"boxes": BOXES_FILE} if result.boxes is not None else {})}
    paths = check_writable(out_dir, overwrite, files)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for key in ("probability", "mask", "lungs"):
        write_image(getattr(result, key), paths[key], overwrite=True)
    write_text(paths["lesions"], lesions_csv_text(result.lesions))
    write_text(paths["summary"], json.dumps(result.summary, indent=2) + "\n")
    if result.boxes is not None:
        write_text(paths["boxes"], json.dumps(result.boxes, indent=2) + "\n")
    return paths


def _typed(row: dict) -> dict:
    def value(key, text):
        if key in TEXT_COLUMNS:
            return text
        return int(text) if key in INTEGER_COLUMNS else float(text)

    return {key: value(key, row[key]) for key in LESION_COLUMNS}


def read_outputs(out_dir: Path) -> SegmentResult:
    """A :class:`SegmentResult` from a folder written by :func:`write_outputs`."""
    from ..io import read_image

    paths = output_paths(out_dir)
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise InputError(f"{out_dir} lacks {', '.join(missing)}: run `covidweak segment` into it first")
    try:
        summary = json.loads(paths["summary"].read_text(encoding="utf-8"))
        with open(paths["lesions"], newline="", encoding="utf-8") as stream:
            lesions = [_typed(row) for row in csv.DictReader(stream)]
        boxes_path = Path(out_dir) / BOXES_FILE
        boxes = json.loads(boxes_path.read_text(encoding="utf-8")) if boxes_path.is_file() else None
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{out_dir}: summary.json, lesions.csv or {BOXES_FILE} is damaged ({error}); "
                         "run segment again") from None
    images = {key: read_image(paths[key]) for key in ("probability", "mask", "lungs")}
    return SegmentResult(lesions=lesions, summary=summary, t_fg=float(summary.get("t_fg", T_FG)),
                         t_bg=float(summary.get("t_bg", T_BG)), boxes=boxes, **images)
