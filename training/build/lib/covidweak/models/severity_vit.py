"""Kim et al.'s chest X-ray severity networks (Sec. 2.2, Fig. 1).

* :class:`DenseNetEmbedding` -- the feature embedding network F (Eq. 1): MONAI's
  DenseNet-121 cut before transition layer 3, so a 256x256 radiograph gives the paper's
  16x16x1024 feature corpus.
* :class:`CxrEmbedNet` -- F plus a probabilistic-CAM (PCAM) pooling classifier (Ye et al.,
  the CheXpert winner the paper's F comes from), used only to pre-train F (method ``cxr-embed``).
* :class:`SeverityNet` -- frozen F, then one or more :class:`ViTMapHead` (1x1 conv
  embedding, class token, positional embedding, L transformer blocks (Eqs. 3-7), a
  4-block upsizing map head (Eq. 8)), multiplied by the lung mask (method ``severity``).
  Several heads form the checkpoint ensemble of Sec. 3 inside one weight file: the
  frozen F is stored once and the heads' probability maps are averaged.

Sizes: ``"paper"`` is DenseNet-121 + ViT-B/16 (D 768, L 12, 12 heads, MLP 3072) at 256x256;
``"light"`` is a narrow DenseNet of the same layout and a 4-layer, 96-wide ViT at 128x128 for
the CPU weights shipped with the extension.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

SEVERITY_METHODS = ("cxr-embed", "severity")
DENSENET_STRIDE = 16
"""conv0, pool0, transitions 1 and 2 each halve the input: 256 -> 16 (Kim et al., Sec. 2.2)."""
MAP_HEAD_BLOCKS = 4
"""Kim et al., Sec. 2.2 / Fig. 1(b): four x2 upsizing conv blocks take the 1/16 grid back to the input size."""

EMBED_SIZES = {
    # DenseNet-121: 64 stem features, growth 32, blocks 6-12-24 before transition 3 -> 1024 channels.
    "paper": {"init_features": 64, "growth_rate": 32, "block_config": [6, 12, 24]},
    "light": {"init_features": 32, "growth_rate": 16, "block_config": [3, 6, 12]},
}
VIT_SIZES = {
    # ViT-B/16 (Dosovitskiy et al.), as Kim et al. adopt it.
    "paper": {"dim": 768, "depth": 12, "heads": 12, "mlp_dim": 3072, "map_channels": [256, 128, 64, 32]},
    "light": {"dim": 96, "depth": 4, "heads": 4, "mlp_dim": 192, "map_channels": [32, 16, 8, 4]},
}
INPUT_SIZES = {"paper": 256, "light": 128}
EMBED_LABELS = ("ggo", "crazy paving", "consolidation",
                "right upper", "right middle", "right lower", "left upper", "left middle", "left lower")
"""Pre-training findings the phantom offers (stand-ins for CheXpert's findings): lesion type present
anywhere, and lesion present per CT lung zone."""


def embed_channels(init_features: int, growth_rate: int, block_config) -> int:
    """Channels of the DenseNet features after the third dense block (1024 for DenseNet-121)."""
    channels = init_features
    for i, layers in enumerate(block_config):
        channels += layers * growth_rate
        if i < len(block_config) - 1:
            channels //= 2
    return channels


class DenseNetEmbedding(nn.Module):
    """F: (N, 1, H, W) segmented lung image -> (N, C', H/16, W/16) features before transition layer 3."""

    def __init__(self, init_features: int, growth_rate: int, block_config):
        super().__init__()
        from monai.networks.nets import DenseNet

        block_config = list(block_config)
        if len(block_config) != 3:
            raise ValueError(f"block_config needs the three dense blocks before transition 3, got {block_config}")
        # A fourth block is required by MONAI's constructor; it and transition 3 are dropped below.
        full = DenseNet(spatial_dims=2, in_channels=1, out_channels=1, init_features=init_features,
                        growth_rate=growth_rate, block_config=(*block_config, 1))
        names = [name for name, _ in full.features.named_children()]
        self.features = nn.Sequential(*list(full.features.children())[:names.index("denseblock3") + 1])
        self.channels = embed_channels(init_features, growth_rate, block_config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class PcamPooling(nn.Module):
    """Probabilistic-CAM pooling classifier (Ye et al. 2020), one 1x1 classifier per finding.

    (N, C, h, w) features -> (N, K) logits. Each finding's 1x1 classifier gives a logit map;
    its sigmoid, normalised over the image, weights the features into one pooled vector per
    finding, which the same classifier scores.
    """

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.classifier = nn.Conv2d(channels, classes, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        probability = torch.sigmoid(self.classifier(features)).flatten(2)  # (N, K, hw)
        weights = probability / probability.sum(dim=2, keepdim=True).clamp_min(1e-6)
        pooled = torch.einsum("nkp,ncp->nkc", weights, features.flatten(2))  # (N, K, C)
        return (pooled * self.classifier.weight[:, :, 0, 0]).sum(dim=2) + self.classifier.bias


class CxrEmbedNet(nn.Module):
    """F with a PCAM head: (N, 1, H, W) -> (N, len(EMBED_LABELS)) finding logits (pre-training only)."""

    def __init__(self, embed: DenseNetEmbedding, classes: int = len(EMBED_LABELS)):
        super().__init__()
        self.embed = embed
        self.pcam = PcamPooling(embed.channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pcam(self.embed(x))


def upsizing_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """x2 bilinear upsampling, 3x3 conv, batch norm, ReLU (one block of the map head)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                         nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ViTMapHead(nn.Module):
    """Hybrid ViT and map head: (N, C', h, w) features -> (N, 1, 16h, 16w) lesion probability.

    ``depth`` 0 leaves out the transformer: the DenseNet features go through the 1x1
    embedding straight into the map head, the CNN-only control of Table 2.
    """

    def __init__(self, channels: int, grid: int, dim: int, depth: int, heads: int, mlp_dim: int, map_channels):
        super().__init__()
        from monai.networks.blocks import TransformerBlock

        self.embed = nn.Conv2d(channels, dim, kernel_size=1)  # Eq. 3
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid + 1, dim) * 0.02)  # E_pos, Eq. 4
        self.blocks = nn.ModuleList(TransformerBlock(dim, mlp_dim, heads, qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        widths = [dim, *map_channels]
        self.map_head = nn.Sequential(*(upsizing_block(a, b) for a, b in zip(widths[:-1], widths[1:])),
                                      nn.Conv2d(widths[-1], 1, kernel_size=1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n, _, h, w = features.shape
        tokens = self.embed(features).flatten(2).transpose(1, 2)  # (N, hw, D)
        z = torch.cat([self.cls_token.expand(n, -1, -1), tokens], dim=1) + self.pos_embed
        for block in self.blocks:  # Eqs. 6-7 (pre-norm MSA and MLP with residuals)
            z = block(z)
        # Kim et al. keep every output except the class token's for the map.
        z = self.norm(z[:, 1:]).transpose(1, 2).reshape(n, -1, h, w)
        return torch.sigmoid(self.map_head(z))


class SeverityNet(nn.Module):
    """F and the ViT map head(s): the lesion probability y of Eq. 8. F is frozen (Kim et al.),
    unless ``tune_embed``: then its weights train with the heads (our ablation), while its
    batch-norm statistics stay those of its pre-training either way.

    ``forward(mask, image=...)``: (N, 1, H, W) preprocessed radiograph and (N, 1, H, W) 0/1
    lung mask -> (N, 1, H, W) probability inside the lungs; F sees the segmented lung,
    image times mask. ``forward(mask, features=...)`` starts from F's output instead
    (training caches it, since F is frozen).

    ``members`` heads: only ``heads[0]`` is trained; :meth:`snapshot` copies it into the
    next free slot, and inference averages the maps of ``heads[0]`` and the filled slots
    (the checkpoint ensemble of Sec. 3). ``trained_only`` uses ``heads[0]`` alone.
    """

    def __init__(self, embed: DenseNetEmbedding, head: ViTMapHead, members: int = 1, tune_embed: bool = False):
        super().__init__()
        self.embed = embed
        self.tune_embed = bool(tune_embed)
        self.heads = nn.ModuleList([head] + [copy.deepcopy(head) for _ in range(members - 1)])
        self.register_buffer("filled", torch.zeros(members, dtype=torch.bool))
        for parameter in self.embed.parameters():
            parameter.requires_grad_(self.tune_embed)  # F is frozen in Kim et al. (Sec. 3)

    def train(self, mode: bool = True):
        super().train(mode)
        # F keeps its batch-norm statistics: batches of 8 radiographs are too few to re-estimate them.
        self.embed.eval()
        return self

    def features(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) image and mask -> (N, C', H/16, W/16) features of the segmented lung."""
        with torch.set_grad_enabled(self.tune_embed and torch.is_grad_enabled()):
            return self.embed(image * mask)

    def forward(self, mask: torch.Tensor, image: torch.Tensor | None = None, features: torch.Tensor | None = None,
                trained_only: bool = False) -> torch.Tensor:
        if features is None:
            features = self.features(image, mask)
        heads = [self.heads[0]] if trained_only else \
            [self.heads[0]] + [h for h, used in zip(self.heads[1:], self.filled[1:].tolist()) if used]
        return torch.stack([head(features) for head in heads]).mean(dim=0) * mask

    @torch.no_grad()
    def snapshot(self) -> None:
        """Copy the trained head into the next free ensemble slot (none left: nothing happens)."""
        free = [i for i, used in enumerate(self.filled.tolist()) if i > 0 and not used]
        if free:
            self.heads[free[0]].load_state_dict(self.heads[0].state_dict())
            self.filled[free[0]] = True


def _sized(table: dict, arch: dict, key: str) -> dict:
    size = arch.get("size", "light")
    if size not in table:
        raise ValueError(f"unknown size '{size}': use 'light' or 'paper'")
    return {**table[size], **(arch.get(key) or {})}


def build_embedding(arch: dict) -> DenseNetEmbedding:
    return DenseNetEmbedding(**_sized(EMBED_SIZES, arch, "embed"))


def build_severity_model(method: str, arch: dict | None = None) -> nn.Module:
    """``cxr-embed`` -> :class:`CxrEmbedNet`; ``severity`` -> :class:`SeverityNet`.

    arch: ``{"size": "light"|"paper", "input_size": int, "embed": {...}, "vit": {...},
    "members": int, "tune_embed": bool}``; ``embed`` and ``vit`` override entries of the size's tables.
    """
    arch = dict(arch or {})
    embed = build_embedding(arch)
    if method == "cxr-embed":
        return CxrEmbedNet(embed)
    if method != "severity":
        raise ValueError(f"unknown severity method '{method}': use one of {', '.join(SEVERITY_METHODS)}")
    input_size = arch.get("input_size", INPUT_SIZES[arch.get("size", "light")])
    if input_size % DENSENET_STRIDE:
        raise ValueError(f"input_size {input_size} must be a multiple of {DENSENET_STRIDE}")
    vit = _sized(VIT_SIZES, arch, "vit")
    if len(vit["map_channels"]) != MAP_HEAD_BLOCKS:
        raise ValueError(f"map_channels needs {MAP_HEAD_BLOCKS} widths (one per upsizing block), got {vit['map_channels']}")
    head = ViTMapHead(embed.channels, input_size // DENSENET_STRIDE, **vit)
    return SeverityNet(embed, head, int(arch.get("members", 1)), bool(arch.get("tune_embed", False)))
