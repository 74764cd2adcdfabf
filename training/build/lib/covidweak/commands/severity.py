"""``covidweak severity IMAGE --out DIR``: COVID-19 severity of a chest radiograph or a chest CT.

A 2-D image (or a 3-D image one slice thick) is a radiograph: Kim et al.'s ViT pipeline
writes severity.json, severity_map.nii.gz and cxr_lungs.nii.gz. Anything else is a CT,
handed to :func:`covidweak.severity.ct.run_ct_severity`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Score COVID-19 severity. A chest radiograph (2-D image) gets Kim et al.'s 3x2 lung-zone array, global score "
    "0-6 and lesion probability map (severity.json, severity_map.nii.gz, cxr_lungs.nii.gz); a chest CT gets a "
    "6-zone involvement score (ct_severity.json, zones.nii.gz). Research use only."
)
CXR_FILES = {"json": "severity.json", "map": "severity_map.nii.gz", "lungs": "cxr_lungs.nii.gz"}


def add_parser(subparsers) -> None:
    from ..weakseg.infer import T_FG

    parser = subparsers.add_parser("severity", help="COVID-19 severity of a chest radiograph or CT",
                                   description=DESCRIPTION)
    parser.add_argument("image", type=Path, metavar="IMAGE",
                        help="radiograph (.nii.gz/.nrrd/.mha/.png-converted 2-D image) or CT (file or DICOM folder)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--severity-weights", default="severity-light",
                        help="radiograph severity network: registry name or weight file (default: severity-light)")
    parser.add_argument("--lungs-weights", default="cxr-lungs-light",
                        help="radiograph lung network: registry name or weight file (default: cxr-lungs-light)")
    parser.add_argument("--seg-method", default="mseamnam", help="CT only: lesion segmentation method (default: mseamnam)")
    parser.add_argument("--seg-weights", default=None,
                        help="CT only: segmentation weights (default: the shipped <seg-method>-light)")
    parser.add_argument("--t-fg", type=float, default=T_FG, help=f"CT only: foreground threshold (default: {T_FG})")
    parser.add_argument("--from-segment", type=Path, default=None,
                        help="CT only: reuse this `covidweak segment` output folder instead of segmenting again")
    parser.set_defaults(func=run)


def is_radiograph(path: Path) -> bool:
    """True for a 2-D image or a 3-D image one slice thick (read from the header only)."""
    import SimpleITK as sitk

    if path.is_dir() or not path.exists():
        return False
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return False  # let the full reader name the problem
    size = reader.GetSize()
    return reader.GetDimension() == 2 or (reader.GetDimension() == 3 and size[2] == 1)


def model_record(source: str, loaded) -> dict:
    return {"name": Path(str(source)).stem if Path(str(source)).suffix else str(source), "sha256": loaded.sha256}


def run(args) -> int:
    if not is_radiograph(args.image):
        from ..severity.ct import run_ct_severity

        return run_ct_severity(args)
    return run_cxr_command(args)


def run_cxr_command(args) -> int:
    import SimpleITK as sitk

    from ..device import resolve_device
    from ..errors import InputError
    from ..io import read_image, write_image
    from ..models.weights import load_weights
    from ..progress import command_progress
    from ..severity.cxr_infer import as_image, result_json, run_cxr
    from ..io.atomic import write_text

    if args.from_segment is not None:
        raise InputError(f"--from-segment is for CTs, but {args.image.name} is a radiograph: leave it out")
    paths = {key: args.out / name for key, name in CXR_FILES.items()}
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out} is a file: give a folder")
    existing = [p.name for p in paths.values() if p.exists()]
    if existing and not args.overwrite:
        raise InputError(f"{args.out} already holds {', '.join(existing)}: choose another --out or pass --overwrite")
    device = str(resolve_device(args.device))
    severity_model = load_weights(args.severity_weights, method="severity", device=device)
    lungs_model = load_weights(args.lungs_weights, method="cxr-lungs", device=device)
    image = read_image(args.image)
    start = time.perf_counter()
    result = run_cxr(image, severity_model, lungs_model, device, command_progress(args, "severity"))
    models = {"severity": model_record(args.severity_weights, severity_model),
              "lungs": model_record(args.lungs_weights, lungs_model)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_image(as_image(result.probability_map, image, sitk.sitkFloat32), paths["map"], overwrite=args.overwrite)
    write_image(as_image(result.lungs, image, sitk.sitkUInt8), paths["lungs"], overwrite=args.overwrite)
    document = result_json(result, models, time.perf_counter() - start)
    write_text(paths["json"], json.dumps(document, indent=2) + "\n")
    print(f"global severity score {document['global_score']}/6 (zones at or above {document['threshold']}: "
          f"{document['binary']}); wrote {args.out}")
    return 0
