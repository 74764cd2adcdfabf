"""DuCN: the dual-children network for COVID-19 detection and similar-case recommendation.

Peng et al. (DuCN, Sect. 2.2, Fig. 2 C) build both paths from one ResNet-18: the
"first three levels" are shared (coarse features such as grey level serve both tasks),
the deeper levels are duplicated so each task specialises its own, and each path ends
in a 128-d output (the 1000-way ImageNet layer replaced by 128), L2-normalised. The
detection child adds a 2-way linear layer for the cross-entropy loss.

Reading of "first three levels" (the paper does not list them): ResNet-18 has five
levels -- the stem (7x7 convolution, batch norm, max pooling) and residual stages 1-4;
the stem and stages 1-2 are shared, stages 3-4, pooling and the 128-d layer belong to
each child.

The backbone is MONAI's 2-D ``resnet18`` with a stride-2 stem and bias-free shortcut
convolutions, i.e. the torchvision/ImageNet layout, so that an ImageNet ResNet-18 state
dict a user supplies as a local file can initialise it (:func:`load_imagenet_init`;
nothing is ever downloaded). ``arch["widen_factor"]`` scales every stage's width:
1.0 is the paper's ResNet-18, 0.5 the shipped CPU model (a quarter of the parameters).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InputError

EMBEDDING_DIM = 128  # DuCN Sect. 2.2: "the output digits (1000) is replaced by 128"
DETECTION_CLASSES = 2  # DuCN Sect. 2.2: features "transferred in 2-bits representations by a linear layer"
IN_CHANNELS = 3  # DuCN Sect. 2.1: raw CT, lung image, intrapulmonary distance map

DEFAULT_DUCN_ARCH = {"widen_factor": 1.0}
SHARED_LEVELS = ("conv1", "bn1", "act", "maxpool", "layer1", "layer2")
CHILD_LEVELS = ("layer3", "layer4")


@dataclass
class DuCNOutput:
    """Outputs of the children that were run; a child given no input leaves its fields None.

    detection_embedding / recommendation_embedding: (N, 128), unit L2 norm.
    detection_logits: (N, 2), class 1 = COVID-19.
    """

    detection_embedding: Optional[torch.Tensor] = None
    detection_logits: Optional[torch.Tensor] = None
    recommendation_embedding: Optional[torch.Tensor] = None


class DuCNChild(nn.Sequential):
    """Residual stages 3-4, global pooling and the 128-d layer: (N, C, h, w) -> (N, 128), not yet normalised."""


def _backbone(widen_factor: float) -> nn.Module:
    from monai.networks.nets import resnet18

    return resnet18(spatial_dims=2, n_input_channels=IN_CHANNELS, num_classes=EMBEDDING_DIM,
                    widen_factor=widen_factor, conv1_t_stride=2, bias_downsample=False)


class DuCN(nn.Module):
    """Shared ResNet-18 levels and two children (detection, recommendation)."""

    def __init__(self, widen_factor: float = 1.0):
        super().__init__()
        backbone = _backbone(widen_factor)
        self.shared = nn.Sequential(*(getattr(backbone, name) for name in SHARED_LEVELS))
        child = DuCNChild(*(getattr(backbone, name) for name in CHILD_LEVELS), backbone.avgpool,
                          nn.Flatten(1), backbone.fc)
        self.detection = child
        # A copy, so both children start alike (from the same ImageNet weights when given) and then diverge.
        self.recommendation = copy.deepcopy(child)
        self.classifier = nn.Linear(EMBEDDING_DIM, DETECTION_CLASSES)

    def forward(self, detect: Optional[torch.Tensor] = None,
                recommend: Optional[torch.Tensor] = None) -> DuCNOutput:
        """detect: (N, 3, H, W) images for the detection child; recommend: (M, 3, H, W) for the other.

        Both go through the shared levels in one batch, so batch-norm statistics are those of all
        images, as in the paper's single network.
        """
        parts = [x for x in (detect, recommend) if x is not None]
        if not parts:
            raise InputError("DuCN needs images for at least one child: pass detect= and/or recommend=")
        features = self.shared(torch.cat(parts) if len(parts) > 1 else parts[0])
        out = DuCNOutput()
        n_detect = 0
        if detect is not None:
            n_detect = detect.shape[0]
            out.detection_embedding = F.normalize(self.detection(features[:n_detect]), dim=1)
            out.detection_logits = self.classifier(out.detection_embedding)
        if recommend is not None:
            out.recommendation_embedding = F.normalize(self.recommendation(features[n_detect:]), dim=1)
        return out


def build_ducn(method: str, arch: Optional[dict] = None) -> DuCN:
    """The ``ducn`` network of :data:`~covidweak.models.factory.OTHER_BUILDERS` (arch: ``widen_factor``)."""
    arch = {**DEFAULT_DUCN_ARCH, **(arch or {})}
    unknown = sorted(set(arch) - set(DEFAULT_DUCN_ARCH))
    if unknown:
        raise ValueError(f"unknown DuCN arch key(s) {', '.join(unknown)}: use widen_factor")
    widen = float(arch["widen_factor"])
    if not widen > 0:
        raise ValueError(f"DuCN widen_factor must be positive, got {widen}")
    return DuCN(widen)


def load_imagenet_init(model: DuCN, path: Path) -> int:
    """Copy an ImageNet ResNet-18 state dict (torchvision names, a local file) into both children.

    The paper uses a pre-trained ResNet-18 (Sect. 2.2; Table 1 DuCN-UP is the untrained
    ablation). Tensors are matched by name and shape: the stem and stages 1-2 go to the shared
    levels, stages 3-4 to each child; the 1000-way ``fc`` and any tensor whose shape differs
    (e.g. a widened model) are left at their random initialisation. Returns how many tensors
    were copied; InputError when the file is unreadable or nothing fits.
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise InputError(f"cannot read ImageNet weights {path} ({type(error).__name__}); give a local ResNet-18 "
                         "state dict saved with torch.save") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else {}
    own = model.state_dict()
    targets = {}
    for name, tensor in state.items():
        level, _, rest = name.partition(".")
        if level in ("conv1", "bn1", "layer1", "layer2"):
            index = SHARED_LEVELS.index(level)
            targets[f"shared.{index}.{rest}"] = tensor
        elif level in CHILD_LEVELS:
            index = CHILD_LEVELS.index(level)
            for child in ("detection", "recommendation"):
                targets[f"{child}.{index}.{rest}"] = tensor
    # Batch-norm step counters are scalars and fit any width, so they only count alongside real tensors.
    fitting = {k: v for k, v in targets.items() if k in own and own[k].shape == v.shape}
    if not any(v.ndim > 0 for v in fitting.values()):
        fitting = {}
    if not fitting:
        raise InputError(f"{path} holds no ResNet-18 tensor of this network's shapes; give torchvision resnet18 "
                         "weights and widen_factor 1.0")
    model.load_state_dict(fitting, strict=False)
    return len(fitting)
