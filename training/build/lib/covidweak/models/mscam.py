"""Multi-scale CAM classifier of Hu et al. (IEEE Access 2020, Sect. II-D/E, Fig. 1).

A VGG-like fully convolutional network of five blocks,
2xC(32) - MP - 2xC(64) - MP - 3xC(128) - MP - 3xC(256) - MP - 3xC(256) - MP,
every C a 3x3 convolution + batch norm + ReLU and MP a 2x2 max pooling. Conv3, Conv4 and Conv5
each feed a 1x1 convolution to K class maps; global max pooling (GMP) turns each map into
scores and the three score vectors are summed into the prediction, trained with the
class-balanced focal loss (:mod:`covidweak.losses.focal`).

The class maps are read before each block's pooling: GMP of a 2x2 max-pooled map equals GMP of
the map itself (for even sizes), so scores are unchanged while the maps keep twice the
resolution; the trailing MP after Conv5 therefore has no effect and is left out.

Class 0 is "no lesion"; classes 1..K-1 are lesion (or disease) classes, K = 2 by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

BLOCK_CHANNELS = (32, 64, 128, 256, 256)
BLOCK_CONVS = (2, 2, 3, 3, 3)
CAM_BLOCKS = (2, 3, 4)  # Conv3, Conv4, Conv5 (0-based block indices)


def _conv_block(cin: int, cout: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


@dataclass
class MultiScaleCAMOutput:
    """``cams``: class maps at Conv3/4/5, (N, K, H/4, W/4), (N, K, H/8, W/8), (N, K, H/16, W/16);
    ``score``: summed GMP scores (N, K), softmax logits."""

    cams: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    score: torch.Tensor

    @property
    def lesion_logits(self) -> torch.Tensor:
        """(N, K - 1, H/4, W/4): per lesion class k, S_k - logsumexp(other S) of the summed maps.

        Its sigmoid is the per-pixel softmax probability of class k, mirroring how the image
        scores are combined (sum over scales, softmax over classes).
        """
        size = self.cams[0].shape[-2:]
        joint = sum(F.interpolate(c.float(), size=size, mode="bilinear", align_corners=False) for c in self.cams)
        logits = []
        for k in range(1, joint.shape[1]):
            others = torch.cat([joint[:, :k], joint[:, k + 1 :]], dim=1)
            logits.append(joint[:, k] - torch.logsumexp(others, dim=1))
        return torch.stack(logits, dim=1)


class MultiScaleCAM(nn.Module):
    """(N, in_channels, H, W) -> :class:`MultiScaleCAMOutput`; H, W multiples of 16."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"the softmax classifier needs at least 2 classes, got {num_classes}")
        channels = [max(4, int(round(c * width))) for c in BLOCK_CHANNELS]
        cins = [in_channels] + channels[:-1]
        self.blocks = nn.ModuleList(_conv_block(ci, co, n) for ci, co, n in zip(cins, channels, BLOCK_CONVS))
        self.heads = nn.ModuleList(nn.Conv2d(channels[b], num_classes, 1) for b in CAM_BLOCKS)

    def forward(self, x: torch.Tensor) -> MultiScaleCAMOutput:
        maps = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            if i in CAM_BLOCKS:
                maps.append(self.heads[CAM_BLOCKS.index(i)](x))
        score = sum(m.amax(dim=(2, 3)) for m in maps)
        return MultiScaleCAMOutput(cams=tuple(maps), score=score)
