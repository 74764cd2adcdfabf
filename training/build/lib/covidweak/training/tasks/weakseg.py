"""The six lesion segmentation tasks of Table 1 of Tang et al. (MICCAI 2021).

=================  ===========  ==================================================  ==========
task               method       loss                                                samples
=================  ===========  ==================================================  ==========
cam-pretrain       cam          L_cls (Eq. 1 at one scale; Eq. 7 with ``mil``)      slices
seam               seam         L_cls + L_ER + L_ECR (Eq. 1-3)                      slices
seam-nam           seamnam      Eq. 8 with Eq. 1                                    slices
mseamnam           mseamnam     Eq. 8 with the bag loss Eq. 7                       bags of 8
mscam              mscam        class-balanced focal loss, gamma = 1 (Hu et al.)    slices
unet               unet         Dice + BCE on the sparse lesion masks               slices+mask
=================  ===========  ==================================================  ==========

Data handling is in :mod:`.weakseg_data`. Every task validates the same way (:func:`validate_studies`)
and exports the ``preprocess`` dict its slices were prepared with, so inference sees the same input.
The paper updates M-SEAM-NAM "every eight batches" of one bag (Sect. 2.3). Its SEAM backbone keeps
BatchNorm frozen; this one trains it, so the paper configs put the 8 bags in one batch
(``batch_size: 64``) instead of accumulating 8 one-bag batches, whose BatchNorm statistics would
be those of a single bag (see ``training/configs/cam-pretrain.mil.yaml``).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...errors import InputError
from ...losses import T_BG, T_FG, NAM_RADIUS, cam_pretraining_loss, class_balanced_weights, focal_loss, m_seam_nam_loss
from ...losses.focal import FOCAL_GAMMA
from ...losses.mil import BAG_SIZE
from ...metrics import dice
from ...models import build_model, cam_to_probability, lesion_logits, load_weights, transfer_cam_weights
from ...models.seam import PCM_POWER
from ...weakseg.prepare import DEFAULT_PREPROCESS
from ..checkpoint import load_checkpoint
from ..runs import RunFolder
from ..task import ExportSpec, TaskData
from .weakseg_data import Augment, PreparedStudy, bag_samples, batches, epoch_samples, mask_samples, prepare_study, slice_samples

LESION_PRIOR = 0.01  # rough lesion fraction of a positive phantom slice: the U-Net's starting output
SAMPLERS = {"slices": slice_samples, "bags": bag_samples, "masks": mask_samples}


def validate_studies(model, studies: list[PreparedStudy], device, threshold: float = T_FG, batch_size: int = 16) -> dict[str, float]:
    """Patient-level Dice of the thresholded lesion probability inside the lungs (Table 1's convention).

    Each study's slices are predicted one by one (the networks are 2-D) at input resolution
    S x S; pixels with probability > ``threshold`` inside the lung mask form the segmentation,
    compared with the lesion mask over the whole volume. Slices the model's classifier calls
    lesion-free segment nothing, exactly as at inference (``lesion_logits(..., gate=True)``).
    Positive patients (any study not all
    negative) score their Dice; negative patients score 1 if nothing is segmented, else 0.
    Returns ``val_dice`` (positives), ``val_dice_negative`` and ``val_dice_all``.
    """
    model.eval()
    positive, negative = [], []
    with torch.no_grad():
        for study in studies:
            if study.lungs is None or (study.lesion is None and not study.negative):
                raise ValueError(f"validation needs lung and lesion masks; study {study.study_id} lacks one")
            size = study.stacks.shape[-2:]
            found = []
            for start in range(0, len(study.stacks), batch_size):
                x = torch.from_numpy(study.stacks[start : start + batch_size]).float().to(device)
                output = SimpleNamespace(lesion_logits=lesion_logits(model, x, gate=True))
                found.append((cam_to_probability(output, size)[:, 0] > threshold).cpu().numpy())
            segmented = np.concatenate(found) & study.lungs
            if study.negative:
                negative.append(0.0 if segmented.any() else 1.0)
            else:
                positive.append(dice(segmented, study.lesion & study.lungs))
    mean = lambda values: float(np.mean(values)) if values else float("nan")  # noqa: E731
    return {"val_dice": mean(positive), "val_dice_negative": mean(negative), "val_dice_all": mean(positive + negative),
            "val_positive_patients": float(len(positive)), "val_negative_patients": float(len(negative))}


def _transfer_init(model, source: str) -> None:
    """Initialise a SEAM-type model from CAM pre-trained weights (Sect. 2.1), or a CAM from an
    earlier CAM (to continue its training on other patients).

    ``source``: a weight file written by ``covidweak export`` (method "cam"), or the run
    folder of a ``cam-pretrain`` training, whose best checkpoint is used.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        payload = load_checkpoint(RunFolder(path).best, CamPretrainTask.name)
        cam = build_model("cam", payload["config"]["model"])
        cam.load_state_dict(payload["model"])
    else:
        cam = load_weights(path, method="cam").model
    transfer_cam_weights(cam, model)


class WeakSegTask:
    """What all six tasks share: config sections, data preparation, batches and validation.

    Subclasses set ``name``, ``method``, ``sampling`` ("slices", "bags" or "masks") and
    ``balance``, and define ``loss(output, y, mask, params) -> dict`` whose ``"loss"`` is the
    scalar to backpropagate (y: (B, 1) labels; mask: (N, 1, S, S) or None).
    """

    # The best checkpoint has the best mean Dice over positive *and* normal validation patients:
    # positive Dice alone rewards a model that marks every normal patient as well.
    selection_metric = "val_dice_all"
    higher_is_better = True
    name: str
    method: str
    sampling = "slices"
    balance = True  # Sect. 3.1: negative slices drawn at random to balance the positives
    extra_params: dict = {}
    extra_model: dict = {}

    def __init__(self):
        self.train_set: list[PreparedStudy] = []
        self.val_set: list[PreparedStudy] = []
        self.class_counts = (1, 1)

    @property
    def defaults(self) -> dict:
        return {
            # pooling: "gap" is Eq. 1; "gmp" is the ablation of covidweak.models.cam.POOLINGS.
            # freeze_bn: false, true or "stats": BatchNorm fixed at its initial state; see models.resnet38.FREEZE_BN.
            "model": {"backbone": "light", "pooling": "gap", "freeze_bn": False, **self.extra_model},
            # epoch_samples: null, or the most samples (slices, bags or masks) one epoch draws, so
            # that a long run validates and keeps its best checkpoint every so many samples.
            "params": {"augment": True, "threshold": T_FG, "val_batch_size": 16, "epoch_samples": None,
                       **self.extra_params},
            "preprocess": dict(DEFAULT_PREPROCESS),
        }

    def section(self, config: dict, name: str) -> dict:
        """A task-owned config section with this task's defaults filled in."""
        return {**self.defaults[name], **(config.get(name) or {})}

    def sampling_for(self, config: dict) -> str:
        return self.sampling

    def build_model(self, config: dict):
        """The task's network; ``params.init_from`` (tasks that have it) names CAM weights to start from."""
        model = build_model(self.method, self.section(config, "model"))
        source = self.section(config, "params").get("init_from")
        if source:
            _transfer_init(model, source)
        return model

    def prepare(self, data: TaskData, config: dict) -> None:
        preprocess = self.section(config, "preprocess")
        self.train_set = [prepare_study(r, preprocess, with_masks=self.sampling_for(config) == "masks")
                          for r in data.splits["train"]]
        self.val_set = [prepare_study(r, preprocess) for r in data.splits.get("val", [])]
        positives, negatives = self._candidates(config)
        if not positives or not negatives:
            raise InputError(f"{self.name} needs training samples of both kinds, got {len(positives)} positive and "
                             f"{len(negatives)} negative ({self.sampling_for(config)}); the training split needs a "
                             "patient with labelled lesion slices and a normal patient: add patients to the dataset")
        self.class_counts = (len(negatives), len(positives))

    def _candidates(self, config: dict):
        return SAMPLERS[self.sampling_for(config)](self.train_set)

    def train_batches(self, config: dict, epoch: int, seed: int) -> Iterable[Any]:
        """One epoch: every positive sample and (balanced) negatives, shuffled by (seed, epoch).

        ``config["batch_size"]`` counts slices; the bag tasks take ``batch_size // 8`` bags per
        batch (at least one): ``batch_size: 64`` is 8 bags.
        Augmentation draws from a generator seeded the same way, so a resumed epoch repeats exactly.
        """
        params = self.section(config, "params")
        rng = np.random.default_rng([int(seed), int(epoch)])
        samples = epoch_samples(*self._candidates(config), balance=self.balance, rng=rng)
        if params["epoch_samples"] is not None:
            samples = samples[: int(params["epoch_samples"])]  # already in random order
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        spec = Augment() if params["augment"] else None
        per_batch = int(config["batch_size"])
        if self.sampling_for(config) == "bags":
            per_batch = max(1, per_batch // BAG_SIZE)
        return list(batches(self.train_set, samples, per_batch, spec, generator, with_masks=self.sampling == "masks"))

    def training_step(self, model, batch: dict, config: dict, device) -> dict[str, Any]:
        # Bags arrive as (B, bag, C, S, S) so that splitting a batch over ranks keeps bags whole.
        x = batch["x"].to(device, non_blocking=True).flatten(0, -4)
        y = batch["y"].to(device, non_blocking=True)
        mask = batch["mask"].to(device, non_blocking=True) if batch.get("mask") is not None else None
        return self.loss(model(x), y, mask, self.section(config, "params"))

    def validate(self, model, config: dict, device) -> dict[str, float]:
        params = self.section(config, "params")
        return validate_studies(model, self.val_set, device, float(params["threshold"]), int(params["val_batch_size"]))

    def export_spec(self, config: dict, metrics: Optional[dict] = None) -> ExportSpec:
        return ExportSpec(method=self.method, arch=self.section(config, "model"), preprocess=self.section(config, "preprocess"))


class CamPretrainTask(WeakSegTask):
    """CAM on ResNet-38 with L_cls only (Sect. 2.1): the CAM baseline and SEAM's initialisation.

    ``params.mil: true`` trains on bags with Eq. 7, the pre-training variant of Sect. 2.3.
    """

    name, method = "cam-pretrain", "cam"
    extra_params = {"mil": False, "init_from": ""}

    def sampling_for(self, config: dict) -> str:
        return "bags" if self.section(config, "params")["mil"] else "slices"

    def loss(self, output, y, mask, params):
        bag_size = BAG_SIZE if params["mil"] else None
        return {"loss": cam_pretraining_loss(output.score, y, bag_size=bag_size)}


class SeamTask(WeakSegTask):
    """SEAM (Sect. 2.1): L_cls + L_ER + L_ECR on single labelled slices."""

    name, method = "seam", "seam"
    use_nam = False
    bag_size: Optional[int] = None
    # equivariance: the maps L_ER / L_ECR compare, "normalised" (SEAM's) or "logits"; see losses.seam.
    extra_params = {"init_from": "", "equivariance": "normalised"}
    extra_model = {"pcm_power": PCM_POWER}

    def loss(self, output, y, mask, params):
        terms = m_seam_nam_loss(output, y, bag_size=self.bag_size, use_nam=self.use_nam,
                                radius=int(params.get("nam_radius", NAM_RADIUS)),
                                t_fg=float(params.get("t_fg", T_FG)), t_bg=float(params.get("t_bg", T_BG)),
                                equivariance=str(params["equivariance"]))
        return {"loss": terms.total, **{key: value.detach() for key, value in terms._asdict().items() if key != "total"}}


class SeamNamTask(SeamTask):
    """SEAM with the neighbourhood affinity losses (Sect. 2.2, Eq. 8 with Eq. 1)."""

    name, method = "seam-nam", "seamnam"
    use_nam = True
    extra_params = {**SeamTask.extra_params, "nam_radius": NAM_RADIUS, "t_fg": T_FG, "t_bg": T_BG}


class MSeamNamTask(SeamNamTask):
    """M-SEAM-NAM (Sect. 2.3): Eq. 8 with the multi-instance bag loss Eq. 7 on bags of 8 slices."""

    name, method = "mseamnam", "mseamnam"
    sampling = "bags"
    bag_size = BAG_SIZE


class MultiScaleCamTask(WeakSegTask):
    """Multi-scale CAM of Hu et al.: focal loss (gamma = 1) weighted by inverse class frequency."""

    name, method = "mscam", "mscam"
    balance = False  # Hu et al. balance through the class weights of the loss, not by sampling
    extra_params = {"gamma": FOCAL_GAMMA}

    def loss(self, output, y, mask, params):
        weights = class_balanced_weights(self.class_counts)
        return {"loss": focal_loss(output.score, y[:, 0].long(), gamma=float(params["gamma"]), weights=weights)}


class UNetTask(WeakSegTask):
    """Fully supervised U-Net on the sparse masks plus as many negative slices (Sect. 3.1), Dice + BCE."""

    name, method = "unet", "unet"
    sampling = "masks"

    def build_model(self, config: dict):
        """The U-Net with its output starting at the lesion prior's log-odds.

        Lesions cover about 1 % of a training slice. From MONAI's zero-centred output the BCE
        spends hundreds of updates just lowering the output bias; starting at the prior (as
        Lin et al. do for the focal loss) lets the first updates shape the lesions instead.
        """
        model = super().build_model(config)
        heads = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.out_channels == 1]
        for head in heads:  # the output convolution and its residual branch: their biases add up
            nn.init.constant_(head.bias, math.log(LESION_PRIOR / (1.0 - LESION_PRIOR)) / len(heads))
        return model

    def loss(self, output, y, mask, params):
        logits = output.lesion_logits.float()
        probability = torch.sigmoid(logits)
        # Dice over the whole batch: a slice without lesion has no Dice of its own.
        overlap = (probability * mask).sum()
        dice_loss = 1.0 - (2.0 * overlap + 1.0) / (probability.sum() + mask.sum() + 1.0)
        bce = F.binary_cross_entropy_with_logits(logits, mask)
        return {"loss": dice_loss + bce, "dice_loss": dice_loss.detach(), "bce": bce.detach()}
