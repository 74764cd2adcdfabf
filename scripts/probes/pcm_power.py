"""How PCM's affinity power beta shapes the refined map D of a SEAM built on a trained box CAM.

    python scripts/probes/pcm_power.py --cam CAM_WEIGHTS --data PHANTOM [--patients N] [--betas B ...]

For each beta a SEAM gets the CAM's backbone and classifier (``transfer_cam_weights``, SEAM's
initialisation in Sect. 2.1) and an untrained PCM (seed 0) raised to that power
(``model.pcm_power``). Each is scored like ``covidweak evaluate weakseg --split val`` on the
first N validation patients of the CAM's recorded split, over a T_fg sweep, beside the CAM's
own map C. It shows what PCM does before any SEAM training: D = C . M is an average over M's
columns, and an unsharpened M averages over the whole lung. The PCM_POWER figures in docs/status.md
come from ``--patients 12 --betas 1 8 32``.
"""

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from covidweak.datasets import open_dataset
from covidweak.models import build_model, load_weights, transfer_cam_weights
from covidweak.weakseg.evaluate import evaluate_model, select_records

SWEEP = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def seam_from_cam(cam, beta: float):
    """A :class:`~covidweak.models.weights.LoadedModel` of a SEAM on ``cam``'s weights, PCM power ``beta``."""
    torch.manual_seed(0)
    arch = {**cam.arch, "pcm_power": beta}
    seam = build_model("seam", arch)
    transfer_cam_weights(cam.model, seam)
    return replace(cam, model=seam.eval(), method="seam", arch=arch)


def best_row(report: dict) -> str:
    """The sweep's threshold with the best mean positive Dice, in words."""
    row = max(report["sweep"], key=lambda r: r["positive"]["dice"]["mean"])
    return (f"best T_fg {row['t_fg']}: positive Dice {row['positive']['dice']['mean']:.3f} "
            f"(recall {row['positive']['recall']['mean']:.3f}, precision {row['positive']['precision']['mean']:.3f}), "
            f"negative Dice {row['negative']['dice']['mean']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cam", required=True, help="box CAM weight file that records its split")
    parser.add_argument("--data", required=True, type=Path, help="the phantom the CAM was trained on")
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--betas", type=float, nargs="+", default=[1.0, 8.0, 32.0])
    args = parser.parse_args()
    cam = load_weights(args.cam, method="cam")
    records = [r for r in open_dataset(args.data) if r.lesion_mask_path is not None]
    chosen, _ = select_records(records, "val", cam.info)
    chosen = chosen[: args.patients]
    print(f"CAM map C: {best_row(evaluate_model(chosen, cam, device='cpu', sweep=SWEEP))}", flush=True)
    for beta in args.betas:
        report = evaluate_model(chosen, seam_from_cam(cam, beta), device="cpu", sweep=SWEEP)
        print(f"untrained PCM, beta {beta:g}: {best_row(report)}", flush=True)


if __name__ == "__main__":
    main()
