"""``covidweak evaluate ducn --data DIR --out report.json``: DuCN detection (Table 1) and retrieval precision."""

from __future__ import annotations

import json
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Evaluate DuCN weights on held-out patients: COVID-19 detection (sensitivity, specificity, precision, F1, "
    "accuracy, AUC per slice and per study, beside the paper's Table 1) and similar-case retrieval (precision@k and "
    "mAP, ground truth the same patient or the same lesion pattern). Writes a JSON report and prints Markdown."
)


def add_task_parser(tasks) -> None:
    from ..similar.library import DEFAULT_WEIGHTS

    ducn = tasks.add_parser("ducn", help="DuCN detection and similar-case retrieval", description=DESCRIPTION)
    ducn.add_argument("--data", type=Path, required=True, help="dataset folder (a phantom with follow-up studies)")
    ducn.add_argument("--out", type=Path, required=True, help="JSON report to write")
    ducn.add_argument("--weights", default=None, help=f"DuCN weight file or registry name (default: {DEFAULT_WEIGHTS})")
    ducn.add_argument("--split-file", type=Path, default=None,
                      help="split.json of the training run: evaluate its test studies (default: the split recorded "
                           "in the registry entry, else every study)")
    ducn.add_argument("--batch-size", type=int, default=16, help="slices per network batch")
    add_device_argument(ducn)
    ducn.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    ducn.set_defaults(func=run)


def run(args) -> int:
    from ..errors import InputError
    from ..progress import command_progress
    from ..similar.evaluate import evaluate_ducn, markdown_tables
    from ..io.atomic import write_text

    if args.out.exists() and not args.overwrite:
        raise InputError(f"report {args.out} already exists: choose another --out or pass --overwrite")
    report = evaluate_ducn(args.data, args.weights, args.split_file, args.device, args.batch_size,
                           command_progress(args, "evaluate ducn"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(markdown_tables(report))
    print(f"wrote {args.out}")
    return 0
