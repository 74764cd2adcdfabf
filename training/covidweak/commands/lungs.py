"""``covidweak lungs CT --out lungs.nii.gz``: right/left lung masks and their volumes."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import InputError

DESCRIPTION = (
    "Segment the right (label 1) and left (label 2) lungs of a chest CT in HU (classical, plus a small CT lung "
    "network that puts back consolidated lung), write the label image and print each lung's volume."
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("lungs", help="right/left lung segmentation of a chest CT", description=DESCRIPTION)
    parser.add_argument("ct", type=Path, help="CT volume: .nii/.nii.gz/.nrrd/.mha file or a DICOM series folder")
    parser.add_argument("--out", type=Path, required=True, help="output label image (.nii.gz, .nrrd or .mha)")
    parser.add_argument("--classical", action="store_true",
                        help="the classical mask alone, without the CT lung network's step")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..io import WRITE_SUFFIXES, read_ct, write_image
    from ..io.files import image_suffix
    from ..lungs import LEFT, RIGHT, segment_lungs
    from ..metrics import label_volumes_ml
    from ..progress import command_progress

    out: Path = args.out
    # Refuse before minutes of work rather than after.
    if image_suffix(out) not in WRITE_SUFFIXES:
        raise InputError(f"--out {out.name}: unsupported format; end the name with one of {', '.join(WRITE_SUFFIXES)}")
    if out.exists() and not args.overwrite:
        raise InputError(f"output {out} already exists: choose another --out or pass --overwrite")
    ct = read_ct(args.ct)
    start = time.perf_counter()
    labels = segment_lungs(ct, progress=command_progress(args, "lungs"), learned=not args.classical)
    seconds = time.perf_counter() - start
    written = write_image(labels, out, overwrite=args.overwrite)
    volumes = label_volumes_ml(labels, labels.GetSpacing(), (RIGHT, LEFT))
    print(f"right lung: {volumes[RIGHT]:.1f} mL")
    print(f"left lung: {volumes[LEFT]:.1f} mL")
    print(f"wrote {written} ({seconds:.1f} s)")
    return 0
