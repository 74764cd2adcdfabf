"""``covidweak evaluate severity --data DIR --weights ... --out report.json``: Kim et al.'s Tables 2-3 metrics."""

from __future__ import annotations

import json
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Evaluate chest X-ray severity networks on held-out radiographs as in Kim et al.'s Tables 2 and 3: MSE, MAE, "
    "Pearson CC and R^2 of the global score (0-6) and the mean AUC of the six lung zones, through the whole "
    "pipeline (lung network, map, ROI max pooling). Writes a JSON report and prints a Markdown table beside the "
    "paper's numbers."
)


def add_task_parser(tasks) -> None:
    parser = tasks.add_parser("severity", help="chest X-ray severity (Tables 2-3 of Kim et al.)", description=DESCRIPTION)
    parser.add_argument("--data", type=Path, required=True, help="dataset with radiographs and 3x2 arrays (a phantom)")
    parser.add_argument("--out", type=Path, required=True, help="JSON report to write")
    parser.add_argument("--weights", nargs="+", default=["severity-light"],
                        help="severity weight files or registry names, one row each (default: severity-light)")
    parser.add_argument("--labels", nargs="+", default=None, help="row names, one per --weights (default: the names)")
    parser.add_argument("--lungs-weights", default="cxr-lungs-light", help="lung network (default: cxr-lungs-light)")
    parser.add_argument("--split", choices=("test", "val", "all"), default="test",
                        help="test or val: the held-out test or validation patients of the run that trained registered "
                        "weights; all: every study")
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..device import resolve_device
    from ..errors import InputError
    from ..progress import command_progress
    from ..severity.cxr_evaluate import evaluate, markdown_table
    from ..io.atomic import write_text

    if args.out.exists() and not args.overwrite:
        raise InputError(f"report {args.out} already exists: choose another --out or pass --overwrite")
    report = evaluate(args.data, args.weights, args.lungs_weights, args.split, str(resolve_device(args.device)),
                      args.labels, command_progress(args, "evaluate"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(markdown_table(report))
    print(f"wrote {args.out}")
    return 0
