"""``covidweak diagnose CT --out DIR``: COVID-19 / CAP / normal probabilities of a chest CT (Hu et al.)."""

from __future__ import annotations

import time
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Classify a chest CT (HU) as COVID-19, community-acquired pneumonia or normal with Hu et al.'s multi-scale "
    "classifier: every lung slice is classified and the patient probability aggregated from the slices. Writes "
    "diagnosis.json and slices.csv into --out. Research use only: not for diagnosis or treatment decisions."
)
DEFAULT_WEIGHTS = "diagnosis-light"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("diagnose", help="COVID-19 / CAP / normal classification of a chest CT",
                                   description=DESCRIPTION)
    parser.add_argument("ct", type=Path, help="CT volume: .nii/.nii.gz/.nrrd/.mha file or a DICOM series folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS,
                        help=f"weight file or registry name (default: {DEFAULT_WEIGHTS})")
    parser.add_argument("--lungs", type=Path, default=None, help="lung label image 0/1/2 on the CT grid "
                        "(default: computed as `covidweak lungs` does)")
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..device import resolve_device
    from ..diagnosis.model import METHOD
    from ..diagnosis.predict import check_writable, diagnose_ct, write_outputs
    from ..io import read_ct, read_image
    from ..models import load_weights
    from ..progress import command_progress

    start = time.perf_counter()
    # Refuse cheap mistakes before reading a CT and loading a network.
    check_writable(args.out, args.overwrite)
    model = load_weights(args.weights, method=METHOD, device=str(resolve_device(args.device)))
    ct = read_ct(args.ct)
    lungs = read_image(args.lungs) if args.lungs else None
    result = diagnose_ct(ct, model, lungs=lungs, device=args.device, progress=command_progress(args, "diagnose"))
    write_outputs(result, model, args.out, time.perf_counter() - start, overwrite=args.overwrite)
    shown = ", ".join(f"{c} {p:.2f}" for c, p in zip(result.classes, result.probability))
    print(f"{result.prediction} ({shown}; {len(result.slices)} lung slices); wrote diagnosis.json and slices.csv "
          f"to {args.out}; research use only")
    return 0
