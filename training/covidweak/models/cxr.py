"""The right/left lung segmentation U-Net: of chest radiographs (Kim et al.'s severity pipeline) and of CT slices.

Kim et al. segment the lungs first so that each lung can be split into its three zones;
the network labels every radiograph pixel background (0), right lung (1) or left lung (2).
The same network, trained on axial CT slices (task ``ct-lungs``), puts back the dense lung
the classical CT lung mask misses (:mod:`covidweak.lungs.learned`).
"""

from __future__ import annotations

import torch
from torch import nn

CXR_METHODS = ("cxr-lungs",)
CXR_LUNG_CLASSES = 3
DEFAULT_CXR_ARCH = {"channels": [16, 32, 64, 128, 256], "num_res_units": 2}


class LungUNet(nn.Module):
    """MONAI 2-D U-Net: (N, 1, H, W) image in [0, 1] (radiograph or windowed CT slice) -> (N, 3, H, W) class logits."""

    def __init__(self, channels=DEFAULT_CXR_ARCH["channels"], num_res_units: int = DEFAULT_CXR_ARCH["num_res_units"]):
        super().__init__()
        from monai.networks.nets import UNet

        channels = tuple(channels)
        self.net = UNet(spatial_dims=2, in_channels=1, out_channels=CXR_LUNG_CLASSES, channels=channels,
                        strides=(2,) * (len(channels) - 1), num_res_units=num_res_units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_cxr_model(method: str, arch: dict | None = None) -> nn.Module:
    arch = {**DEFAULT_CXR_ARCH, **(arch or {})}
    return LungUNet(arch["channels"], arch["num_res_units"])
