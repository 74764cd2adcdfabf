"""``covidweak evaluate TASK``: trained models against a dataset's ground truth.

Each task lives in ``covidweak.commands.evaluate_<task>`` and exposes
``add_task_parser(tasks)``, which registers its sub-subcommand and sets ``func``.
"""

from __future__ import annotations

import importlib

EVALUATE_TASKS = ("weakseg", "diagnosis", "ducn", "severity", "fecnn")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate trained models on a dataset with ground truth",
                                   description="Evaluate trained models on a dataset with ground truth.")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for name in EVALUATE_TASKS:
        importlib.import_module(f"covidweak.commands.evaluate_{name}").add_task_parser(tasks)
