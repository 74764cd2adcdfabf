"""Recompute a weight file's BatchNorm running statistics from full-size training slices only.

    python scripts/probes/recompute_bn_stats.py TRAIN_PHANTOM_DIR WEIGHTS.pt OUT.pt

A diagnosis, not a repair step: it tells whether a SEAM-type file fails because its running
statistics are off (before the fix of ``ResNet38.running_stats_kept`` both SEAM scales fed
them) or because of what its weights learnt. Only the statistics change: 20 train-mode passes
of 32 random slices of the first 12 studies, averaged with equal weight (momentum None).
Compare the two files with ``map_logits.py`` and ``covidweak evaluate weakseg``.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from covidweak.models import SEAM, load_weights, save_weights
from covidweak.training.session import load_records
from covidweak.training.tasks.weakseg_data import prepare_study

PASSES, BATCH, STUDIES = 20, 32, 12


def main(data: Path, source: Path, target: Path) -> None:
    loaded = load_weights(source)
    model = loaded.model
    records = load_records(data)[:STUDIES]
    stacks = np.concatenate([prepare_study(r, loaded.preprocess, with_masks=False).stacks for r in records])
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    rng = np.random.default_rng(0)
    torch.manual_seed(0)  # B6/B7 dropout is active in train mode and shapes the statistics after it
    model.train()
    with torch.no_grad():
        for _ in range(PASSES):
            x = torch.from_numpy(stacks[rng.choice(len(stacks), BATCH, replace=False)]).float()
            model.branch(x) if isinstance(model, SEAM) else model(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
    save_weights(target, model, loaded.method, loaded.arch, loaded.preprocess, loaded.info)
    print(f"wrote {target}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
