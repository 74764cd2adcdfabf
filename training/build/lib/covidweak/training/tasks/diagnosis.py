"""Training task ``diagnosis``: Hu et al.'s multi-scale joint classifier for COVID-19 / CAP / normal.

Hu et al. (IEEE Access 2020, Sect. II-G) train on single CT images labelled with the patient's
class, three-way (K = 3) or one of three binary tasks (K = 2), with the class-balanced focal
loss (gamma = 1, :mod:`covidweak.losses.focal`) and Adam (lr 1e-4, betas 0.5 / 0.9).

Which slices are training images: the paper's COVID-19 and CAP images show infection, so for
those patients the slices containing lesion are used (from the lesion mask when the study has
one, else the weakly annotated "positive" slices); a normal patient contributes every slice that
contains lung. Each slice carries its patient's class. ``params.balance`` says how classes are
balanced: "loss" (the paper) weights the focal loss by inverse class frequency and shows every
slice once per epoch; "sampling" draws the same number of slices of every class each epoch
(``params.epoch_samples`` in all, default the training slice count), with replacement only for a
class that has fewer, and leaves the loss unweighted. Sampling keeps the rare class's slices in
every batch, which a CPU budget of a few thousand updates needs.

Augmentation follows Sect. II-G.3: centre crop of 0.7-1 of the side, rotation within +-25 degrees,
left-right flip with p = 0.5, and, with ``params.contrast_augmentation`` (the paper's CA; off is NCA),
contrast scaled by a random factor in 0.5-1.5. The contrast change is applied about mid-grey of the
[0, 1] window (the shared :func:`~covidweak.training.tasks.weakseg_data.augment`), not about each
image's mean as TensorFlow's ``random_contrast`` would.

Validation keeps the checkpoint with the best *balanced* slice accuracy (the mean over classes of
the share of their slices called right). The paper keeps the best validation accuracy; on slices
that are mostly normal, plain accuracy rewards calling everything normal. Validation also
chooses the patient aggregation's ``top_k`` (:func:`~covidweak.diagnosis.aggregate.choose_top_k`
on the validation patients) and reports its study accuracy; the exported weights store the
``top_k`` chosen for the kept checkpoint.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from ...diagnosis.aggregate import choose_top_k
from ...diagnosis.model import METHOD, TOP_K, WIDTH, build_diagnosis_model, class_task
from ...diagnosis.predict import slice_probabilities
from ...losses import class_balanced_weights, focal_loss
from ...losses.focal import FOCAL_GAMMA
from ...losses.mil import POSITIVE
from ...weakseg.prepare import DEFAULT_PREPROCESS
from ..task import ExportSpec, TaskData
from .weakseg_data import Augment, PreparedStudy, batches, prepare_study

CROP_SCALE = (0.7, 1.0)  # Hu et al. Sect. II-G.3 (1): centre crops of 0.7-1 of the side
ROTATE_DEG = 25.0  # Sect. II-G.3 (2)
CONTRAST_FACTOR = (0.5, 1.5)  # Sect. II-G.3 (4): darkening or brightening by 0.5-1.5


def augmentation(contrast: bool) -> Augment:
    """Hu et al.'s augmentation as an :class:`Augment`; ``contrast`` switches CA on (else NCA)."""
    return Augment(flip=True, shift=0.0, rotate_deg=ROTATE_DEG, zoom=1.0 / CROP_SCALE[0], brightness=0.0,
                   contrast=(CONTRAST_FACTOR[1] - CONTRAST_FACTOR[0]) / 2.0 if contrast else 0.0)


def training_slices(study: PreparedStudy, diagnosis: str) -> list[int]:
    """Canonical slice indices that are training images of one study (see the module docstring)."""
    lung = study.lungs.any(axis=(1, 2)) if study.lungs is not None else np.ones(len(study.labels), bool)
    if diagnosis == "normal":
        return np.flatnonzero(lung).tolist()
    if study.lesion is not None:
        return np.flatnonzero(study.lesion.any(axis=(1, 2)) & lung).tolist()
    return [k for k, label in enumerate(study.labels) if label == POSITIVE]


def balanced_draw(samples: list, total: int, rng: np.random.Generator) -> list:
    """``total`` samples (rounded down to a multiple of the class count), the same number of each
    class, in random order. samples: (study, slices, label) tuples; a class with fewer samples
    than its share is drawn with replacement, the others without."""
    by_class: dict[int, list[int]] = {}
    for i, (_, _, label) in enumerate(samples):
        by_class.setdefault(label, []).append(i)
    share = max(1, int(total) // len(by_class))
    picked = np.concatenate([rng.choice(members, size=share, replace=len(members) < share)
                             for _, members in sorted(by_class.items())])
    return [samples[i] for i in rng.permutation(picked)]


class DiagnosisTask:
    name = "diagnosis"
    selection_metric = "val_balanced_slice_accuracy"
    higher_is_better = True
    defaults = {
        "model": {"classes": "3-way", "width": WIDTH["paper"], "top_k": TOP_K},
        "params": {"augment": True, "contrast_augmentation": True, "gamma": FOCAL_GAMMA, "val_batch_size": 16,
                   "balance": "loss", "epoch_samples": None},
        "preprocess": {**DEFAULT_PREPROCESS, "input_size": 224},  # Hu et al.: 224 x 224 input
    }

    def __init__(self):
        self.train_set: list[PreparedStudy] = []
        self.val_set: list[PreparedStudy] = []
        self.samples: list[tuple[int, tuple[int, ...], int]] = []
        self.val_samples: list[tuple[int, tuple[int, ...], int]] = []
        self.val_labels: list[int] = []

    def section(self, config: dict, name: str) -> dict:
        return {**self.defaults[name], **(config.get(name) or {})}

    def arch(self, config: dict, metrics: Optional[dict] = None) -> dict:
        """The ``arch`` stored with the weights (see :mod:`covidweak.diagnosis.model`).

        ``top_k`` is the one validation chose for the exported checkpoint (``metrics["val_top_k"]``)
        when the run recorded one, else ``model.top_k`` of the config.
        """
        model, params = self.section(config, "model"), self.section(config, "params")
        data = config.get("data") or {}
        top_k = int((metrics or {}).get("val_top_k") or model["top_k"])
        return {"classes": list(class_task(model["classes"])), "width": float(model["width"]), "top_k": top_k,
                "contrast_augmentation": bool(params["augment"] and params["contrast_augmentation"]),
                "split": {"seed": int(config.get("seed", 0)), "fractions": list(data.get("fractions") or [])}}

    def build_model(self, config: dict):
        return build_diagnosis_model(METHOD, self.arch(config))

    def _prepare(self, records, config: dict):
        classes = class_task(self.section(config, "model")["classes"])
        preprocess = self.section(config, "preprocess")
        studies, samples, labels = [], [], []
        for record in (r for r in records if r.diagnosis in classes):
            study = prepare_study(record, preprocess, with_masks=True)
            label = classes.index(record.diagnosis)
            samples += [(len(studies), (k,), label) for k in training_slices(study, record.diagnosis)]
            studies.append(study)
            labels.append(label)
        return studies, samples, labels

    def prepare(self, data: TaskData, config: dict) -> None:
        classes = class_task(self.section(config, "model")["classes"])
        self.train_set, self.samples, _ = self._prepare(data.splits["train"], config)
        self.val_set, self.val_samples, self.val_labels = self._prepare(data.splits.get("val", []), config)
        counts = np.bincount([label for _, _, label in self.samples], minlength=len(classes))
        if (counts == 0).any():
            missing = [c for c, n in zip(classes, counts) if n == 0]
            raise ValueError(f"no training slices of class {', '.join(missing)}: the training split needs every class")
        # Sampling already balances the classes; weighting the loss as well would count it twice.
        # (params.balance is one of losses.focal.CLASS_BALANCE, checked with the config.)
        balanced_by_loss = self.section(config, "params")["balance"] == "loss"
        self.class_weights = class_balanced_weights(counts.tolist()) if balanced_by_loss else None

    def train_batches(self, config: dict, epoch: int, seed: int):
        """One epoch's batches in an order fixed by (seed, epoch): every training slice once
        ("loss"), or the same number of slices per class ("sampling")."""
        params = self.section(config, "params")
        rng = np.random.default_rng([int(seed), int(epoch)])
        if params["balance"] == "sampling":
            order = balanced_draw(self.samples, params["epoch_samples"] or len(self.samples), rng)
        else:
            order = [self.samples[i] for i in rng.permutation(len(self.samples))]
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        spec = augmentation(params["contrast_augmentation"]) if params["augment"] else None
        return list(batches(self.train_set, order, int(config["batch_size"]), spec, generator))

    def training_step(self, model, batch: dict, config: dict, device) -> dict[str, Any]:
        x = batch["x"].to(device, non_blocking=True)
        y = batch["y"].to(device, non_blocking=True)[:, 0].long()
        gamma = float(self.section(config, "params")["gamma"])
        return {"loss": focal_loss(model(x).score, y, gamma=gamma, weights=self.class_weights)}

    def validate(self, model, config: dict, device) -> dict[str, float]:
        """Slice accuracy (plain and balanced over classes) on the val split's training-type slices;
        the ``top_k`` chosen on the val patients and their study accuracy at it."""
        classes = class_task(self.section(config, "model")["classes"])
        batch_size = int(self.section(config, "params")["val_batch_size"])
        right, total = np.zeros(len(classes)), np.zeros(len(classes))  # val slices per true class
        patients = []
        for s, study in enumerate(self.val_set):
            lung = np.flatnonzero(study.lungs.any(axis=(1, 2))) if study.lungs is not None else np.arange(len(study.labels))
            probs = slice_probabilities(model, study.stacks[lung], device, batch_size)
            row = {int(k): i for i, k in enumerate(lung)}
            for _, (k,), label in (sample for sample in self.val_samples if sample[0] == s):
                right[label] += int(probs[row[k]].argmax() == label)
                total[label] += 1
            patients.append(probs)
        if not patients:
            return {"val_slice_accuracy": float("nan"), "val_balanced_slice_accuracy": float("nan"),
                    "val_study_accuracy": float("nan"), "val_studies": 0.0}
        seen = total > 0
        top_k, accuracy = choose_top_k(patients, np.array(self.val_labels), classes)
        return {"val_slice_accuracy": float(right.sum() / max(total.sum(), 1)),
                "val_balanced_slice_accuracy": float((right[seen] / total[seen]).mean()),
                "val_study_accuracy": accuracy[top_k], "val_top_k": float(top_k), "val_studies": float(len(patients))}

    def export_spec(self, config: dict, metrics: Optional[dict] = None) -> ExportSpec:
        return ExportSpec(method=METHOD, arch=self.arch(config, metrics), preprocess=self.section(config, "preprocess"))
