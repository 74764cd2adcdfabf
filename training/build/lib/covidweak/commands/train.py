"""``covidweak train TASK --data DIR --out RUN_DIR``: train one network headless, resumably."""

from __future__ import annotations

import os
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Train one of the project's networks on a dataset (a folder or manifest that `covidweak phantom` or a "
    "public dataset reader understands). Settings come from the task's paper config in training/configs/ "
    "or --config, adjusted with --set key=value. The run folder gets the resolved config, the patient "
    "split, metrics.csv, TensorBoard logs and checkpoints; --resume continues it exactly. Under "
    "`torchrun --nproc-per-node N -m covidweak train ...` the run is data-parallel."
)


def add_parser(subparsers) -> None:
    from ..training.config import add_config_arguments
    from ..training.tasks import TASKS

    parser = subparsers.add_parser("train", help="train a network (configs, checkpoints, resume)",
                                   description=DESCRIPTION)
    parser.add_argument("task", metavar="TASK", help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder or manifest.csv")
    parser.add_argument("--out", type=Path, required=True, help="run folder (new, or existing with --resume)")
    add_config_arguments(parser, "the task's paper config")
    add_device_argument(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..progress import command_progress
    from ..training.session import train

    result = train(args.task, args.data, args.out, config_file=args.config, overrides=args.overrides,
                   device=args.device, resume=args.resume, progress=command_progress(args, "train"))
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 alone reports
    best = "none" if result.best_value is None else f"{result.best_value:.4g} at epoch {result.best_epoch}"
    stopped = " (early stopping)" if result.stopped_early else ""
    print(f"trained {result.epochs} epoch(s), {result.step} update(s){stopped}; best {best}; run folder {args.out}")
    return 0
