"""``covidweak segment CT --out DIR``: lesion probability, mask, lesion table and summary of a chest CT."""

from __future__ import annotations

import time
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Segment COVID-19 lesions in a chest CT (HU) with a weakly supervised model and write lesion_prob.nii.gz, "
    "lesion_seg.nii.gz, lungs.nii.gz, lesions.csv and summary.json into --out. Research use only."
)


METHOD_HELP = "mseamnam, seamnam, seam, cam, mscam or unet"


def add_model_arguments(parser, multiple: bool = False) -> None:
    """``--method``/``--weights`` shared by segment, evaluate and bench (checked in
    :func:`covidweak.models.load_lesion_model`, so that building the parser does not import torch)."""
    if multiple:
        parser.add_argument("--methods", nargs="+", default=["mseamnam"], help=f"methods to evaluate: {METHOD_HELP} "
                            "(default: mseamnam)")
        parser.add_argument("--weights", nargs="+", default=None,
                            help="weight files or registry names, one per method (default: <method>-light)")
    else:
        parser.add_argument("--method", default="mseamnam", help=f"segmentation method: {METHOD_HELP} (default: mseamnam)")
        parser.add_argument("--weights", default=None,
                            help="weight file or registry name (default: the shipped <method>-light)")


def add_parser(subparsers) -> None:
    from ..weakseg.infer import DEFAULT_BATCH_SIZE, T_BG, T_FG

    parser = subparsers.add_parser("segment", help="weakly supervised lesion segmentation of a chest CT",
                                   description=DESCRIPTION)
    parser.add_argument("ct", type=Path, help="CT volume: .nii/.nii.gz/.nrrd/.mha file or a DICOM series folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_model_arguments(parser)
    parser.add_argument("--lungs", type=Path, default=None, help="lung label image 0/1/2 on the CT grid "
                        "(default: computed as `covidweak lungs` does)")
    parser.add_argument("--t-fg", type=float, default=T_FG, help=f"foreground threshold T_fg (default: {T_FG})")
    parser.add_argument("--t-bg", type=float, default=T_BG, help=f"background threshold T_bg (default: {T_BG})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"slices per network batch (default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--lesion-boxes", action="store_true",
                        help="also write lesion_boxes.json: Hu et al.'s boxes from a multi-scale CAM's saliency")
    parser.add_argument("--box-weights", default=None,
                        help="multi-scale CAM weights for --lesion-boxes (default: --weights when --method is mscam, "
                             "else the shipped mscam-light)")
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..io import read_ct, read_image
    from ..models import load_lesion_model
    from ..progress import command_progress
    from ..weakseg.infer import check_thresholds, segment_ct
    from ..weakseg.outputs import BOXES_FILE, OUTPUT_FILES, check_writable, write_outputs

    # Refuse cheap mistakes before reading a CT and loading a network.
    check_writable(args.out, args.overwrite, {**OUTPUT_FILES, **({"boxes": BOXES_FILE} if args.lesion_boxes else {})})
    check_thresholds(args.t_fg, args.t_bg)
    model = load_lesion_model(args.method, args.weights, args.device)
    boxer = None
    if args.lesion_boxes:
        default = args.weights if args.method == "mscam" else None
        boxer = load_lesion_model("mscam", args.box_weights or default, args.device)
    ct = read_ct(args.ct)
    lungs = read_image(args.lungs) if args.lungs else None
    start = time.perf_counter()
    progress = command_progress(args, "segment")
    result = segment_ct(ct, model, lungs=lungs, t_fg=args.t_fg, t_bg=args.t_bg, batch_size=args.batch_size,
                        device=args.device, progress=progress)
    if boxer is not None:
        from ..weakseg.saliency import lesion_boxes

        result.boxes = lesion_boxes(ct, boxer, result.lungs, device=args.device, progress=progress)
    paths = write_outputs(result, args.out, overwrite=args.overwrite)
    summary = result.summary
    print(f"{summary['lesion_count']} lesions, {summary['lesion_volume_ml']:.1f} mL, "
          f"{summary['involvement']['total']['percent']:.1f}% of {summary['lung_volume_ml']['total']:.0f} mL lung "
          f"({summary['method']}, T_fg {args.t_fg}, {summary['device']})")
    print(f"wrote {len(paths)} files to {args.out} ({time.perf_counter() - start:.1f} s); research use only")
    return 0
