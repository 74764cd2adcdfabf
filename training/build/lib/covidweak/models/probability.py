"""Lesion probability maps at input resolution from any model output here."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def cam_to_probability(output, size: tuple[int, int]) -> torch.Tensor:
    """Lesion probability (N, C, H, W) in [0, 1] at ``size`` = (H, W), in float32.

    ``output`` is a SEAM, CAM or multi-scale CAM output (anything with ``lesion_logits``). The
    map is sigmoid(D_l) for SEAM / M-SEAM-NAM (the map NAM thresholds, Sect. 2.2), sigmoid(C)
    for CAM and the per-pixel softmax lesion probability for multi-scale CAM. Logits are
    upsampled bilinearly *before* the sigmoid, so probabilities between the stride-8 pixels
    follow the logits rather than being averaged after saturation.
    """
    logits = output.lesion_logits.float()
    return torch.sigmoid(F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False))
