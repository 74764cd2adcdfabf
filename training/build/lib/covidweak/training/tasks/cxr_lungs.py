"""``cxr-lungs``: right/left lung segmentation of frontal chest radiographs (Kim et al.).

Kim et al. segment the lungs before splitting each into three zones for the severity
array, on radiographs resized to 256x256. Here the radiographs are the phantom's DRRs
(``record.extra["cxr_path"]``) and the labels their projected lung masks
(``record.extra["cxr_lungs_path"]``: 0 background, 1 right, 2 left). The loss is
cross-entropy plus soft Dice of the two lungs; validation reports Dice per lung.
"""

from __future__ import annotations

from typing import Optional

from ...errors import InputError
from ...models.cxr import CXR_LUNG_CLASSES, DEFAULT_CXR_ARCH, build_cxr_model
from ..task import ExportSpec, TaskData

KIM_INPUT_SIZE = 256
"""Kim et al., implementation details: radiographs are resized to 256x256."""
LUNG_NAMES = ("right", "left")


def _load_pair(record, size: int):
    """(1, size, size) float image in [0, 1] and (size, size) int64 labels of one study."""
    import SimpleITK as sitk
    import torch
    import torch.nn.functional as F

    try:
        image_path, label_path = record.extra["cxr_path"], record.extra["cxr_lungs_path"]
    except KeyError:
        raise InputError(f"study '{record.study_id}' has no chest X-ray with lung labels: task cxr-lungs needs "
                         "a dataset with cxr and cxr_lungs columns, e.g. one from `covidweak phantom`") from None
    image = torch.from_numpy(sitk.GetArrayFromImage(sitk.ReadImage(str(image_path))).astype("float32"))
    labels = torch.from_numpy(sitk.GetArrayFromImage(sitk.ReadImage(str(label_path))).astype("int64"))
    if image.dim() != 2 or image.shape != labels.shape:
        raise InputError(f"study '{record.study_id}': radiograph {tuple(image.shape)} and lung labels "
                         f"{tuple(labels.shape)} must be 2-D of one size; regenerate the data")
    image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-6)
    image = F.interpolate(image[None, None], size=(size, size), mode="bilinear", align_corners=False)[0]
    labels = F.interpolate(labels[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
    return image, labels


def lung_dice(probs, labels, eps: float = 1e-6):
    """Per-image Dice of classes 1..C-1 -> (N, C-1); ``probs`` (N, C, H, W) soft or one-hot."""
    import torch.nn.functional as F

    probs = probs[:, 1:]
    target = F.one_hot(labels, CXR_LUNG_CLASSES).permute(0, 3, 1, 2)[:, 1:].float()
    overlap = (probs * target).sum(dim=(2, 3))
    return (2 * overlap + eps) / (probs.sum(dim=(2, 3)) + target.sum(dim=(2, 3)) + eps)


class CxrLungsTask:
    name = "cxr-lungs"
    selection_metric = "dice"
    higher_is_better = True
    defaults = {
        "model": dict(DEFAULT_CXR_ARCH),
        "params": {"dice_weight": 1.0},
        "preprocess": {"size": KIM_INPUT_SIZE},
    }

    def __init__(self):
        self.tensors: dict[str, tuple] = {}

    def build_model(self, config: dict):
        return build_cxr_model(self.name, config["model"])

    def prepare(self, data: TaskData, config: dict) -> None:
        import torch

        size = config["preprocess"]["size"]
        for split in ("train", "val"):
            records = data.splits.get(split, [])
            if not records:
                raise InputError(f"task cxr-lungs: the {split} split is empty; use more patients or change "
                                 "data.fractions")
            pairs = [_load_pair(r, size) for r in records]
            self.tensors[split] = (torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))

    def train_batches(self, config: dict, epoch: int, seed: int):
        from torch.utils.data import TensorDataset

        return TensorDataset(*self.tensors["train"])

    def training_step(self, model, batch, config: dict, device) -> dict:
        import torch.nn.functional as F

        images, labels = batch
        logits = model(images)
        cross_entropy = F.cross_entropy(logits.float(), labels)
        soft_dice = lung_dice(logits.float().softmax(dim=1), labels).mean()
        loss = cross_entropy + config["params"]["dice_weight"] * (1 - soft_dice)
        return {"loss": loss, "cross_entropy": cross_entropy.detach(), "soft_dice": soft_dice.detach()}

    def validate(self, model, config: dict, device) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        images, labels = self.tensors["val"]
        scores = []
        for start in range(0, len(images), config["batch_size"]):
            logits = model(images[start:start + config["batch_size"]].to(device))
            hard = F.one_hot(logits.argmax(dim=1), CXR_LUNG_CLASSES).permute(0, 3, 1, 2).float()
            scores.append(lung_dice(hard, labels[start:start + config["batch_size"]].to(device)))
        per_lung = torch.cat(scores).mean(dim=0).tolist()
        metrics = {f"dice_{name}": value for name, value in zip(LUNG_NAMES, per_lung)}
        return {"dice": sum(per_lung) / len(per_lung), **metrics}

    def export_spec(self, config: dict, metrics: Optional[dict] = None) -> ExportSpec:
        return ExportSpec(method=self.name, arch=dict(config["model"]),
                          preprocess={"input_size": config["preprocess"]["size"], "intensity": "min-max to [0, 1]"})
