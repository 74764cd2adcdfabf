"""``covidweak clusters``: lesion-type clusters of Wu et al. (FeCNN lesion features + k-means).

* ``covidweak clusters --data DIR --k auto|INT --out MODEL_DIR`` fits on a library of studies
  and writes MODEL_DIR/lesions.csv plus the reusable model (cluster_model.npz + .json);
* ``covidweak clusters --ct CT --model MODEL_DIR --out DIR`` applies a fitted model to a new CT
  and writes DIR/lesions.csv and DIR/lesion_labels.nii.gz.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Lesion-type clusters (Wu et al.): FeCNN finds the COVID-19 slices, Grad-CAM lesion maps split them into lesions, "
    "and k-means groups the lesion features. Fit on a library with --data, or apply a fitted model to a CT with "
    "--ct and --model. Research use only."
)
DEFAULT_WEIGHTS = "fecnn-light"


def add_parser(subparsers) -> None:
    from ..clusters.ct import DEFAULT_BATCH_SIZE

    parser = subparsers.add_parser("clusters", help="fit or apply lesion-type clusters (FeCNN, Wu et al.)",
                                   description=DESCRIPTION)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="library to fit on: a dataset folder or manifest (e.g. a phantom)")
    source.add_argument("--ct", type=Path, help="CT to apply a fitted model to (file or DICOM folder)")
    parser.add_argument("--out", type=Path, required=True, help="model folder (with --data) or output folder (with --ct)")
    parser.add_argument("--k", default="auto", help="number of clusters, or 'auto' for the elbow of the k-means "
                        "inertia curve (with --data; default: auto)")
    parser.add_argument("--model", type=Path, help="fitted model folder (with --ct)")
    parser.add_argument("--weights", default=None, help=f"FeCNN weight file or registry name (default: {DEFAULT_WEIGHTS} "
                        "when fitting, the model's own FeCNN when applying)")
    parser.add_argument("--lungs", type=Path, default=None, help="lung labels on the CT grid (with --ct; default: "
                        "computed as `covidweak lungs` does)")
    parser.add_argument("--seed", type=int, default=0, help="seed of k-means, SVD and t-SNE (default: 0)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="slices per network batch")
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def parse_k(text: str):
    from ..errors import InputError

    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--k {text}: give a whole number of clusters or 'auto'") from None


def run(args) -> int:
    from ..errors import InputError

    if args.data is not None and args.model is not None:
        raise InputError("--model is for applying (with --ct); with --data a new model is fitted into --out")
    if args.ct is not None and args.model is None:
        raise InputError("--ct needs --model MODEL_DIR, a folder written by `covidweak clusters --data DIR --out MODEL_DIR`")
    return fit(args) if args.data is not None else apply(args)


def fit(args) -> int:
    from ..clusters.library import fit_library
    from ..clusters.store import model_paths, refuse_existing, save_model
    from ..device import resolve_device
    from ..models import load_weights
    from ..progress import command_progress

    k = parse_k(args.k)
    refuse_existing(model_paths(args.out), args.overwrite)
    device = resolve_device(args.device)
    loaded = load_weights(args.weights or DEFAULT_WEIGHTS, method="fecnn", device=str(device))
    start = time.perf_counter()
    model, rows = fit_library(args.data, loaded, k, args.seed, device, args.batch_size, command_progress(args, "clusters"))
    save_model(args.out, model, rows, overwrite=args.overwrite)
    print(f"{model.info['lesions']} lesions from {model.info['studies']} studies in K={model.centres.shape[0]} "
          f"clusters ({model.info['k_selection']['rule']}); wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


def apply(args) -> int:
    from ..clusters.library import assign, check_compatible, study_stem, table_rows
    from ..clusters.store import LABELS_NAME, LESIONS_NAME, lesions_csv_text, load_model, refuse_existing
    from ..clusters.ct import find_lesions
    from ..device import resolve_device
    from ..io import read_ct, read_image, write_image
    from ..models import load_weights
    from ..progress import command_progress
    from ..io.atomic import write_text

    refuse_existing([args.out / LESIONS_NAME, args.out / LABELS_NAME], args.overwrite)
    model = load_model(args.model)
    device = resolve_device(args.device)
    loaded = load_weights(args.weights or model.info.get("fecnn", {}).get("name") or DEFAULT_WEIGHTS, method="fecnn",
                          device=str(device))
    check_compatible(model, loaded)
    ct = read_ct(args.ct)
    lungs = read_image(args.lungs) if args.lungs else None
    start = time.perf_counter()
    found = find_lesions(ct, loaded, lungs, None, device, args.batch_size, command_progress(args, "clusters"))
    rows = table_rows(study_stem(args.ct), found, *assign(found.features, model))
    args.out.mkdir(parents=True, exist_ok=True)
    write_image(found.labels, args.out / LABELS_NAME, overwrite=True)
    write_text(args.out / LESIONS_NAME, lesions_csv_text(rows))
    print(f"{len(rows)} lesions on {found.positive_slices} of {found.slices} lung slices called COVID-19; "
          f"wrote {args.out} ({time.perf_counter() - start:.1f} s); research use only")
    return 0
