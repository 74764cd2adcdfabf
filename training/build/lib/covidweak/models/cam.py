"""Plain CAM classifier (Zhou et al., CVPR 2016) on the ResNet-38 backbone.

It is the "CAM" baseline of Tang et al. (MICCAI 2021, Table 1) and the network of their CAM
pre-training (Sect. 2.1): the backbone is trained with L_cls alone and then initialises SEAM.
:class:`CAMHead` is shared with :class:`~covidweak.models.seam.SEAM`, and both models name
their parts ``backbone`` and ``cam_head``, so :func:`transfer_cam_weights` is a state-dict copy.

For the binary lesion task there is one output class, *lesion*. Its map is a logit map: the
image score is its global average (p in Eq. 1) and ``sigmoid`` of a pixel is that pixel's
lesion probability. Background needs no channel of its own: with one class its score is the
negated lesion logit, which is what SEAM's "1 - max foreground" background becomes for a
single sigmoid class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..losses.mil import bag_score

from .resnet38 import LIGHT, ResNet38, ResNet38Config

LESION_CLASSES = 1
CAM_DROPOUT = 0.5  # SEAM's dropout before its 1x1 classifier
POOLINGS = ("gap", "gmp", "noisy-or")
"""How the image score p comes from the class map: "gap", the global average of Eq. 1 (the paper),
"gmp", the global maximum (Hu et al.'s choice), or "noisy-or", pixel-level multiple-instance
pooling. Under GAP a lesion covering 0.3 % of a slice (the phantom's median) moves an average of
logits by 1/300 of its own logit, so a confident slice score needs lesion logits in the hundreds,
and the cheapest way to call a slice positive is to raise the whole map.

"noisy-or" reads every pixel's sigmoid as the probability that this pixel is lesion, and the
slice is lesion-free only if every pixel is: P(slice) = 1 - prod_ij (1 - sigmoid(C_ij)). It is
M-SEAM-NAM's own bag rule (Eq. 7, :func:`covidweak.losses.mil.bag_score`) applied to the pixels of
one slice instead of the slices of one bag, so the score is the log-odds of P and the soft margin
of Eq. 1 applies unchanged. One confident pixel suffices for a positive slice, and a negative slice
pushes every pixel down: the map stays a per-pixel probability, which T_fg thresholds."""

NOISY_OR_PIXEL_PRIOR = 1e-4
"""Starting lesion probability of each pixel under "noisy-or" (the classifier's bias starts at its
log-odds). With all pixels at 0.5 the noisy-OR of a 40 x 56 map would be 1 for every slice and
the loss would start saturated; at 1e-4 a 2240-cell map starts at P(slice) = 0.2."""


class CAMHead(nn.Module):
    """1x1 convolution without bias from features to class maps, then global pooling (:data:`POOLINGS`).

    Without a bias, GAP(conv(x)) equals a linear classifier on GAP(x): the class map is exactly
    the CAM of that classifier. Noisy-OR pooling adds a bias, the pixels' prior log-odds.
    """

    def __init__(self, in_channels: int, num_classes: int = LESION_CLASSES, dropout: float = CAM_DROPOUT,
                 pooling: str = "gap"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling '{pooling}': use one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.dropout = nn.Dropout2d(dropout)
        # Pixel probabilities need an offset that GAP and GMP do not: see NOISY_OR_PIXEL_PRIOR.
        noisy_or = pooling == "noisy-or"
        self.classifier = nn.Conv2d(in_channels, num_classes, 1, bias=noisy_or)
        nn.init.xavier_uniform_(self.classifier.weight)
        if noisy_or:
            nn.init.constant_(self.classifier.bias, math.log(NOISY_OR_PIXEL_PRIOR / (1.0 - NOISY_OR_PIXEL_PRIOR)))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, F, h, w) features -> class maps (N, C, h, w) and scores (N, C)."""
        cam = self.classifier(self.dropout(features))
        if self.pooling == "noisy-or":
            return cam, bag_score(cam.flatten(2))
        return cam, cam.mean(dim=(2, 3)) if self.pooling == "gap" else cam.amax(dim=(2, 3))


@dataclass
class CAMOutput:
    """``cam``: class logit maps (N, C, H/8, W/8); ``score``: image logits p (N, C)."""

    cam: torch.Tensor
    score: torch.Tensor

    @property
    def lesion_logits(self) -> torch.Tensor:
        return self.cam


class CAMNet(nn.Module):
    """ResNet-38 + :class:`CAMHead`: (N, 3, H, W) slices -> :class:`CAMOutput`."""

    def __init__(self, config: ResNet38Config = LIGHT, num_classes: int = LESION_CLASSES, pooling: str = "gap",
                 freeze_bn: bool | str = False):
        super().__init__()
        self.backbone = ResNet38(config, freeze_bn=freeze_bn)
        self.cam_head = CAMHead(self.backbone.feature_channels.final, num_classes, pooling=pooling)

    def forward(self, x: torch.Tensor) -> CAMOutput:
        cam, score = self.cam_head(self.backbone(x).final)
        return CAMOutput(cam=cam, score=score)


def transfer_cam_weights(cam_net: CAMNet, target: nn.Module) -> None:
    """Initialise ``target``'s backbone and CAM head from a CAM pre-trained network (Sect. 2.1).

    ``target`` is a model with ``backbone`` and ``cam_head`` attributes of the same
    configuration (e.g. :class:`~covidweak.models.seam.SEAM`); a mismatch raises
    ``RuntimeError`` from ``load_state_dict``.
    """
    target.backbone.load_state_dict(cam_net.backbone.state_dict())
    target.cam_head.load_state_dict(cam_net.cam_head.state_dict())
