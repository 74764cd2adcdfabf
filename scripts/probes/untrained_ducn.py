"""Write the untrained DuCN of a training config as a weight file: the baseline of the retrieval table.

    python scripts/probes/untrained_ducn.py --config ducn.box --out untrained.pt [--seed 0]

The network is the one ``covidweak train ducn --config CONFIG`` starts from (same seed, same
architecture and input geometry), saved before any update, so ``covidweak evaluate ducn
--weights untrained.pt`` shows what the trained file adds over random features.
"""

import argparse
from pathlib import Path

import torch

from covidweak.models import save_weights
from covidweak.training.config import build_config
from covidweak.training.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="ducn.box")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    task = get_task("ducn")
    config = build_config(task, args.config)
    torch.manual_seed(args.seed)
    spec = task.export_spec(config)
    save_weights(args.out, task.build_model(config), spec.method, spec.arch, spec.preprocess)
    print(f"wrote {args.out}: untrained {spec.method}, {spec.preprocess.get('geometry', 'slice')} input")


if __name__ == "__main__":
    main()
