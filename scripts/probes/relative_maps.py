"""Absolute against relative reading of a weakly supervised map: Table 1 Dice of both.

    python scripts/probes/relative_maps.py PHANTOM_DIR WEIGHTS.pt [WEIGHTS.pt ...]

Inference thresholds sigmoid of the gated logit map (absolute). SEAM's reference inference, which
the M-SEAM-NAM authors' released code follows, instead rescales each slice's map to [0, 1] by its
own minimum and maximum and thresholds that (relative). This probe scores both on the same gated
maps at the network's input size, pooled per patient as `covidweak evaluate weakseg` pools, with
the relative map rescaled inside the lungs (a slice's peak outside the lungs would otherwise set
its scale). Printed per threshold: mean positive-patient Dice / mean negative-patient Dice.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from covidweak.models import lesion_logits, load_weights
from covidweak.training.session import load_records
from covidweak.training.tasks.weakseg_data import prepare_study
from covidweak.weakseg.evaluate import confusion_counts, patient_metrics, table

THRESHOLDS = (0.1, 0.3, 0.5, 0.7, 0.9)


def relative_in_lungs(logits: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """(Z, S, S) logits, bool lungs -> (Z, S, S) in [0, 1]: each slice min-max scaled over its lung pixels, 0 outside."""
    has_lung = lungs.any(axis=(1, 2), keepdims=True)  # a slice without lung gets 0 everywhere
    low = np.where(has_lung, np.where(lungs, logits, np.inf).min(axis=(1, 2), keepdims=True), 0.0)
    high = np.where(has_lung, np.where(lungs, logits, -np.inf).max(axis=(1, 2), keepdims=True), 0.0)
    return np.where(lungs, (logits - low) / np.maximum(high - low, 1e-6), 0.0)


def main(data: Path, weight_files: list[str]) -> None:
    records = load_records(data)
    for weights in weight_files:
        loaded = load_weights(Path(weights))
        loaded.model.eval()
        counts = {"absolute": {}, "relative": {}}
        for record in records:
            study = prepare_study(record, loaded.preprocess)
            x = torch.from_numpy(study.stacks).float()
            with torch.no_grad():
                logits = F.interpolate(lesion_logits(loaded.model, x, gate=True).float(), size=x.shape[-2:], mode="bilinear")
            logits = logits[:, 0].numpy()
            lungs = study.lungs.astype(bool)
            truth = np.zeros_like(lungs) if study.negative else study.lesion.astype(bool) & lungs
            maps = {"absolute": torch.sigmoid(torch.from_numpy(logits)).numpy() * lungs,
                    "relative": relative_in_lungs(logits, lungs)}
            for kind, image in maps.items():
                found = confusion_counts(image, truth, THRESHOLDS)
                counts[kind][record.patient_id] = counts[kind].get(record.patient_id, 0) + found
        print(Path(weights).name)
        for kind, per_patient in counts.items():
            cells = []
            for j, t in enumerate(THRESHOLDS):
                means = table([patient_metrics(*c[j]) for c in per_patient.values()])
                negative = means["negative"]["dice"]["mean"]
                cells.append(f"T{t}: {means['positive']['dice']['mean']:.3f}/"
                             f"{negative if negative is not None else float('nan'):.1f}")
            print(f"  {kind:9s}", "  ".join(cells))


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(Path(sys.argv[1]), sys.argv[2:])
