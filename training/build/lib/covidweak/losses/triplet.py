"""DuCN's losses (Peng et al., Sect. 2.2-2.3): triplet loss, detection loss L_D, total loss.

Every function takes torch tensors and returns a scalar tensor (mean over the batch).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

TRIPLET_MARGIN = 1.2  # DuCN Sect. 2.2, Eq. 1: "we set it is to 1.2"
DETECTION_TRIPLET_WEIGHT = 0.4  # DuCN Eq. 3: L_D = 0.4 L_triplet + 0.6 L_CE
DETECTION_CE_WEIGHT = 0.6  # DuCN Eq. 3
DETECTION_WEIGHT = 0.3  # DuCN Eq. 2: L_total = 0.3 L_D + 0.7 L_SCR
RECOMMENDATION_WEIGHT = 0.7  # DuCN Eq. 2


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = TRIPLET_MARGIN) -> torch.Tensor:
    """Eq. 1: mean over the batch of max{d(a, p) - d(a, n) + margin, 0}, d the Euclidean distance.

    anchor, positive, negative: (N, D) embeddings (DuCN feeds L2-normalised ones).
    With unit vectors d lies in [0, 2], so a margin of 1.2 can be met but never by collapse.
    torch's ``triplet_margin_loss``, whose distance adds 1e-6 to each difference so that the
    gradient stays finite when an anchor and its positive coincide.
    """
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=2.0)


def detection_loss(triplet: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 3: L_D = 0.4 * L_triplet + 0.6 * L_CrossEntropy.

    triplet: the detection child's Eq. 1 value; logits: (N, 2); labels: (N,) int64, 1 = COVID-19.
    """
    cross_entropy = F.cross_entropy(logits.float(), labels)
    return DETECTION_TRIPLET_WEIGHT * triplet + DETECTION_CE_WEIGHT * cross_entropy


def total_loss(detection: torch.Tensor, recommendation: torch.Tensor) -> torch.Tensor:
    """Eq. 2: L_total = 0.3 * L_D + 0.7 * L_SCR, where L_SCR is the recommendation child's triplet loss."""
    return DETECTION_WEIGHT * detection + RECOMMENDATION_WEIGHT * recommendation
