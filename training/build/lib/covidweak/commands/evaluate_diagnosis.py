"""``covidweak evaluate diagnosis --data DIR --weights W... --out report.json``: Tables 3-4 of Hu et al."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Evaluate COVID-19 / CAP / normal classifiers per study on held-out patients as in Tables 3-4 of Hu et al. "
    "(accuracy, precision, sensitivity, specificity, AUC with 95% patient-bootstrap intervals; three-way models "
    "also per class). Give several --weights to compare tasks or contrast augmentation (CA) against none (NCA). "
    "Writes a JSON report and prints Markdown tables."
)


def add_task_parser(tasks) -> None:
    from ..diagnosis.metrics import BOOTSTRAP_RESAMPLES

    parser = tasks.add_parser("diagnosis", help="CT diagnosis covid/cap/normal (Tables 3-4 of Hu et al.)",
                              description=DESCRIPTION)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder with diagnoses (e.g. a phantom)")
    parser.add_argument("--out", type=Path, required=True, help="JSON report to write")
    parser.add_argument("--weights", nargs="+", default=["diagnosis-light"],
                        help="weight files or registry names of method 'diagnosis' (default: diagnosis-light)")
    parser.add_argument("--split", choices=("test", "all"), default="test",
                        help="test: each model's held-out patients (seed stored with the weights), all: every study")
    parser.add_argument("--resamples", type=int, default=BOOTSTRAP_RESAMPLES, help="bootstrap resamples")
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=run)


def _json_safe(tree):
    """NaN (an undefined metric) -> null, so the report is strict JSON."""
    if isinstance(tree, dict):
        return {k: _json_safe(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_json_safe(v) for v in tree]
    return None if isinstance(tree, float) and math.isnan(tree) else tree


def run(args) -> int:
    from ..diagnosis.evaluate import evaluate_models, markdown_tables
    from ..errors import InputError
    from ..progress import command_progress
    from ..io.atomic import write_text

    if args.out.exists() and not args.overwrite:
        raise InputError(f"report {args.out} already exists: choose another --out or pass --overwrite")
    if args.resamples < 100:
        raise InputError(f"--resamples {args.resamples} is too few for a 95% interval: use at least 100")
    report = evaluate_models(args.data, args.weights, args.split, args.device, args.resamples, command_progress(args, "evaluate"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(_json_safe(report), indent=2) + "\n")
    print(markdown_tables(report))
    print(f"wrote {args.out}")
    return 0
