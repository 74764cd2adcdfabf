"""``covidweak evaluate fecnn --data DIR --out report.json``: Wu et al.'s diagnosis, hit-rate and lesion-type tables."""

from __future__ import annotations

import json
from pathlib import Path

from ..device import add_device_argument

DESCRIPTION = (
    "Evaluate FeCNN as Wu et al. do: slice diagnosis accuracy, the lesion hit rate of the LAM beside a plain CAM at "
    "overlap thresholds 0.1-0.9 (Tables 5-6), and k-means lesion clusters against the phantom's lesion types by "
    "Hungarian matching (Table 7). Needs studies with lesion masks. Writes a JSON report and prints Markdown tables."
)


def add_task_parser(tasks) -> None:
    from ..clusters.ct import DEFAULT_BATCH_SIZE

    fecnn = tasks.add_parser("fecnn", help="FeCNN diagnosis, LAM hit rate and lesion types (Wu et al.)",
                             description=DESCRIPTION)
    fecnn.add_argument("--data", type=Path, required=True, help="dataset folder with lesion masks (e.g. a phantom)")
    fecnn.add_argument("--out", type=Path, required=True, help="JSON report to write")
    fecnn.add_argument("--weights", default="fecnn-light", help="FeCNN weight file or registry name (default: fecnn-light)")
    fecnn.add_argument("--cam-weights", default="cam-light",
                       help="plain CAM network for the comparison of Table 6, or 'none' (default: cam-light)")
    fecnn.add_argument("--k", default=None, help="clusters for Table 7: an integer or 'auto' (default: the 3 phantom types)")
    fecnn.add_argument("--split", choices=("test", "all"), default="test",
                       help="test: the training run's held-out patients (seed from the registry), all: every study")
    fecnn.add_argument("--seed", type=int, default=0, help="seed of k-means (default: 0)")
    fecnn.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="slices per network batch")
    add_device_argument(fecnn)
    fecnn.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    fecnn.set_defaults(func=run)


def split_info(loaded, weights: str) -> dict:
    """Seed and fractions of the run that trained registered weights (empty for a plain file)."""
    from ..errors import ModelError
    from ..models.weights import registry_entry

    if Path(weights).suffix:
        return {}
    try:
        config = registry_entry(weights).get("config", {})
    except ModelError:
        return {}
    return {"seed": config.get("seed"), "fractions": config.get("data", {}).get("fractions")}


def run(args) -> int:
    from .. import __version__
    from ..clusters.evaluate import evaluate_fecnn, markdown
    from ..commands.clusters import parse_k
    from ..datasets import open_dataset
    from ..device import resolve_device
    from ..errors import InputError
    from ..models import load_weights
    from ..progress import command_progress
    from ..weakseg.evaluate import select_records
    from ..io.atomic import write_text

    if args.out.exists() and not args.overwrite:
        raise InputError(f"report {args.out} already exists: choose another --out or pass --overwrite")
    k = parse_k(args.k) if args.k is not None else None
    device = resolve_device(args.device)
    loaded = load_weights(args.weights, method="fecnn", device=str(device))
    cam = None if args.cam_weights == "none" else load_weights(args.cam_weights, method="cam", device=str(device))
    records = [r for r in open_dataset(args.data) if r.lesion_mask_path is not None]
    if not records:
        raise InputError(f"{args.data} has no studies with a lesion mask: evaluation needs ground truth (try a phantom)")
    chosen, selection = select_records(records, args.split, split_info(loaded, args.weights))
    report = {"data": str(args.data), "weights": str(loaded.path), "weights_sha256": loaded.sha256,
              "cam_weights": str(cam.path) if cam else None, **selection,
              **evaluate_fecnn(chosen, loaded, cam, k, args.seed, device, args.batch_size, command_progress(args, "evaluate")),
              "covidweak_version": __version__, "note": "research use only; Tables 5-7 layout of Wu et al."}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"wrote {args.out}")
    return 0
