"""``covidweak export RUN_DIR --name NAME``: ship a trained run's weights into the model registry."""

from __future__ import annotations

from pathlib import Path

DESCRIPTION = (
    "Write the best (or last) checkpoint of a training run as a covidweak weight file into the models "
    "folder (default: Resources/Models) and add its entry -- sha256, task, config, training data, metrics -- "
    "to models.json. Files must stay under 16 MB: --half stores float16 weights."
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export a training run's weights to the model registry",
                                   description=DESCRIPTION)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by covidweak train")
    parser.add_argument("--name", required=True, help="registry name; the file is NAME.pt")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which checkpoint to export (default: best)")
    parser.add_argument("--models-dir", type=Path, help="models folder (default: Resources/Models of the repository)")
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model of this name")
    parser.add_argument("--hu-floor", type=float, default=None, metavar="HU",
                        help="weak-seg weights: lung at or below this attenuation is never lesion (e.g. -700; "
                             "default: the run config's, else no gate)")
    parser.add_argument("--t-fg-from", type=Path, default=None, metavar="VAL.json",
                        help="weak-seg weights: a validation report of covidweak evaluate weakseg; the T_fg it chose "
                             "becomes the file's T_fg 0.1 (a logit offset), and its size sweep sets the minimum lesion volume")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..training.export import export_run
    from ..weakseg.evaluate import read_validation_report

    validation = read_validation_report(args.t_fg_from) if args.t_fg_from else None
    entry = export_run(args.run_dir, args.name, checkpoint=args.checkpoint, folder=args.models_dir,
                       half=args.half, overwrite=args.overwrite, hu_floor=args.hu_floor, validation=validation)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in entry["metrics"].items()) or "no validation metrics"
    print(f"exported {entry['name']} ({entry['file']}, {entry['size_bytes'] / 2**20:.2f} MB, {entry['dtype']}) "
          f"from epoch {entry['epoch']}: {shown}")
    return 0
