"""ResNet-38 ("model A" of Wu, Shen & van den Hengel, *Wider or deeper*, Pattern Recognition 2019).

This is the backbone SEAM (Wang et al., CVPR 2020) and M-SEAM-NAM (Tang et al., MICCAI 2021,
Sect. 2.1) use: pre-activation wide residual blocks B2..B5 of two 3x3 convolutions, two
bottleneck blocks B6 and B7, output stride 8 (B5..B7 keep the resolution of B4 and dilate
instead of striding, so class activation maps stay detailed).

Two configurations exist:

* :data:`PAPER` -- the published widths (64 .. 4096 channels) and depth (3, 3, 6, 3 blocks
  in B2..B5, one bottleneck each in B6 and B7): about 104 M parameters.
* :data:`LIGHT` -- a quarter of the width and one or two blocks per stage (about 6 M
  parameters), for shipped weights and CPU inference.

Batch normalisation is trained as usual; SEAM froze ImageNet statistics, but M-SEAM-NAM
pre-trains on CT itself (CAM pre-training, Sect. 2.1), where no such statistics exist.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

# Channel widths of model A at width 1.0 (Wu et al., Table 1; SEAM's resnet38d).
STEM_CHANNELS = 64
B2_CHANNELS = 128
B3_CHANNELS = 256
B4_CHANNELS = 512
B5_MID_CHANNELS, B5_CHANNELS = 512, 1024
B6_CHANNELS = 2048
B7_CHANNELS = 4096

# Dilations that replace strides after B4 so the output stride stays 8.
B5_DILATION = 2
B6_B7_DILATION = 4

OUTPUT_STRIDES = (8, 4)
"""8: the paper's network (B4 strides, B5..B7 dilate 2 and 4). 4: B4 keeps B3's resolution and
every dilation doubles, so the receptive field in input pixels is the same while the map is twice
as fine. Stride 4 serves the 1.4 mm lung box (:mod:`covidweak.preprocess.lungbox`): 5.6 mm cells,
near the paper's 6.4 mm cells of a ~360 mm field at 448 pixels and stride 8."""

FREEZE_BN = (False, True, "stats")
"""BatchNorm modes of :class:`ResNet38`. False: trained as usual (the default). True: statistics
and affine parameters fixed, as SEAM's ResNet-38 trains on its ImageNet statistics. "stats":
statistics fixed, affine parameters trained. Both frozen modes are ablations: on the phantom
neither kept M-SEAM-NAM's bag loss off chance; several bags per batch did (see
:mod:`covidweak.training.tasks.weakseg`)."""


@dataclass(frozen=True)
class ResNet38Config:
    """Width and depth of a ResNet-38 backbone.

    ``blocks`` counts the residual blocks of B2, B3, B4 and B5; B6 and B7 are always one
    bottleneck block each. ``width`` scales every channel count.
    """

    width: float = 1.0
    blocks: tuple[int, int, int, int] = (3, 3, 6, 3)
    in_channels: int = 3
    dropout_b6: float = 0.3
    dropout_b7: float = 0.5
    output_stride: int = 8

    def channels(self, full_width: int) -> int:
        return max(8, int(round(full_width * self.width)))


PAPER = ResNet38Config()
LIGHT = ResNet38Config(width=0.25, blocks=(1, 1, 2, 1))
BOX = ResNet38Config(width=0.0625, blocks=(1, 1, 1, 1), output_stride=4)
"""The lung-box network: model A's shape (B2..B7, the B3/B4/B5 taps NAM reads) at a sixteenth of
its width and one block per stage, at output stride 4: about 0.24 M parameters. At stride 4 the
wide B6/B7 blocks run on 40 x 56 maps and dominate the cost, so width buys speed quadratically:
on 2 CPU cores a CAM step (forward, backward, Adam) on 16 boxes of 160 x 224 ran at 20.8 slices/s
at this width, 12.4 at 0.09 and 7.0 at 1/8
(``python scripts/probes/box_throughput.py --widths 0.0625 0.09 0.125``)."""
CONFIGS = {"paper": PAPER, "light": LIGHT, "box": BOX}


def config_by_name(name: str) -> ResNet38Config:
    """Return :data:`PAPER` or :data:`LIGHT` for ``"paper"`` or ``"light"``."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown backbone configuration '{name}': use one of {sorted(CONFIGS)}") from None


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class WideBlock(nn.Module):
    """Pre-activation residual block of two 3x3 convolutions (B2..B5).

    ``forward`` also returns the block's pre-activation ``relu(bn(x))``: it is the
    normalised view of the previous stage's output that SEAM reads as that stage's feature map.
    """

    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1, first_dilation: int = 1, dilation: int = 1):
        super().__init__()
        self.bn_a = nn.BatchNorm2d(cin)
        self.conv_a = _conv3x3(cin, mid, stride, first_dilation)
        self.bn_b = nn.BatchNorm2d(mid)
        self.conv_b = _conv3x3(mid, cout, 1, dilation)
        self.shortcut = _conv1x1(cin, cout, stride) if (cin != cout or stride != 1) else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        preact = F.relu(self.bn_a(x))
        identity = x if self.shortcut is None else self.shortcut(preact)
        y = self.conv_b(F.relu(self.bn_b(self.conv_a(preact))))
        return y + identity, preact


class BottleneckBlock(nn.Module):
    """Pre-activation bottleneck block 1x1 -> dilated 3x3 -> 1x1 with dropout (B6, B7)."""

    def __init__(self, cin: int, cout: int, dilation: int, dropout: float):
        super().__init__()
        self.bn_a = nn.BatchNorm2d(cin)
        self.conv_a = _conv1x1(cin, cout // 4)
        self.bn_b = nn.BatchNorm2d(cout // 4)
        self.conv_b = _conv3x3(cout // 4, cout // 2, 1, dilation)
        self.bn_c = nn.BatchNorm2d(cout // 2)
        self.conv_c = _conv1x1(cout // 2, cout)
        self.dropout = nn.Dropout2d(dropout)
        self.shortcut = _conv1x1(cin, cout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        preact = F.relu(self.bn_a(x))
        y = self.conv_a(preact)
        y = self.conv_b(self.dropout(F.relu(self.bn_b(y))))
        y = self.conv_c(self.dropout(F.relu(self.bn_c(y))))
        return y + self.shortcut(preact), preact


class Stage(nn.Module):
    """A run of blocks; returns the stage output and the first block's pre-activation."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, entry_preact = self.blocks[0](x)
        for block in self.blocks[1:]:
            x, _ = block(x)
        return x, entry_preact


class ResNet38Features(NamedTuple):
    """Feature maps of one forward pass, all batch-normalised and ReLU-activated.

    ``b3``: (N, C3, H/4, W/4); ``b4``: (N, C4, H/s, W/s); ``b5``: (N, C5, H/s, W/s);
    ``final``: (N, C7, H/s, W/s), the map the CAM head reads; s is the output stride (8 or 4).
    """

    b3: torch.Tensor
    b4: torch.Tensor
    b5: torch.Tensor
    final: torch.Tensor


class ResNet38(nn.Module):
    """ResNet-38 model A backbone: (N, in_channels, H, W) -> :class:`ResNet38Features`."""

    def __init__(self, config: ResNet38Config = PAPER, freeze_bn: bool | str = False):
        super().__init__()
        if freeze_bn not in FREEZE_BN:
            raise ValueError(f"freeze_bn must be one of {FREEZE_BN}, got {freeze_bn!r}")
        self.config = config
        self.freeze_bn = freeze_bn
        c = config.channels
        n2, n3, n4, n5 = config.blocks
        stem, w2, w3, w4 = c(STEM_CHANNELS), c(B2_CHANNELS), c(B3_CHANNELS), c(B4_CHANNELS)
        w5m, w5, w6, w7 = c(B5_MID_CHANNELS), c(B5_CHANNELS), c(B6_CHANNELS), c(B7_CHANNELS)

        if config.output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {config.output_stride}")
        # At stride 4, B4 dilates by 2 instead of striding, and the later dilations double to match.
        extra = 8 // config.output_stride
        self.stem = _conv3x3(config.in_channels, stem)
        self.b2 = self._downsampling_stage(stem, w2, n2)
        self.b3 = self._downsampling_stage(w2, w3, n3)
        self.b4 = self._downsampling_stage(w3, w4, n4, stride=2 // extra, dilation=extra)
        d5, d67 = B5_DILATION * extra, B6_B7_DILATION * extra
        self.b5 = Stage(
            [WideBlock(w4, w5m, w5, first_dilation=extra, dilation=d5)]
            + [WideBlock(w5, w5m, w5, first_dilation=d5, dilation=d5) for _ in range(n5 - 1)]
        )
        self.b6 = Stage([BottleneckBlock(w5, w6, d67, config.dropout_b6)])
        self.b7 = Stage([BottleneckBlock(w6, w7, d67, config.dropout_b7)])
        self.bn7 = nn.BatchNorm2d(w7)
        self.feature_channels = ResNet38Features(b3=w3, b4=w4, b5=w5, final=w7)
        self._init_weights()
        if freeze_bn is True:
            for m in self._batch_norms():
                m.requires_grad_(False)

    def _batch_norms(self):
        return (m for m in self.modules() if isinstance(m, nn.BatchNorm2d))

    def train(self, mode: bool = True):
        """With ``freeze_bn`` (True or "stats", :data:`FREEZE_BN`) every BatchNorm stays in inference mode.

        SEAM's ResNet-38 trains this way on top of its pre-trained statistics; here the statistics
        are those of the weights the model starts from (e.g. CAM pre-training).
        """
        super().train(mode)
        if self.freeze_bn:
            for m in self._batch_norms():
                m.eval()
        return self

    @contextmanager
    def running_stats_kept(self):
        """Within this block, train-mode passes normalise by their batch but leave the running statistics alone.

        SEAM sends a second, 0.3x view of each image through this backbone (Sect. 2.1). Its
        activations have other statistics, and with both views updating the running averages,
        inference (one scale, running statistics) normalised full-size slices by a blend of the
        two: on the phantom every slice logit, normal patients included, ended at +9 to +16 and
        the whole lung was segmented. SEAM's reference never meets this because its BatchNorm is
        frozen; here the small view simply does not vote.
        """
        saved = [(m, m.momentum) for m in self._batch_norms()]
        for m, _ in saved:
            m.momentum = 0.0  # running = (1 - momentum) * running + momentum * batch
        try:
            yield
        finally:
            for m, momentum in saved:
                m.momentum = momentum

    @staticmethod
    def _downsampling_stage(cin: int, cout: int, n: int, stride: int = 2, dilation: int = 1) -> Stage:
        return Stage([WideBlock(cin, cout, cout, stride=stride, dilation=dilation)]
                     + [WideBlock(cout, cout, cout, first_dilation=dilation, dilation=dilation) for _ in range(n - 1)])

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> ResNet38Features:
        x = self.stem(x)
        x, _ = self.b2(x)
        x, _ = self.b3(x)
        x, b3 = self.b4(x)
        x, b4 = self.b5(x)
        x, b5 = self.b6(x)
        x, _ = self.b7(x)
        return ResNet38Features(b3=b3, b4=b4, b5=b5, final=F.relu(self.bn7(x)))
