"""Training throughput of the lung-box CAM at a few backbone widths, on this machine.

    python scripts/probes/box_throughput.py [WIDTH ...]

Times forward, backward and an Adam step of a noisy-OR CAM (``covidweak.models.cam.CAMNet``) on
a batch of 16 random 3 x 160 x 224 stacks, the lung-box input, after one warm-up step, and prints
slices per second and the parameter count for each width (default: 1/16, 0.09 and 1/8 of
model A). The widths are measured in one process so their ratios are comparable.
"""

import sys
import time

import torch

from covidweak.models.cam import CAMNet
from covidweak.models.resnet38 import BOX, ResNet38Config
from covidweak.preprocess.lungbox import BOX_SHAPE

BATCH = 16
STEPS = 3


def slices_per_second(config: ResNet38Config) -> tuple[float, int]:
    model = CAMNet(config, pooling="noisy-or").train()
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(BATCH, 3, *BOX_SHAPE)
    for step in range(STEPS + 1):
        if step == 1:  # the first step allocates; time the rest
            start = time.perf_counter()
        loss = model(x).score.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return BATCH * STEPS / (time.perf_counter() - start), sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    widths = [float(w) for w in sys.argv[1:]] or [0.0625, 0.09, 0.125]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH} x 3 x {BOX_SHAPE[0]} x {BOX_SHAPE[1]}")
    for width in widths:
        rate, params = slices_per_second(ResNet38Config(width=width, blocks=BOX.blocks, output_stride=BOX.output_stride))
        print(f"width {width:.4f}: {rate:5.1f} slices/s, {params / 1e6:.3f} M parameters")
