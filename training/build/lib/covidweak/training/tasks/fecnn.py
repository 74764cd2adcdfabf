"""``fecnn``: the diagnosis branch of Wu et al. (FeCNN + ensemble fusion), trained on CT slices.

Slice classes (``model.classes``):

* 2 (the paper's task, Sect. 3.1.3): COVID-19 positive slices (slices of a COVID-19 study that
  show a lesion) against negative slices (slices that show no lesion). Other pneumonia's lesion
  slices are left out, as in the paper's binary experiments ("the data for other types of
  pneumonia have been excluded", Sect. 4.1);
* 3 (Sect. 6.2): normal (no lesion), COVID-19 and other pneumonia (CAP lesion slices).

Negative slices are those of normal studies and, where a lesion mask says so, the lesion-free
slices of positive studies too. Wu et al.'s negatives come from other patients only; on the
phantom, whose 24 patients each have their own anatomy, a network trained that way learned to
recognise the normal patients instead of lesions (validation at chance), while lesion-free
slices of the same patients leave lesions as the only difference. Slices with a lesion under
:data:`MIN_LESION_SHARE` of the slice's lung are not used, nor (without a mask) unannotated
slices of positive studies. Which slices show a lesion comes from the lesion mask, else the
phantom's ``slice_has_lesion``, else the annotated ("positive") slices. Only slices with lung
are used (:mod:`covidweak.clusters.ct`).

Training balances the classes as the other slice tasks do: every epoch takes every COVID-19
slice and as many slices of each other class, drawn at random. Augmentation follows Sect.
4.2.3 (rotation over the full circle, flips, shift 0.05, contrast +-30%); the paper's +-50%
brightness is multiplicative on 8-bit images, and is an additive +-0.1 here so lung-masked
slices keep their zero background near zero.

After every epoch ``validate`` first re-estimates the batch-norm statistics on
:data:`BN_CALIBRATION_SLICES` training slices, classes balanced as in training (their exact mean, not the running average: at
the learning rates a CPU budget needs, the running average lags the weights so far that the
network in eval mode predicts one class while it is right in train mode). It then measures
each FPN level's error rate on the validation split (Eq. 3) and stores omega (Eq. 2) in the
network, so the checkpoint and the exported weights carry both; the reported accuracy uses
the new omega. The checkpoint is chosen on ``val_auc``, the ROC AUC of the COVID-19
probability against every other validation slice: with few positive slices, accuracy rewards
a network that calls every slice negative (the whole-slice file was kept at 0.907 where
always answering negative scored 0.915).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np

from ...errors import InputError
from ...models.fecnn import CLASS_NAMES, COVID_CLASS, DEFAULT_FECNN_ARCH, FPN_LEVELS, build_fecnn, fecnn_loss
from ...models.fecnn import level_error_rates
from ...preprocess import HU_WINDOW
from ...preprocess.lungbox import BOX_SHAPE
from ...weakseg.prepare import WHOLE_SLICE
from ...clusters.slices import study_slices
from ..task import ExportSpec, TaskData
from .weakseg_data import Augment, augment

BN_CALIBRATION_SLICES = 400
"""Training slices whose batch statistics become the batch-norm running statistics before validation."""
WU_AUGMENT = Augment(flip=True, shift=0.05, rotate_deg=180.0, zoom=1.0, brightness=0.1, contrast=0.3)
"""Wu et al. Sect. 4.2.3: rotation 0-360 degrees, flips, shift 0.05, contrast +-30% (brightness: see above)."""


def calibrate_batch_norm(model, x: np.ndarray, batch_size: int, device) -> None:
    """Set every batch-norm layer's running mean and variance to their average over ``x`` (N, 1, S, S)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
        m.train()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            model(torch.from_numpy(x[start:start + batch_size].astype(np.float32)).to(device))
    for m, (momentum, training) in zip(norms, saved):
        m.momentum = momentum
        m.train(training)


class FeCnnTask:
    name = "fecnn"
    selection_metric = "val_auc"
    higher_is_better = True
    defaults = {
        "model": {key: DEFAULT_FECNN_ARCH[key] for key in ("backbone", "classes", "lam_level", "score_activation",
                                                           "level_pooling")},
        "params": {"augment": True, "level_loss_weight": 1.0, "val_batch_size": 16},
        "preprocess": {"input_size": DEFAULT_FECNN_ARCH["input_size"], "hu_window": list(HU_WINDOW),
                       "geometry": WHOLE_SLICE, "box_shape": list(BOX_SHAPE), "lesion_descriptor": "peak",
                       "lam_threshold": "otsu"},
    }

    def __init__(self):
        self.data: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def section(self, config: dict, name: str) -> dict:
        return {**self.defaults[name], **(config.get(name) or {})}

    def build_model(self, config: dict):
        return build_fecnn(self.name, self.section(config, "model"))

    def prepare(self, data: TaskData, config: dict) -> None:
        classes = int(self.section(config, "model")["classes"])
        preprocess = self.section(config, "preprocess")
        for split in ("train", "val"):
            parts = [study_slices(r, preprocess, classes) for r in data.splits.get(split, [])]
            x = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 1, 1, 1), dtype=np.float16)
            y = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
            missing = [CLASS_NAMES[classes][c] for c in range(classes) if not (y == c).any()]
            if missing:
                raise InputError(f"task fecnn: the {split} split has no {', '.join(missing)} slices; use more "
                                 "patients (each class needs studies in every split) or change data.fractions")
            self.data[split] = (x, y)

    def train_batches(self, config: dict, epoch: int, seed: int) -> Iterable[Any]:
        """Every COVID-19 slice plus as many random slices of each other class, shuffled and augmented by (seed, epoch)."""
        import torch

        x, y = self.data["train"]
        rng = np.random.default_rng([int(seed), int(epoch)])
        wanted = int((y == COVID_CLASS).sum())
        picked = []
        for c in np.unique(y):
            members = np.flatnonzero(y == c)
            picked.append(members if c == COVID_CLASS else rng.choice(members, wanted, replace=len(members) < wanted))
        order = rng.permutation(np.concatenate(picked))
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        do_augment = self.section(config, "params")["augment"]
        out = []
        for start in range(0, len(order), int(config["batch_size"])):
            index = order[start:start + int(config["batch_size"])]
            images = torch.from_numpy(x[index].astype(np.float32))
            if do_augment:
                images = augment(images, None, WU_AUGMENT, generator)[0]
            out.append({"x": images, "y": torch.from_numpy(y[index])})
        return out

    def training_step(self, model, batch: dict, config: dict, device) -> dict[str, Any]:
        output = model(batch["x"])
        loss, level_term = fecnn_loss(output, batch["y"], float(self.section(config, "params")["level_loss_weight"]))
        return {"loss": loss, "level_loss": level_term.detach()}

    def calibration_slices(self) -> np.ndarray:
        """Up to :data:`BN_CALIBRATION_SLICES` training slices, the classes in equal numbers as in
        training batches, in a fixed random order (shuffled so that every batch mixes the classes)."""
        x, y = self.data["train"]
        rng = np.random.default_rng(0)
        classes = np.unique(y)
        per_class = BN_CALIBRATION_SLICES // len(classes)
        picked = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=(y == c).sum() < per_class)
                                 for c in classes])
        return x[rng.permutation(picked)]

    def validate(self, model, config: dict, device) -> dict[str, float]:
        import torch
        from sklearn.metrics import roc_auc_score

        step = int(self.section(config, "params")["val_batch_size"])
        calibrate_batch_norm(model, self.calibration_slices(), step, device)
        x, y = self.data["val"]
        scores = torch.cat([model(torch.from_numpy(x[s:s + step].astype(np.float32)).to(device)).level_scores.float()
                            for s in range(0, len(x), step)])
        labels = torch.from_numpy(y).to(device)
        errors = level_error_rates(scores, labels)
        omega = model.set_error_rates(errors)
        logits = model.classifier((scores * omega[None, :, None].to(scores.device)).flatten(1))
        probability = logits.float().softmax(dim=1)[:, COVID_CLASS].cpu().numpy()
        metrics = {"val_accuracy": float((logits.argmax(dim=1) == labels).float().mean()),
                   "val_auc": float(roc_auc_score(y == COVID_CLASS, probability))}
        for name, error, weight in zip(FPN_LEVELS, errors.tolist(), omega.tolist()):
            metrics[f"val_error_{name}"] = error
            metrics[f"omega_{name}"] = weight
        return metrics

    def export_spec(self, config: dict, metrics: Optional[dict] = None) -> ExportSpec:
        arch = self.section(config, "model")
        preprocess = self.section(config, "preprocess")
        arch["input_size"] = int(preprocess["input_size"])
        return ExportSpec(method=self.name, arch=arch,
                          preprocess={**preprocess, "lung_only": True, "class_names": list(CLASS_NAMES[int(arch["classes"])])})
