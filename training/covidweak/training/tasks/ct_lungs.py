"""``ct-lungs``: right/left lungs of axial CT slices, the network behind :mod:`covidweak.lungs.learned`.

Each study is read as the classical segmentation reads it: canonical axes, smoothed onto the
<= 2 mm working grid, the body found by thresholding air. Every slice of the body's range is cut
to the body's box and resized to :data:`~covidweak.lungs.learned.NET_SIZE` squared
(:func:`~covidweak.lungs.learned.network_input`), with the phantom's exact lung labels (lesions
included) as the target. The network is the radiograph lung U-Net (:mod:`covidweak.models.cxr`);
the loss, cross-entropy plus soft Dice of the two lungs, and the validation Dice per lung are
task ``cxr-lungs``'s.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ...errors import InputError
from ...models.cxr import DEFAULT_CXR_ARCH, build_cxr_model
from ..task import ExportSpec, TaskData
from .cxr_lungs import CxrLungsTask


def study_slices(record) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, S, S) float16 network input and (n, S, S) uint8 labels of one study's body slices."""
    import SimpleITK as sitk

    from ...io import read_ct, read_image
    from ...lungs.geometry import resample_labels, smooth_onto, to_canonical, working_grid
    from ...lungs.learned import body_box, network_input, network_labels
    from ...lungs.masks import body_mask
    from ...lungs.segment import AIR_HU

    if record.lung_mask_path is None:
        raise InputError(f"study {record.study_id} has no lung mask: task ct-lungs needs exact lung labels "
                         "(e.g. a dataset from `covidweak phantom`)")
    canon = to_canonical(read_ct(record.ct_path))
    grid = working_grid(canon)
    hu = sitk.GetArrayFromImage(smooth_onto(canon, grid))
    labels = sitk.GetArrayFromImage(resample_labels(to_canonical(read_image(record.lung_mask_path)), grid))
    body = body_mask(hu < AIR_HU)
    rows = np.flatnonzero(body.any(axis=(1, 2)))
    box = body_box(body)
    return network_input(hu[rows], box).astype(np.float16), network_labels(labels[rows], box).astype(np.uint8)


class CtLungsTask(CxrLungsTask):
    name = "ct-lungs"
    defaults = {"model": dict(DEFAULT_CXR_ARCH), "params": {"dice_weight": 1.0}, "preprocess": {}}

    def build_model(self, config: dict):
        return build_cxr_model(self.name, config["model"])

    def prepare(self, data: TaskData, config: dict) -> None:
        import torch

        for split in ("train", "val"):
            records = data.splits.get(split, [])
            if not records:
                raise InputError(f"task ct-lungs: the {split} split is empty; use more patients or change "
                                 "data.fractions")
            parts = [study_slices(r) for r in records]
            images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            if split == "val":  # small: stored as cxr-lungs' validation reads it
                images, labels = images.astype(np.float32), labels.astype(np.int64)
            # Training slices stay float16 / uint8 (a quarter of int64 labels' memory) until their batch.
            self.tensors[split] = (torch.from_numpy(images), torch.from_numpy(labels))

    def training_step(self, model, batch, config: dict, device) -> dict:
        images, labels = batch
        return super().training_step(model, (images.float(), labels.long()), config, device)

    def export_spec(self, config: dict, metrics: Optional[dict] = None) -> ExportSpec:
        from ...lungs.learned import HU_WINDOW, NET_SIZE

        return ExportSpec(method=self.name, arch=dict(config["model"]),
                          preprocess={"input_size": NET_SIZE, "hu_window": list(HU_WINDOW),
                                      "field": "the body's in-plane box on the <= 2 mm working grid"})
