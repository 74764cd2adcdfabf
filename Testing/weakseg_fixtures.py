"""Small synthetic CTs and random-init weight files for the weakseg inference tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

INPUT_SIZE = 64


def synthetic_ct(shape_zyx=(20, 48, 56), lung_slices=(4, 16), spacing=(1.5, 1.4, 4.0)):
    """A body block (40 HU) in air (-1000 HU) holding two lung boxes (-850 HU) on slices [4, 16), one
    denser square (-300 HU) inside the right lung. Returns (ct float32, lungs uint8 0/1/2)."""
    z, y, x = shape_zyx
    hu = np.full(shape_zyx, -1000.0, dtype=np.float32)
    hu[:, 6:y - 6, 4:x - 4] = 40.0
    lungs = np.zeros(shape_zyx, dtype=np.uint8)
    z0, z1 = lung_slices
    lungs[z0:z1, 12:y - 12, 8:x // 2 - 3] = 1  # image x increases to the patient's left (LPS)
    lungs[z0:z1, 12:y - 12, x // 2 + 3:x - 8] = 2
    hu[lungs > 0] = -850.0
    hu[8:11, 18:24, 12:18] = -300.0
    ct, labels = sitk.GetImageFromArray(hu), sitk.GetImageFromArray(lungs)
    for image in (ct, labels):
        image.SetSpacing(spacing)
        image.SetOrigin((-40.0, -30.0, 100.0))
    return ct, labels


def weight_file(folder: Path, method: str = "mscam", name: str | None = None, preprocess: dict | None = None) -> Path:
    """A random-init light ``method`` network saved as a covidweak weight file (input 64 x 64, plus
    any ``preprocess`` keys)."""
    import torch

    from covidweak.models import build_model, save_weights

    torch.manual_seed(0)
    path = Path(folder) / (name or f"{method}.pt")
    model = build_model(method, {"backbone": "light"})
    save_weights(path, model, method, {"backbone": "light"}, {"input_size": INPUT_SIZE, **(preprocess or {})})
    return path


def recorded_short_run(task, config: dict, run_dir: Path, steps: int = 30):
    """``steps`` updates of a prepared training task through the framework's loop, cycling its batches.

    Returns (the loop's result, the loss of every step). The task's batches are reused in turn,
    so a small test phantom gives as many updates as asked.
    """
    import torch

    from covidweak.training.loop import fit
    from covidweak.training.runs import RunFolder

    losses = []

    class Recording:
        def __getattr__(self, name):
            return getattr(task, name)

        def train_batches(self, config, epoch, seed):
            batches = task.train_batches(config, epoch, seed)
            return [batches[i % len(batches)] for i in range(steps)]

        def training_step(self, *args):
            outputs = task.training_step(*args)
            losses.append(float(outputs["loss"].detach()))
            return outputs

    folder = RunFolder(run_dir)
    folder.prepare(resume=False)
    return fit(Recording(), config, folder, torch.device("cpu")), losses
