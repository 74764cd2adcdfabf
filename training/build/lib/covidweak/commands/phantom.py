"""``covidweak phantom``: write a synthetic chest CT / X-ray dataset with exact labels."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..errors import InputError


def parse_spacing(text: str) -> tuple[float, float, float]:
    """"X,Y,Z" in mm -> (x, y, z)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(v > 0 for v in values):
        raise InputError(f"--spacing {text!r} is invalid; give three positive millimetre values X,Y,Z, e.g. 1.4,1.4,5")
    return values


def parse_mix(text: str) -> dict[str, float]:
    """"covid=0.5,cap=0.25,normal=0.25" -> {"covid": 0.5, ...}."""
    from ..phantom.dataset import check_mix

    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = None
        if not sep or weight is None:
            raise InputError(f"--mix entry {part!r} is invalid; write NAME=WEIGHT pairs, e.g. covid=0.5,cap=0.25,normal=0.25")
        mix[name.strip()] = weight
    if not mix:
        raise InputError("--mix is empty; write NAME=WEIGHT pairs, e.g. covid=0.5,cap=0.25,normal=0.25")
    return check_mix(mix)


def run(args: argparse.Namespace) -> int:
    from ..phantom import MANIFEST, PhantomConfig, generate_dataset
    from ..progress import command_progress

    out = Path(args.out)
    config = PhantomConfig(size=args.size, slices=args.slices, spacing=parse_spacing(args.spacing),
                           lesion_scale=args.lesion_scale)
    config.validate()
    mix = parse_mix(args.mix)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST).exists():
            raise InputError(f"--out {out} is a non-empty folder that is not a phantom dataset; choose an empty folder")
        if not args.overwrite:
            raise InputError(f"--out {out} already holds a phantom dataset; pass --overwrite to replace it")
        _remove_dataset(out)
    manifest = generate_dataset(out, patients=args.patients, studies_per_patient=args.studies_per_patient,
                                seed=args.seed, config=config, mix=mix, progress=command_progress(args, "phantom"))
    print(f"wrote {args.patients * args.studies_per_patient} studies; manifest: {manifest}")
    return 0


def _remove_dataset(out: Path) -> None:
    """Delete the studies a previous run listed in its manifest, and the manifest."""
    import csv

    from ..phantom import MANIFEST

    with open(out / MANIFEST, newline="") as handle:
        for row in csv.DictReader(handle):
            folder = out / row.get("study_id", "")
            if row.get("study_id") and folder.is_dir() and folder.parent == out:
                shutil.rmtree(folder)
    (out / MANIFEST).unlink()


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "phantom", help="generate a synthetic chest CT/X-ray dataset with lung and lesion labels",
        description="Generate phantom patients (covid / cap / normal) with follow-up studies: CT, lung and lesion "
                    "masks, a radiograph with its lung mask and 3x2 severity array, weak slice labels, and a manifest. "
                    "COVID-19 patients' lung involvement follows MosMedData's CT-1..CT-4 mix (generator 1.2).",
    )
    parser.add_argument("--out", required=True, help="output folder (created; must be empty or an earlier phantom dataset)")
    parser.add_argument("--patients", type=int, required=True)
    parser.add_argument("--studies-per-patient", type=int, default=1, help="baseline plus follow-ups per patient")
    parser.add_argument("--seed", type=int, required=True, help="same seed, same data")
    parser.add_argument("--size", type=int, default=256, help="in-plane pixels (default 256)")
    parser.add_argument("--slices", type=int, default=64, help="axial slices (default 64)")
    parser.add_argument("--spacing", default="1.4,1.4,5", help="voxel spacing X,Y,Z in mm (default 1.4,1.4,5)")
    parser.add_argument("--lesion-scale", type=float, default=1.0,
                        help="multiply every lesion's size after each COVID-19 patient's lung involvement was drawn "
                             "from MosMedData's CT categories (default 1: that calibrated cohort; 2 exaggerates it)")
    parser.add_argument("--mix", default="covid=0.5,cap=0.25,normal=0.25", help="pattern weights NAME=W,...")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing phantom dataset in --out")
    parser.set_defaults(func=run)
