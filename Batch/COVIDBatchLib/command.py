"""``covidweak batch --input DIR_OR_CSV --output DIR``: the Slicer modules' Logics over many CTs, headless.

The extension's Python distribution (the repository's ``pyproject.toml``) plugs this module into
the ``covidweak`` command line through the ``covidweak.commands`` entry point, so ``covidweak``
itself never imports the extension. The same options drive ``Resources/Scripts/covid_batch.py``
inside Slicer (``Slicer --no-main-window --python-script ... -- --input ...``) and with the pip
``slicer-core`` (``python covid_batch.py ...``); both call :func:`run`.
"""

from __future__ import annotations

from pathlib import Path

from covidweak.device import add_device_argument

DESCRIPTION = (
    "Run the extension's modules (lesion segmentation; more as they gain batch steps) on every CT of a folder "
    "(NIfTI/NRRD/MHA files or DICOM series folders) or CSV manifest. Per case: a fresh MRML scene, the module "
    "outputs (probability .nii.gz, segmentation .seg.nrrd, tables .tsv, boxes .json), a Slicer scene bundle "
    "(.mrb), an HTML report and, for DICOM input, a DICOM SEG. Writes summary.csv and index.html; a rerun "
    "resumes, skipping finished cases. Research use only."
)


def add_arguments(parser) -> None:
    """The batch options, shared by the subcommand and covid_batch.py."""
    from .steps import DEFAULT_STEPS, STEPS

    parser.add_argument("--input", type=Path, required=True,
                        help="folder of CT files / DICOM series folders, or a CSV manifest")
    parser.add_argument("--output", type=Path, required=True, help="batch folder (new, empty, or an earlier run "
                        "of the same batch to resume)")
    parser.add_argument("--method", default="mseamnam", help="lesion segmentation method (default: mseamnam)")
    parser.add_argument("--weights", default="", help="weight file or registry name (default: <method>-light)")
    parser.add_argument("--t-fg", type=float, default=None, help="foreground threshold T_fg (default: the module's)")
    parser.add_argument("--t-bg", type=float, default=None, help="background threshold T_bg (default: the module's)")
    parser.add_argument("--lesion-boxes", action="store_true", help="also add the multi-scale CAM lesion boxes")
    parser.add_argument("--steps", nargs="+", default=None, metavar="MODULE",
                        help=f"modules to run, in order, from {' '.join(STEPS)} (default: {' '.join(DEFAULT_STEPS)}, "
                             "plus COVIDSimilarCase with --similar-index)")
    parser.add_argument("--similar-index", type=Path, default=None,
                        help="case index folder (covidweak index build): adds the similar-case search to each report")
    parser.add_argument("--similar-k", type=int, default=5, help="similar cases per report (default: 5)")
    parser.add_argument("--ducn-weights", default="", help="DuCN weights of the index (default: ducn-light)")
    parser.add_argument("--diagnosis-weights", default="",
                        help="COVID-19 / CAP / normal classifier of the COVIDSeverity step (default: diagnosis-light)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes on CPU (default: 1; on a GPU "
                        "always 1 with the network loaded once)")
    parser.add_argument("--pdf", action="store_true", help="also print each report to PDF (needs PySide6 or Slicer)")
    parser.add_argument("--no-dicom-seg", action="store_true", help="do not write DICOM SEG files for DICOM input")
    add_device_argument(parser)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("batch", help="run the Slicer modules headless over many CTs",
                                   description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


def options_from(args):
    from .steps import DEFAULT_STEPS, BatchOptions, check_steps

    steps = args.steps or [*DEFAULT_STEPS, *(["COVIDSimilarCase"] if args.similar_index else [])]
    return BatchOptions(method=args.method, weights=args.weights, t_fg=args.t_fg, t_bg=args.t_bg, device=args.device,
                        lesion_boxes=args.lesion_boxes, steps=check_steps(steps),
                        similar_index=str(args.similar_index.resolve()) if args.similar_index else None,
                        similar_k=args.similar_k, ducn_weights=args.ducn_weights,
                        diagnosis_weights=args.diagnosis_weights, pdf=args.pdf, dicom_seg=not args.no_dicom_seg)


def run(args) -> int:
    """Run the batch; exit status 0 when every case is done, 1 when some failed (listed in summary.csv)."""
    from covidweak.optional import require
    from covidweak.progress import command_progress
    from .runner import SUMMARY_FILE, run_batch

    # Each case would fail on its own, as an internal error, without an MRML scene to run in.
    require("slicer", "covidweak batch (the module Logics run on an MRML scene)")
    if args.pdf:
        from covidweak.errors import InputError
        from .render import qt_available

        if not qt_available():
            raise InputError("--pdf needs Qt (PySide6, or run inside Slicer): install PySide6 or leave out --pdf")
    rows = run_batch(args.input, args.output, options_from(args), jobs=args.jobs, progress=command_progress(args, "batch"))
    failed = [row for row in rows if row["status"] == "failed"]
    reused = sum(1 for row in rows if row.get("reused"))
    print(f"{len(rows) - len(failed)} of {len(rows)} cases done ({reused} from an earlier run), {len(failed)} failed; "
          f"see {Path(args.output) / SUMMARY_FILE} and index.html; research use only")
    for row in failed:
        print(f"  {row['case_id']}: {row['error']}")
    return 1 if failed else 0
