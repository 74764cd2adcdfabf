"""``covidweak evaluate weakseg --data DIR --out report.json``: Table 1 of M-SEAM-NAM on held-out patients."""

from __future__ import annotations

import json
from pathlib import Path

from ..device import add_device_argument
from .segment import add_model_arguments

DESCRIPTION = (
    "Evaluate lesion segmentation models per patient as in Table 1 of M-SEAM-NAM (positive patients: Dice, recall, "
    "precision; negative patients: Dice 1 if nothing is segmented else 0; all patients: Dice) plus a T_fg sweep "
    "0.1-0.8 from the same probability maps. Writes a JSON report and prints a Markdown table."
)


def add_task_parser(tasks) -> None:
    from ..weakseg.evaluate import SWEEP_T_FG
    from ..weakseg.infer import DEFAULT_BATCH_SIZE, T_BG, T_FG

    weakseg = tasks.add_parser("weakseg", help="CT lesion segmentation (Table 1 of M-SEAM-NAM)", description=DESCRIPTION)
    weakseg.add_argument("--data", type=Path, required=True, help="dataset folder with lesion masks (e.g. a phantom)")
    weakseg.add_argument("--out", type=Path, required=True, help="JSON report to write")
    add_model_arguments(weakseg, multiple=True)
    weakseg.add_argument("--split", choices=("test", "val", "all"), default="test",
                         help="test: the training run's held-out patients (seed from the weights); val: its validation "
                              "patients, where thresholds are chosen; all: every study")
    weakseg.add_argument("--t-fg", type=float, default=T_FG, help=f"foreground threshold for Table 1 (default: {T_FG})")
    weakseg.add_argument("--t-fg-from", type=Path, default=None, metavar="VAL_REPORT",
                         help="take T_fg from a report of --split val: the threshold of its sweep with the best mean "
                              "Dice over all patients (one method only)")
    weakseg.add_argument("--t-bg", type=float, default=T_BG, help=f"background threshold (default: {T_BG})")
    weakseg.add_argument("--sweep", type=float, nargs="+", default=list(SWEEP_T_FG), metavar="T",
                         help="thresholds scored from the same maps (default: Fig. 3's " + " ".join(map(str, SWEEP_T_FG)) + ")")
    weakseg.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="slices per network batch")
    add_device_argument(weakseg)
    weakseg.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    weakseg.set_defaults(func=run)


def run(args) -> int:
    from ..errors import InputError
    from ..models import METHODS
    from ..progress import command_progress
    from ..weakseg.evaluate import chosen_t_fg, evaluate_methods, markdown_table, read_validation_report
    from ..io.atomic import write_text

    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method(s) {', '.join(unknown)}: choose from {', '.join(METHODS)}")
    if args.out.exists() and not args.overwrite:
        raise InputError(f"report {args.out} already exists: choose another --out or pass --overwrite")
    t_fg = args.t_fg
    if args.t_fg_from is not None:
        if len(args.methods) != 1:
            raise InputError("--t-fg-from chooses one method's threshold: evaluate one method per call")
        t_fg = chosen_t_fg(read_validation_report(args.t_fg_from), args.methods[0])
        print(f"T_fg {t_fg} (chosen on the validation report {args.t_fg_from})")
    report = evaluate_methods(args.data, args.methods, args.weights, args.split, t_fg, args.t_bg, args.device,
                              args.batch_size, command_progress(args, "evaluate"), args.sweep)
    if args.t_fg_from is not None:
        report["t_fg_chosen_on"] = str(args.t_fg_from)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(markdown_table(report))
    print(f"wrote {args.out}")
    return 0
