"""One name per weakly supervised segmentation method, and the network each name builds.

Training and inference both go through :func:`build_model`, so a weight file always
loads into exactly the class that produced it. ``arch`` is a small JSON-able dict
stored with the weights (see :mod:`covidweak.models.weights`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .cam import CAMNet
from .cxr import CXR_METHODS, build_cxr_model
from .mscam import MultiScaleCAM
from .resnet38 import config_by_name
from .seam import PCM_POWER, SEAM

METHODS = ("mseamnam", "seamnam", "seam", "cam", "mscam", "unet")
"""Table 1 of Tang et al. (MICCAI 2021): M-SEAM-NAM, SEAM+NAM, SEAM, CAM, multi-scale CAM
(Hu et al.) and a fully supervised U-Net trained on the sparse masks."""

SEAM_METHODS = ("mseamnam", "seamnam", "seam")
UNET_CHANNELS = {"light": (16, 32, 64, 128, 256), "box": (16, 32, 64, 128, 256), "paper": (32, 64, 128, 256, 512)}
"""MONAI U-Net widths; Tang et al. do not give theirs, "paper" is the common 32-base U-Net."""

DEFAULT_ARCH = {"backbone": "light", "input_size": 448, "pooling": "gap", "freeze_bn": False, "pcm_power": PCM_POWER}

OTHER_BUILDERS: dict[str, str] = {
    "cxr-embed": "covidweak.models.severity_vit:build_severity_model",
    "severity": "covidweak.models.severity_vit:build_severity_model",
    "ducn": "covidweak.models.ducn:build_ducn",
    "fecnn": "covidweak.models.fecnn:build_fecnn",
    "diagnosis": "covidweak.diagnosis.model:build_diagnosis_model",
    "ct-lungs": "covidweak.models.cxr:build_cxr_model",  # the radiograph's lung U-Net, on CT slices
}
"""Networks of the other modules (severity, diagnosis, similar cases, lesion types):
method name -> ``"module:function"``, the function taking ``(method, arch)`` and returning a
fresh network. Imported only when asked for, so a weight file of any method loads through
:func:`build_model` without this module importing every network."""


@dataclass
class UNetOutput:
    """Per-pixel lesion logits (N, 1, H, W), under the name the CAM-type outputs use."""

    lesion_logits: torch.Tensor


class LesionUNet(nn.Module):
    """MONAI's 2-D U-Net on 3-slice stacks -> :class:`UNetOutput` (fully supervised baseline)."""

    # Its per-pixel logits sit near 0 at lesion borders, where bf16 rounding through the
    # decoder moved probabilities by 0.02 on an H100 (more than the 1e-2 CPU/GPU agreement
    # this project promises); the network is small, so inference keeps it in float32.
    bf16_inference = False

    def __init__(self, size: str = "light", in_channels: int = 3):
        super().__init__()
        from monai.networks.nets import UNet

        self.net = UNet(spatial_dims=2, in_channels=in_channels, out_channels=1,
                        channels=UNET_CHANNELS[size], strides=(2, 2, 2, 2), num_res_units=2)

    def forward(self, x: torch.Tensor) -> UNetOutput:
        return UNetOutput(self.net(x))


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}': choose one of {', '.join(METHODS)}")
    return method


def build_model(method: str, arch: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialised network for ``method``.

    ``arch["backbone"]``: "light" (shipped weights, CPU), "box" (the stride-4 network of the
    1.4 mm lung box, :data:`~covidweak.models.resnet38.BOX`) or "paper" (ResNet-38 model A,
    VGG-width multi-scale CAM, 32-base U-Net). The chest X-ray networks of
    :data:`~covidweak.models.cxr.CXR_METHODS` are built here too, so their weight files load alike.
    """
    if method in CXR_METHODS:
        return build_cxr_model(method, arch)
    if method in OTHER_BUILDERS:
        module_name, _, function = OTHER_BUILDERS[method].partition(":")
        return getattr(importlib.import_module(module_name), function)(method, arch)
    arch = {**DEFAULT_ARCH, **(arch or {})}
    size = arch["backbone"]
    if size not in UNET_CHANNELS:
        raise ValueError(f"unknown backbone '{size}': use one of {', '.join(UNET_CHANNELS)}")
    method = check_method(method)
    if method in SEAM_METHODS:
        return SEAM(config_by_name(size), pooling=arch["pooling"], freeze_bn=arch["freeze_bn"],
                    pcm_power=float(arch["pcm_power"]))
    if method == "cam":
        return CAMNet(config_by_name(size), pooling=arch["pooling"], freeze_bn=arch["freeze_bn"])
    if method == "mscam":
        # Two image classes (no lesion / lesion): the slice-level task the weak labels give.
        return MultiScaleCAM(num_classes=2, width=1.0 if size == "paper" else 0.25)
    return LesionUNet(size)


ABSENT_LOGIT = -30.0
"""Logit of every pixel of a slice its classifier calls lesion-free: sigmoid ~1e-13, below any T_fg."""


def slice_has_lesion(output) -> torch.Tensor | None:
    """(N,) bool: the slices whose image score says "lesion", or None for a model without one.

    CAM, SEAM and M-SEAM-NAM score p is one logit (lesion when p > 0, i.e. sigmoid(p) > 0.5);
    multi-scale CAM has softmax scores over (no lesion, lesion). The U-Net has no image score.
    """
    score = getattr(output, "score", None)
    if score is None:
        return None
    return score[:, 0] > 0 if score.shape[1] == 1 else score.argmax(dim=1) > 0


def lesion_logits(model: nn.Module, x: torch.Tensor, gate: bool = False) -> torch.Tensor:
    """(N, 3, H, W) stacks -> lesion logit maps (N, 1, h, w) for inference.

    SEAM-type models run one scale only: the large-scale refined map D_l is what
    M-SEAM-NAM thresholds (Sect. 2.2), and the small scale only serves the training losses.

    ``gate=True`` (segmentation) sets the whole map of a slice its own classifier calls
    lesion-free to :data:`ABSENT_LOGIT`. A class activation map is the evidence for a class
    the classifier finds present (Zhou et al. 2016); computed for an absent class it still
    has high values wherever the slice looks most lesion-like. With one sigmoid class and
    p = GAP(C) (Eq. 1), a positive slice is learnt by raising C over much of the lung, so
    sigmoid(C) and sigmoid(D) pass T_fg = 0.1 far from any lesion on *every* slice. Tang et al.
    do not spell the gate out, but their Table 1 needs it: CAM reaches lesion recall 0.974 at
    precision 0.060 (it marks most of the lung of positive slices) and still segments nothing
    in 96 % of negative patients. Without an image score (U-Net) the map is returned as is.
    """
    output = model.branch(x) if isinstance(model, SEAM) else model(x)
    logits = output.lesion_logits
    present = slice_has_lesion(output) if gate else None
    if present is None:
        return logits
    return torch.where(present[:, None, None, None], logits, logits.new_full((), ABSENT_LOGIT))
