"""Running a batch: each case in a fresh MRML scene, in bounded parallel, resumable, never stopped by one bad case.

Output folder::

    batch.json            the options of the batch (a rerun must use the same ones)
    summary.csv           one row per case: figures, status (done / failed / pending), error
    index.html            every case with a link to its report; the table sorts on a click
    cases/<case_id>/      the case's files, case.json last (see :mod:`.manifest`)

A case is computed in ``cases/.<case_id>.partial`` and renamed into place only
when all its files and its case.json are written, so a killed batch leaves
either a finished case or a partial folder that the next run removes. A rerun
skips every case whose case.json lists files that still hash to the recorded
sha256; a failed case is tried again (its input may have been fixed).

Parallelism: ``jobs`` worker processes on CPU, each loading the network once.
On a GPU one process runs the cases one after another with the network loaded
once; several processes would each hold a copy of it in GPU memory and contend
for the same device.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, fields
from pathlib import Path
from typing import Optional

from covidweak.errors import CancelledError, CovidWeakError, InputError
from covidweak.progress import Progress
from .cases import Case, find_cases
from .manifest import verified_manifest, write_manifest
from .steps import STEPS, BatchOptions, CaseContext, check_steps

BATCH_FILE = "batch.json"
SUMMARY_FILE = "summary.csv"
INDEX_FILE = "index.html"
CASES_DIR = "cases"
REPORT_FILE = "report.html"
SUMMARY_COLUMNS = ("case_id", "status", "lesion_count", "lesion_volume_ml", "lung_volume_ml", "involvement_percent",
                   "right_percent", "left_percent", "ct_severity_score", "diagnosis",
                   "diagnosis_probability", "similar_top_study", "similar_top_diagnosis",
                   "runtime_s", "input", "error", "report")
SLICE_VIEWS = ("Red", "Yellow", "Green")
"""Slicer's axial, sagittal and coronal views in the default layout."""
RESULT_OPTIONS = ("method", "weights", "t_fg", "t_bg", "lesion_boxes", "steps", "similar_index", "similar_k",
                  "ducn_weights", "diagnosis_weights")
"""Options that change a case's results: a rerun with other values would mix two analyses in one folder."""


def prepare_output(out: Path, options: BatchOptions) -> None:
    """Create ``out`` or check it is this batch's folder, with the same result options."""
    out = Path(out)
    record = out / BATCH_FILE
    wanted = {key: value for key, value in asdict(options).items() if key in RESULT_OPTIONS}
    wanted["steps"] = list(wanted["steps"])
    if record.is_file():
        # A batch.json from before an option existed ran with that option's default.
        defaults = {f.name: f.default for f in fields(BatchOptions)}
        earlier = {**defaults, "steps": list(defaults["steps"]), **json.loads(record.read_text(encoding="utf-8"))}
        changed = [key for key in RESULT_OPTIONS if earlier.get(key) != wanted[key]]
        if changed:
            shown = ", ".join(f"{key} {earlier.get(key)!r} -> {wanted[key]!r}" for key in changed)
            raise InputError(f"{out} holds a batch run with other settings ({shown}): use another --output "
                             "or the same settings to resume it")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--output {out} exists and is not a batch folder: give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    _write_text(record, json.dumps(wanted, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    from covidweak.io.atomic import write_text

    write_text(Path(path), text)


def case_facts(case: Case, manifest: dict) -> list[tuple[str, str]]:
    from covidweak import __version__

    return [("Input", str(case.path)), ("Input kind", "DICOM series" if case.dicom else "image file"),
            ("Diagnosis label of the input list", case.diagnosis),
            ("Processed", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(manifest["finished"]))),
            ("Software", f"covidweak {__version__}")]


def run_case(case: Case, out: Path, options: BatchOptions) -> dict:
    """Run every step on ``case`` and write its folder; returns its summary row (never raises for a bad case)."""
    folder = Path(out) / CASES_DIR / case.case_id
    done = verified_manifest(folder)
    if done is not None:
        return summary_row(case, done, reused=True)
    start = time.perf_counter()
    partial = Path(out) / CASES_DIR / f".{case.case_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    scene = None
    try:
        scene, context = open_case(case, partial, options)
        for name in options.steps:
            STEPS[name](context)
        manifest = finish_case(context, time.perf_counter() - start)
        if folder.exists():  # a folder whose files no longer match its case.json: computed again
            shutil.rmtree(folder)
        partial.rename(folder)
        return summary_row(case, manifest)
    except CancelledError:
        raise
    except CovidWeakError as error:
        return failed_row(case, str(error), time.perf_counter() - start)
    except Exception as error:  # an unforeseen failure of one case must not stop the others
        where = traceback.extract_tb(error.__traceback__)[-1]
        return failed_row(case, f"internal error {type(error).__name__}: {error} "
                                f"(at {Path(where.filename).name}:{where.lineno}); please report it",
                          time.perf_counter() - start)
    finally:
        if scene is not None:
            scene.Clear(True)
        shutil.rmtree(partial, ignore_errors=True)


def open_case(case: Case, folder: Path, options: BatchOptions):
    """A fresh scene holding the case's CT (read and checked), and the step context around it.

    The scene is the case's own, never Slicer's ``slicer.mrmlScene``: the Logics
    take it as an argument. It gets the three slice views' composite nodes, so
    the modules set CT and overlay in them as in the application, and the saved
    bundle opens with the overlay on.
    """
    import slicer

    from covidweak.io import read_ct
    from covidweak.slicer.mrml import volume_node_from_image

    image = read_ct(case.path)
    scene = slicer.vtkMRMLScene()
    for layout in SLICE_VIEWS:
        composite = slicer.vtkMRMLSliceCompositeNode()
        composite.SetLayoutName(layout)  # also its singleton tag: Slicer merges it into that view on load
        scene.AddNode(composite)
    volume = volume_node_from_image(image, scene=scene, name=case.case_id)
    return scene, CaseContext(case, scene, volume, image, folder, options)


def finish_case(context: CaseContext, runtime_s: float) -> dict:
    """Save the CT into the scene bundle, write the report(s) and, last, case.json."""
    from covidweak.report.html import case_report
    from .scene_files import write_bundle

    # The CT goes into the bundle (so the .mrb opens complete) but not in the case folder beside it.
    context.volume.AddDefaultStorageNode()
    context.volume.GetStorageNode().SetFileName(f"{context.case.case_id}.nrrd")
    write_bundle(context.scene, context.folder / "scene.mrb")
    context.outputs["scene"] = "scene.mrb"
    manifest = {"case_id": context.case.case_id, "input": str(context.case.path), "status": "done",
                "steps": list(context.options.steps), "figures": context.figures, "models": context.models,
                "runtime_s": round(runtime_s, 3), "finished": time.time()}
    report = context.folder / REPORT_FILE
    _write_text(report, case_report(context.case.case_id, case_facts(context.case, manifest), context.sections,
                                    context.models))
    context.outputs["report"] = REPORT_FILE
    if context.options.pdf:
        from .render import render_pdf

        render_pdf(report, context.folder / "report.pdf")
        context.outputs["report_pdf"] = "report.pdf"
    return write_manifest(context.folder, manifest, context.outputs)


def summary_row(case: Case, manifest: dict, reused: bool = False) -> dict:
    row = {"case_id": case.case_id, "status": "done", "input": str(case.path), "error": "",
           "runtime_s": manifest.get("runtime_s", ""), "report": f"{CASES_DIR}/{case.case_id}/{REPORT_FILE}"}
    row.update({k: v for k, v in manifest.get("figures", {}).items() if k in SUMMARY_COLUMNS})
    row["reused"] = reused
    return row


def failed_row(case: Case, error: str, runtime_s: float) -> dict:
    return {"case_id": case.case_id, "status": "failed", "input": str(case.path), "error": error,
            "runtime_s": round(runtime_s, 3), "report": ""}


def pending_row(case: Case) -> dict:
    return {"case_id": case.case_id, "status": "pending", "input": str(case.path), "error": "", "report": ""}


def write_summary(out: Path, rows: list[dict]) -> None:
    """summary.csv and index.html for ``rows`` (in case order), each replaced atomically."""
    from covidweak.report.html import index_page

    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_text(Path(out) / SUMMARY_FILE, stream.getvalue())
    _write_text(Path(out) / INDEX_FILE, index_page(SUMMARY_COLUMNS, rows))


def _worker_setup(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def effective_jobs(jobs: int, device: str) -> int:
    """``jobs`` on CPU; 1 on a GPU (one process, the network loaded once; see the module notes)."""
    from covidweak.device import resolve_device

    if jobs < 1:
        raise InputError(f"--jobs {jobs}: give 1 or more worker processes")
    return 1 if resolve_device(device).type == "cuda" else jobs


def run_batch(source: Path, out: Path, options: BatchOptions, jobs: int = 1,
              progress: Optional[Progress] = None) -> list[dict]:
    """Run every case of ``source`` (see :func:`COVIDBatchLib.cases.find_cases`) into ``out``.

    Returns the summary rows in case order (also written to summary.csv and
    index.html after each case). ``progress`` counts cases.
    """
    check_steps(options.steps)
    cases = find_cases(source)
    prepare_output(out, options)
    jobs = min(effective_jobs(jobs, options.device), len(cases))
    rows = {case.case_id: pending_row(case) for case in cases}
    progress = progress or Progress()
    finished = 0

    def record(row: dict) -> None:
        nonlocal finished
        rows[row["case_id"]] = row
        finished += 1
        write_summary(out, [rows[case.case_id] for case in cases])
        progress.update(finished, len(cases), f"{row['case_id']}: {row['status']}")

    write_summary(out, list(rows.values()))
    progress.update(0, len(cases), "cases")
    if jobs == 1:
        for case in cases:
            record(run_case(case, out, options))
    else:
        import multiprocessing
        import os

        threads = max(1, (os.cpu_count() or 1) // jobs)
        # spawn, not fork: VTK and torch hold threads and state that a forked child must not inherit.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_setup, initargs=(threads,)) as pool:
            futures = [pool.submit(run_case, case, out, options) for case in cases]
            try:
                for future in as_completed(futures):
                    record(future.result())
            except CancelledError:
                for future in futures:
                    future.cancel()
                raise
    return [rows[case.case_id] for case in cases]
