"""Training throughput at the lung box: every weak-seg task, and the CAM at a few backbone widths.

    python scripts/probes/box_throughput.py [--widths W ...]

Times one optimiser update (forward, the task's own loss, backward, Adam) on random
3 x 160 x 224 stacks, the lung-box input, after one warm-up update, and prints slices per
second. Each task runs at its box config's batch (``training/configs/<task>.box.yaml``): 16
slices, 8 bags of 8 for M-SEAM-NAM, 8 masked slices for the U-Net. With ``--widths`` the noisy-OR
CAM is timed at those backbone widths instead. Everything runs in one process so the figures
are comparable with each other; they are not comparable across machines.
"""

import argparse
import time

import torch

from covidweak.losses.mil import BAG_SIZE
from covidweak.models.cam import CAMNet
from covidweak.models.resnet38 import BOX, ResNet38Config
from covidweak.preprocess.lungbox import BOX_SHAPE
from covidweak.training.config import build_config
from covidweak.training.tasks.weakseg import (CamPretrainTask, MSeamNamTask, MultiScaleCamTask, SeamNamTask, SeamTask,
                                              UNetTask)

STEPS = 2
TASKS = ((CamPretrainTask, "cam-pretrain.box"), (SeamTask, "seam.box"), (SeamNamTask, "seam-nam.box"),
         (MSeamNamTask, "mseamnam.box"), (MultiScaleCamTask, "mscam.box"), (UNetTask, "unet.box"))


def timed_updates(model, loss_of, batch: int) -> float:
    """Slices per second of ``STEPS`` updates after a warm-up; ``loss_of(model, x)`` is the scalar loss."""
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(batch, 3, *BOX_SHAPE)
    model.train()
    for step in range(STEPS + 1):
        if step == 1:  # the first update allocates; time the rest
            start = time.perf_counter()
        loss = loss_of(model, x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return batch * STEPS / (time.perf_counter() - start)


def task_rate(task_class, config_name: str) -> tuple[str, int, float]:
    task = task_class()
    config = build_config(task, config_name, [])
    params = task.section(config, "params")
    bags = task.sampling_for(config) == "bags"
    batch = int(config["batch_size"])
    labels = torch.ones(batch // BAG_SIZE if bags else batch, 1)
    labels[::2] = 0  # half negative
    mask = (torch.rand(batch, 1, *BOX_SHAPE) < 0.02).float() if task.sampling == "masks" else None

    def loss_of(model, x):
        return task.loss(model(x), labels, mask, params)["loss"]

    return task.name, batch, timed_updates(task.build_model(config), loss_of, batch)


def width_rate(width: float) -> tuple[float, int]:
    model = CAMNet(ResNet38Config(width=width, blocks=BOX.blocks, output_stride=BOX.output_stride), pooling="noisy-or")
    rate = timed_updates(model, lambda m, x: m(x).score.sum(), 16)
    return rate, sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=float, nargs="+", help="time the noisy-OR CAM at these backbone widths")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input 3 x {BOX_SHAPE[0]} x {BOX_SHAPE[1]}")
    if args.widths:
        for width in args.widths:
            rate, params = width_rate(width)
            print(f"CAM at width {width:.4f}: {rate:5.1f} slices/s, {params / 1e6:.3f} M parameters")
    else:
        print("| task | slices per update | slices/s |\n|---|---|---|")
        for task_class, config_name in TASKS:
            name, batch, rate = task_rate(task_class, config_name)
            print(f"| {name} | {batch} | {rate:.1f} |")
