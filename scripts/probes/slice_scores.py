"""How well a weight file's slice scores rank lesion slices, with and without BatchNorm statistics.

    python scripts/probes/slice_scores.py WEIGHTS.pt PHANTOM_DIR

Every lung slice of every study is scored (the image score p of Eq. 1, or p_l for SEAM-type
models) in batches of 8 consecutive slices, once with BatchNorm running statistics (inference)
and once with each batch normalised by its own statistics, as in training when a batch is one
M-SEAM-NAM bag. Prints the AUC of lesion vs lesion-free lung slices and the median scores.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from covidweak.datasets import open_dataset
from covidweak.models import load_weights
from covidweak.training.tasks.weakseg_data import prepare_study

BAG = 8


def slice_scores(model, x: torch.Tensor, batch_statistics: bool) -> np.ndarray:
    """(Z, C, S, S) stacks -> (Z,) image logits, BatchNorm in training mode when ``batch_statistics``."""
    model.eval()
    if batch_statistics:
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.train()
    with torch.no_grad():
        out = [model(x[i : i + BAG]) for i in range(0, len(x), BAG)]
    return torch.cat([(o.score if hasattr(o, "score") else o.p_l)[:, 0] for o in out]).numpy()


def main(weights: str, data: str) -> None:
    loaded = load_weights(Path(weights))
    model = loaded.model.float()
    results = {"running statistics": ([], []), "batch statistics": ([], [])}
    for record in open_dataset(Path(data)):
        study = prepare_study(record, loaded.preprocess)
        x = torch.from_numpy(study.stacks).float()
        lesion = study.lesion.any(axis=(1, 2)) if study.lesion is not None else np.zeros(len(x), bool)
        lung = study.lungs.any(axis=(1, 2))
        for mode, (scores, labels) in results.items():
            scores.extend(slice_scores(model, x, mode == "batch statistics")[lung])
            labels.extend(lesion[lung])
    for mode, (scores, labels) in results.items():
        s, y = np.array(scores), np.array(labels, bool)
        print(f"{mode}: AUC {roc_auc_score(y, s):.3f}, median score lesion {np.median(s[y]):.2f}, "
              f"lesion-free {np.median(s[~y]):.2f}, lesion-free above 0: {(s[~y] > 0).mean():.1%}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
