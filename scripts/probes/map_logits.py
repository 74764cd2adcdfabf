"""Where a weight file puts its evidence: slice logits and class-map logits by kind of pixel.

    python scripts/probes/map_logits.py PHANTOM_DIR WEIGHTS.pt [WEIGHTS.pt ...]

For every study of the phantom, all slices go through the network in inference mode (one
scale for SEAM-type models). Prints the 10th / 50th / 90th percentiles of the slice logit p
(lesion slices, the other slices of positive patients, slices of normal patients) and of the
CAM C and refined CAM D upsampled to the input, on lesion pixels and on lesion-free lung.
A map that segments lesions has lesion pixels well above lesion-free lung; a map whose
normal-patient slice logits are positive segments every patient.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from covidweak.models import SEAM, load_weights
from covidweak.training.session import load_records
from covidweak.training.tasks.weakseg_data import prepare_study


def percentiles(values: list) -> np.ndarray:
    return np.percentile(np.concatenate([np.ravel(v) for v in values]), [10, 50, 90]).round(2)


def upsampled(maps: torch.Tensor, size) -> np.ndarray:
    """(N, 1, h, w) logit maps -> (N, H, W) at the input size."""
    return F.interpolate(maps.float(), size=size, mode="bilinear")[:, 0].numpy()


def main(data: Path, weight_files: list[str]) -> None:
    records = load_records(data)
    for weights in weight_files:
        loaded = load_weights(Path(weights))
        scores = {"lesion slices": [], "other slices of positives": [], "normal patients": []}
        maps = {"C": {"lesion": [], "lesion-free lung": []}, "D": {"lesion": [], "lesion-free lung": []}}
        for record in records:
            study = prepare_study(record, loaded.preprocess)
            x = torch.from_numpy(study.stacks).float()
            with torch.no_grad():
                out = loaded.model.branch(x) if isinstance(loaded.model, SEAM) else loaded.model(x)
                cam = upsampled(out.cam, x.shape[-2:])
                refined = upsampled(getattr(out, "refined", out.cam), x.shape[-2:])
            score = out.score[:, 0].numpy()
            lung = study.lungs.astype(bool)
            lesion = np.zeros_like(lung) if study.negative else study.lesion.astype(bool) & lung
            has = lesion.reshape(len(lesion), -1).any(axis=1)
            if study.negative:
                scores["normal patients"].append(score)
            else:
                scores["lesion slices"].append(score[has])
                scores["other slices of positives"].append(score[~has])
            for name, image in (("C", cam), ("D", refined)):
                maps[name]["lesion"].append(image[lesion])
                maps[name]["lesion-free lung"].append(image[lung & ~lesion][::7])  # thinned: percentiles only
        print(Path(weights).name)
        print("  slice logit  " + "  ".join(f"{k} {percentiles(v)}" for k, v in scores.items() if v))
        for name, parts in maps.items():
            print(f"  {name}  " + "  ".join(f"{k} {percentiles(v)}" for k, v in parts.items() if v))


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(Path(sys.argv[1]), sys.argv[2:])
