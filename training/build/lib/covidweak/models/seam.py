"""SEAM with the inputs NAM needs (Tang et al., MICCAI 2021, Sect. 2.1-2.2, Fig. 1).

One image goes through the shared ResNet-38 at two scales: the large scale I_l is the input,
the small scale I_s is it resized by ``small_scale``. Each scale gives a CAM C (logits of the
lesion class), its global average p, and a refined CAM D = C . M from the Pixel Correlation
Module (PCM). The large scale also gives F', the B3/B4/B5 features NAM compares.

Choices where the paper is silent, following the SEAM reference design (Wang et al. 2020):

* ``small_scale`` defaults to 0.3, the rescaling factor of SEAM's training.
* BatchNorm running statistics are those of the large scale only
  (:meth:`~covidweak.models.resnet38.ResNet38.running_stats_kept`), the only scale inference sees.
* Each scale refines its own CAM with its own affinity M (the paper writes M_l for both, which
  would mix resolutions).
* PCM reduces B4 and B5 with 1x1 convolutions + ReLU (64 and 128 channels at width 1), then
  concatenates the resized image and embeds with a 1x1 convolution (192 channels).
* PCM reads C, B4 and B5 detached: only L_ER/L_ECR on D train the PCM, so the affinity cannot
  change the backbone's classification evidence directly.
* C enters PCM as logits, without SEAM's ReLU and max-normalisation: M's columns sum to one,
  so D is a weighted average of C logits and sigmoid(D) stays a probability, which NAM's
  thresholds on sigmoid(D_l) require.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .cam import LESION_CLASSES, CAMHead
from .resnet38 import LIGHT, ResNet38, ResNet38Config

SMALL_SCALE = 0.3
"""SEAM's training rescale factor for the second view, kept at the lung box.

At the paper's 448 x 448 (a ~360 mm field, stride 8) the 0.3 view is a 134-pixel image whose
17 x 17 map has ~21 mm cells. On the 160 x 224 box at 1.4 mm and stride 4 the same factor gives
a 48 x 67 view and a 12 x 17 map of ~19 mm cells: the same physical coarseness, so the factor
keeps its meaning. (At the old whole-slice 128 x 128 input it gave a 5 x 5 map of 70 mm cells.)"""
PCM_POWER = 1.0
"""Power beta applied to PCM's affinities ReLU(cos) before their normalisation; 1 is SEAM's PCM.

SEAM (and Tang et al.) leave the affinity unsharpened: at 448 x 448 and stride 8 on natural images
its pretrained features already separate objects. On the lung box the map has 2240 cells and
the lung parenchyma, lesion or not, looks alike to a young embedding, so a column of M spreads
over the whole lung and D = C . M is a lung-wide average: on 12 validation patients a fresh PCM on
the box CAM gave positive Dice 0.31 at its best T_fg, against 0.57 for C itself. Raising the
affinities to a power before normalising, as AffinityNet does with its beta = 8 (Ahn & Kwak 2018),
keeps the weight on the most similar cells: beta = 8 gave 0.36, beta = 32 gave 0.46. The box
configs set ``model.pcm_power: 32``; weight files without it keep beta = 1."""
PCM_B4_CHANNELS = 64
PCM_B5_CHANNELS = 128
PCM_EMBED_CHANNELS = 192
AFFINITY_EPS = 1e-5


class PixelCorrelationModule(nn.Module):
    """Non-local refinement of a CAM by feature affinity (Fig. 1b)."""

    def __init__(self, b4_channels: int, b5_channels: int, image_channels: int = 3, width: float = 1.0,
                 power: float = PCM_POWER):
        super().__init__()
        if power <= 0:
            raise ValueError(f"pcm_power must be above 0, got {power}")
        self.power = float(power)
        c4 = max(8, int(round(PCM_B4_CHANNELS * width)))
        c5 = max(8, int(round(PCM_B5_CHANNELS * width)))
        embed = max(8, int(round(PCM_EMBED_CHANNELS * width)))
        self.reduce_b4 = nn.Conv2d(b4_channels, c4, 1, bias=False)
        self.reduce_b5 = nn.Conv2d(b5_channels, c5, 1, bias=False)
        self.embed = nn.Conv2d(image_channels + c4 + c5, embed, 1, bias=False)
        for conv in (self.reduce_b4, self.reduce_b5):
            nn.init.kaiming_normal_(conv.weight)
        nn.init.xavier_uniform_(self.embed.weight, gain=4)

    def affinity(self, image: torch.Tensor, b4: torch.Tensor, b5: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) and features (N, *, h, w) -> M (N, hw, hw), each column summing to 1.

        M[n, i, j] is how much pixel i contributes to pixel j: ReLU of the cosine similarity
        of their embeddings, raised to :data:`PCM_POWER` beta, normalised over i.
        """
        size = b4.shape[-2:]
        small_image = F.interpolate(image, size=size, mode="bilinear", align_corners=True)
        f = torch.cat([small_image, F.relu(self.reduce_b4(b4.detach())), F.relu(self.reduce_b5(b5.detach()))], dim=1)
        f = self.embed(f).flatten(2).float()
        # Float32 even under autocast: a bf16 sum over thousands of pixels is too coarse.
        with torch.autocast(device_type=f.device.type, enabled=False):
            f = f / (f.norm(dim=1, keepdim=True) + AFFINITY_EPS)
            aff = F.relu(f.transpose(1, 2) @ f)
            if self.power != 1.0:
                aff = aff**self.power
            return aff / (aff.sum(dim=1, keepdim=True) + AFFINITY_EPS)

    def forward(self, cam: torch.Tensor, image: torch.Tensor, b4: torch.Tensor, b5: torch.Tensor) -> torch.Tensor:
        """CAM (N, C, h, w) -> refined CAM D = C . M (N, C, h, w), in float32."""
        n, c, h, w = cam.shape
        m = self.affinity(image, b4, b5)
        with torch.autocast(device_type=cam.device.type, enabled=False):
            return (cam.detach().float().reshape(n, c, h * w) @ m).reshape(n, c, h, w)


@dataclass
class SEAMBranch:
    """One scale: ``cam`` C and ``refined`` D (N, C, h, w), ``score`` p (N, C), ``features`` F'."""

    cam: torch.Tensor
    refined: torch.Tensor
    score: torch.Tensor
    features: torch.Tensor

    @property
    def lesion_logits(self) -> torch.Tensor:
        return self.refined


@dataclass
class SEAMOutput:
    """Both scales of Fig. 1a.

    ``c_l, d_l``: (N, C, h_l, w_l); ``c_s, d_s``: (N, C, h_s, w_s); ``p_l, p_s``: (N, C);
    ``features``: F' of the large scale, (N, C3 + C4 + C5, h_l, w_l).
    """

    c_l: torch.Tensor
    c_s: torch.Tensor
    d_l: torch.Tensor
    d_s: torch.Tensor
    p_l: torch.Tensor
    p_s: torch.Tensor
    features: torch.Tensor

    @property
    def lesion_logits(self) -> torch.Tensor:
        """D_l, the map whose sigmoid is the lesion probability (Sect. 2.2)."""
        return self.d_l


def nam_features(b3: torch.Tensor, b4: torch.Tensor, b5: torch.Tensor) -> torch.Tensor:
    """F' = [B3, B4, B5] at the B4 resolution (N, C3 + C4 + C5, h, w).

    B3 has twice the resolution of B4/B5; area averaging brings it down without aliasing and
    also handles odd sizes. The blocks are concatenated as the paper says, without per-block
    normalisation, so in the cosine of Eq. 4-6 each block weighs by its activation energy.
    All three are ReLU outputs, so cosines lie in [0, 1] and L_NFBD is bounded below by 0.
    """
    b3 = F.adaptive_avg_pool2d(b3, b4.shape[-2:])
    return torch.cat([b3, b4, b5], dim=1)


NOISY_OR_PCM_EPS = 1e-6
"""Clamp of the refined probability before its logit under noisy-OR pooling (logit range about +-13.8).

PCM averages a map over similar pixels (D = C . M). SEAM refines its normalised CAM, a map that is
0 on background, so the average of a lesion pixel's neighbourhood is lesion evidence diluted by
zeros. Under noisy-OR pooling C is a logit map whose background sits at -10 to -20 while lesions
are a few units above 0, and averaging logits lets the background swamp every lesion: on the
lung box no pixel of D passed T_fg = 0.1 and NAM had no foreground. So a noisy-OR SEAM refines the
pixel probabilities sigmoid(C), which like SEAM's normalised map are ~0 on background, and D is
the logit of that average."""


class SEAM(nn.Module):
    """SEAM on ResNet-38: (N, 3, H, W) slices -> :class:`SEAMOutput`."""

    def __init__(self, config: ResNet38Config = LIGHT, num_classes: int = LESION_CLASSES, small_scale: float = SMALL_SCALE,
                 pooling: str = "gap", freeze_bn: bool | str = False, pcm_power: float = PCM_POWER):
        super().__init__()
        if not 0.0 < small_scale < 1.0:
            raise ValueError(f"small_scale must be in (0, 1), got {small_scale}")
        self.small_scale = small_scale
        self.backbone = ResNet38(config, freeze_bn=freeze_bn)
        channels = self.backbone.feature_channels
        self.cam_head = CAMHead(channels.final, num_classes, pooling=pooling)
        self.pcm = PixelCorrelationModule(channels.b4, channels.b5, config.in_channels, config.width, pcm_power)

    def branch(self, x: torch.Tensor) -> SEAMBranch:
        """One scale: (N, 3, H, W) -> :class:`SEAMBranch`; enough for inference."""
        feats = self.backbone(x)
        cam, score = self.cam_head(feats.final)
        if self.cam_head.pooling == "noisy-or":
            refined = torch.logit(self.pcm(torch.sigmoid(cam), x, feats.b4, feats.b5), eps=NOISY_OR_PCM_EPS)
        else:
            refined = self.pcm(cam, x, feats.b4, feats.b5)
        return SEAMBranch(cam=cam, refined=refined, score=score, features=nam_features(feats.b3, feats.b4, feats.b5))

    def forward(self, x: torch.Tensor) -> SEAMOutput:
        large = self.branch(x)
        x_small = F.interpolate(x, scale_factor=self.small_scale, mode="bilinear", align_corners=True)
        with self.backbone.running_stats_kept():  # inference runs the large scale only
            small = self.branch(x_small)
        return SEAMOutput(
            c_l=large.cam,
            c_s=small.cam,
            d_l=large.refined,
            d_s=small.refined,
            p_l=large.score,
            p_s=small.score,
            features=large.features,
        )
