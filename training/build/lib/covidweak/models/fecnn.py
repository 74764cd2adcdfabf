"""FeCNN: the FPN-embedded CNN of Wu et al. (lesion identification and clustering, Sect. 3.1).

A 2-D ResNet backbone (MONAI) gives C3, C4 and C5 (Sect. 3.1.2). The FPN reduces each with a
1x1 convolution + batch norm, adds the upsampled coarser level (top-down path) and smooths
with a 3x3 convolution, giving P3-P5; two stride-2 3x3 convolutions on C5 give P6 and P7.
Every level is summarised by a 1x1 convolution + batch norm to ``fpn_channels`` (256 in the
paper) and global average pooling; a rho-way fully connected layer with ReLU gives the level
score s^i (Eq. 1). The scores are weighted by omega_i (Eq. 2) and concatenated into d, and a
C-way fully connected layer with softmax gives the diagnosis (Eq. 4).

Choices where the paper is silent or self-contradictory, stated so a reviewer can check them:

* rho = C (Sect. 4.2.1: rho = 2 for the binary task; Sect. 6.2: rho = 3 for three classes), so
  ``argmax s^i`` is the level's own prediction, which Eq. 3 needs for its error rate.
* For that argmax to predict anything, each level score also gets a cross-entropy loss during
  training (:func:`fecnn_loss`); the paper trains only Eq. 5, which leaves s^i free to permute
  its classes and would make Eq. 3 meaningless.
* omega is a buffer of the network, so it is stored in the weight file with the state dict.
  It starts at 1 (plain concatenation) and is set by :meth:`FeCNN.set_error_rates` from the
  validation split after every epoch (see the ``fecnn`` training task). Error rates are clipped
  to [:data:`EPSILON_FLOOR`, 0.5]: a perfect level would get an infinite weight, and a level
  no better than chance gets weight 0 rather than a negative one (AdaBoost's convention).
* Dropout 0.5 (Sect. 4.2.1) is applied to each pooled level vector before its FC layer.
* The lesion branch reads A = the last backbone block's output (C5, Sect. 3.2.1); ``forward``
  returns it so that Grad-CAM needs no hooks. ``lam_level: P3`` reads the FPN's finest level
  instead: at the 1.4 mm lung box C5 has stride 16 (22 mm cells, a 10 x 14 map) and a perfect
  map at that grid cannot place most phantom lesions, while P3 has stride 4 (5.6 mm cells) and
  carries C5's semantics through the top-down path. P3 reaches the diagnosis only through its
  own head (a 1x1 convolution, GAP and a linear layer), so its Grad-CAM is the class
  activation map of that head, which the level loss trains to find COVID-19 slices.
* ``score_activation: none`` drops Eq. 1's ReLU on s^i. Under the level loss s^i are logits;
  a ReLU clamps every slice whose level logits are both negative to (0, 0), and in the light
  whole-slice file 35-38 % of slices reached the fusion that way, with no gradient to leave
  it ("dead" levels). ``relu`` stays the default so earlier weight files load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

FPN_LEVELS = ("P3", "P4", "P5", "P6", "P7")
"""Wu et al. Sect. 3.1.2: C3-C5 through the FPN, plus C6 and C7 from stride-2 convolutions."""
GAP_CHANNELS_PAPER = 256
"""Wu et al. Sect. 3.1.2: "a 1x1 convolution and batch normalization ... which we set to 256"."""
FECNN_DROPOUT = 0.5
"""Wu et al. Sect. 4.2.1: dropout rate 0.5."""
EPSILON_FLOOR = 0.01
"""Lowest error rate used in Eq. 2, so a level with no validation error gets omega = 2.30, not infinity."""

CLASS_NAMES = {2: ("negative", "covid"), 3: ("normal", "covid", "cap")}
"""Class order of the network outputs. Wu et al. target COVID-19 positive vs negative slices
(Sect. 3.1.3, C = 2) and try COVID-19 / normal / other pneumonia in Sect. 6.2 (C = 3)."""
COVID_CLASS = 1
"""Index of the COVID-19 class in both layouts: the class whose gradient makes the LAHm (Eq. 6)."""

BACKBONES = {
    # ResNet-50 as in the paper's baselines (A is 2048-channel, Sect. 3.2.2), 256-wide FPN.
    "paper": {"block": "bottleneck", "layers": (3, 4, 6, 3), "widths": (64, 128, 256, 512), "max_pool": True,
              "fpn_channels": GAP_CHANNELS_PAPER},
    # A CPU-sized network for the shipped weights. Without the max pool C5 has stride 16, so a
    # 256-pixel input gives the paper's 16 x 16 LAHm (512-pixel input at stride 32).
    "light": {"block": "basic", "layers": (1, 1, 1, 1), "widths": (16, 32, 64, 128), "max_pool": False,
              "fpn_channels": 64},
}
LAM_LEVELS = ("C5", "P3")
"""Levels the lesion branch can read: the paper's C5 (Sect. 3.2.1) or the FPN's stride-4 P3."""
LEVEL_POOLINGS = ("avg", "max")
"""How a level head pools its map (Eq. 1): the paper's global average, or global max, with which a
small lesion alone can raise the score and the head's map stays on it."""
SCORE_ACTIVATIONS = ("relu", "none")
"""Eq. 1's activation on the level scores s^i: the paper's ReLU, or none (see the module docstring)."""
LESION_DESCRIPTORS = ("peak", "component_hu")
"""``preprocess["lesion_descriptor"]``, how a lesion's feature is made (:mod:`covidweak.clusters.ct`):
Eq. 9's A at the component's maximum (default, the paper), or A averaged over the component
plus density statistics."""
LAM_THRESHOLDS = ("otsu", "otsu_lungs")
"""``preprocess["lam_threshold"]``: Otsu's threshold over the whole LAHm (default, Sect. 3.2.1) or
over its cells inside the lungs (:func:`covidweak.clusters.lam.lesion_components`)."""
DEFAULT_FECNN_ARCH = {"backbone": "light", "classes": 2, "input_size": 256, "lam_level": "C5", "score_activation": "relu",
                      "level_pooling": "avg"}


def omega_from_error_rates(error_rates: torch.Tensor) -> torch.Tensor:
    """Wu et al. Eq. 2: omega_i = 1/2 log((1 - eps_i) / eps_i), eps clipped to [EPSILON_FLOOR, 0.5].

    error_rates: (L,) in [0, 1]. Returns (L,) float32 >= 0.
    """
    eps = torch.as_tensor(error_rates, dtype=torch.float32).clamp(EPSILON_FLOOR, 0.5)
    return 0.5 * torch.log((1 - eps) / eps)


@dataclass
class FeCNNOutput:
    """``logits``: (N, C) before the softmax of Eq. 4; ``level_scores``: (N, L, rho) the s^i of
    Eq. 1; ``features``: (N, kappa, h, w) the map A the lesion branch reads (Sect. 3.2.1; C5 or P3)."""

    logits: torch.Tensor
    level_scores: torch.Tensor
    features: torch.Tensor


class FeatureHead(nn.Module):
    """1x1 conv + BN to ``channels``, GAP, dropout, then the rho-way FC, with Eq. 1's ReLU when ``relu``."""

    def __init__(self, in_channels: int, channels: int, rho: int, dropout: float, relu: bool = True,
                 pooling: str = "avg"):
        super().__init__()
        self.pooling = pooling
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.dropout = nn.Dropout(dropout)
        self.score = nn.Linear(channels, rho)
        self.relu = relu

    def forward(self, level: torch.Tensor) -> torch.Tensor:
        """(N, F, h, w) -> s^i (N, rho)."""
        reduced = self.reduce(level)
        pooled = reduced.amax(dim=(2, 3)) if self.pooling == "max" else reduced.mean(dim=(2, 3))
        score = self.score(self.dropout(pooled))
        return F.relu(score) if self.relu else score


class FPN(nn.Module):
    """Sect. 3.1.2: lateral 1x1 conv + BN, top-down sum, 3x3 smoothing; P6, P7 by stride-2 convs on C5."""

    def __init__(self, in_channels: tuple[int, int, int], channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Sequential(nn.Conv2d(c, channels, 1, bias=False), nn.BatchNorm2d(channels))
                                     for c in in_channels)
        self.smooth = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in in_channels)
        self.p6 = nn.Conv2d(in_channels[-1], channels, 3, stride=2, padding=1)
        self.p7 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, c3: torch.Tensor, c4: torch.Tensor, c5: torch.Tensor) -> list[torch.Tensor]:
        """C3 (N, ., H/8s, W/8s), C4, C5 -> [P3, P4, P5, P6, P7], each (N, channels, ., .), strides doubling."""
        lateral = [layer(c) for layer, c in zip(self.lateral, (c3, c4, c5))]
        merged = [lateral[2]]
        for finer in (lateral[1], lateral[0]):
            merged.insert(0, finer + F.interpolate(merged[0], size=finer.shape[-2:], mode="nearest"))
        pyramid = [smooth(level) for smooth, level in zip(self.smooth, merged)]
        p6 = self.p6(c5)
        return pyramid + [p6, self.p7(F.relu(p6))]


class FeCNN(nn.Module):
    """(N, 1, S, S) lung slices in [0, 1] -> :class:`FeCNNOutput`."""

    def __init__(self, backbone: str = "light", classes: int = 2, dropout: float = FECNN_DROPOUT,
                 lam_level: str = "C5", score_activation: str = "relu", level_pooling: str = "avg"):
        super().__init__()
        from monai.networks.nets import ResNet

        if backbone not in BACKBONES:
            raise ValueError(f"unknown FeCNN backbone '{backbone}': use {' or '.join(BACKBONES)}")
        if classes not in CLASS_NAMES:
            raise ValueError(f"FeCNN has 2 (covid vs negative) or 3 (normal, covid, cap) classes, not {classes}")
        if lam_level not in LAM_LEVELS or score_activation not in SCORE_ACTIVATIONS or level_pooling not in LEVEL_POOLINGS:
            raise ValueError(f"FeCNN lam_level must be one of {LAM_LEVELS}, score_activation one of {SCORE_ACTIVATIONS} "
                             f"and level_pooling one of {LEVEL_POOLINGS}, got {lam_level!r}, {score_activation!r} "
                             f"and {level_pooling!r}")
        spec = BACKBONES[backbone]
        self.classes = classes
        self.backbone = ResNet(spec["block"], list(spec["layers"]), list(spec["widths"]), spatial_dims=2,
                               n_input_channels=1, conv1_t_stride=2, no_max_pool=not spec["max_pool"],
                               feed_forward=False)
        expansion = 4 if spec["block"] == "bottleneck" else 1
        c3, c4, c5 = (w * expansion for w in spec["widths"][1:])
        self.lam_level = lam_level
        self.feature_channels = c5 if lam_level == "C5" else spec["fpn_channels"]
        self.fpn = FPN((c3, c4, c5), spec["fpn_channels"])
        rho = classes
        self.heads = nn.ModuleList(FeatureHead(spec["fpn_channels"], spec["fpn_channels"], rho, dropout,
                                               relu=score_activation == "relu", pooling=level_pooling)
                                   for _ in FPN_LEVELS)
        self.classifier = nn.Linear(rho * len(FPN_LEVELS), classes)
        self.register_buffer("omega", torch.ones(len(FPN_LEVELS)))

    def backbone_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Conv1-Conv5 of the ResNet; returns C3, C4, C5."""
        net = self.backbone
        x = net.act(net.bn1(net.conv1(x)))
        if not net.no_max_pool:
            x = net.maxpool(x)
        c3 = net.layer2(net.layer1(x))
        c4 = net.layer3(c3)
        return c3, c4, net.layer4(c4)

    def forward(self, x: torch.Tensor) -> FeCNNOutput:
        c3, c4, c5 = self.backbone_features(x)
        pyramid = self.fpn(c3, c4, c5)
        scores = torch.stack([head(level) for head, level in zip(self.heads, pyramid)], dim=1)
        fused = (scores * self.omega[None, :, None].to(scores.dtype)).flatten(1)
        features = c5 if self.lam_level == "C5" else pyramid[FPN_LEVELS.index("P3")]
        return FeCNNOutput(logits=self.classifier(fused), level_scores=scores, features=features)

    @torch.no_grad()
    def set_error_rates(self, error_rates: torch.Tensor) -> torch.Tensor:
        """Store omega (Eq. 2) from per-level error rates (L,); returns the new omega."""
        self.omega.copy_(omega_from_error_rates(error_rates).to(self.omega.device))
        return self.omega.clone()


def level_error_rates(level_scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Wu et al. Eq. 3 per level: the fraction of samples whose ``argmax s^i`` is not the label.

    level_scores: (N, L, rho); labels: (N,) int. Returns (L,) float32.
    """
    return (level_scores.argmax(dim=-1) != labels[:, None]).float().mean(dim=0)


def fecnn_loss(output: FeCNNOutput, labels: torch.Tensor, level_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 (cross-entropy of the fused prediction) and the mean per-level cross-entropy.

    Returns (total, level_term) with total = Eq. 5 + ``level_weight`` * level_term; see the
    module docstring for why the levels get a loss of their own.
    """
    fused = F.cross_entropy(output.logits.float(), labels)
    n, levels, rho = output.level_scores.shape
    per_level = F.cross_entropy(output.level_scores.float().reshape(n * levels, rho), labels.repeat_interleave(levels))
    return fused + level_weight * per_level, per_level


def build_fecnn(method: str, arch: Optional[dict] = None) -> FeCNN:
    """Factory entry for ``build_model("fecnn", arch)``; arch keys: backbone, classes, lam_level,
    score_activation (input_size is informative)."""
    arch = {**DEFAULT_FECNN_ARCH, **(arch or {})}
    return FeCNN(arch["backbone"], int(arch["classes"]), lam_level=arch["lam_level"],
                 score_activation=arch["score_activation"], level_pooling=arch["level_pooling"])

