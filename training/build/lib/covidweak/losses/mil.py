"""Multi-instance learning of M-SEAM-NAM (Tang et al., MICCAI 2021, Sect. 2.3, Eq. 7).

Slices carry one of three labels (Sect. 3.1): *positive* (annotated lesion slice of a positive
patient), *negative* (any slice of a negative patient) and *unknown* (unannotated slice of a
positive patient). Bags of eight consecutive slices share one label:

* positive bag: one positive slice and the seven consecutive slices after it, which may be
  positive or unknown;
* negative bag: eight consecutive slices of a negative patient.

The bag score pb is the log-odds of a noisy-OR over the slices' probabilities sigma(p^i): the
bag is positive unless every slice is negative. For one slice pb = p.

Eq. 7 prints L_cls = -log(1 + e^{-y pb}); minimising that would push y * pb to minus infinity,
so the leading minus is a typo and this module uses the soft-margin loss of Eq. 1,
log(1 + e^{-y pb}), which the text says Eq. 7 replaces "keeping other losses the same".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from .seam import soft_margin

BAG_SIZE = 8  # one positive slice + 7 after it, or 8 consecutive negative slices (Sect. 2.3)
POSITIVE, NEGATIVE, UNKNOWN = "positive", "negative", "unknown"
SLICE_LABELS = (POSITIVE, NEGATIVE, UNKNOWN)

# Above this, log(expm1(x)) = x + log1p(-exp(-x)) avoids the overflow of expm1.
_EXPM1_SWITCH = 20.0


def bag_score(p: torch.Tensor) -> torch.Tensor:
    """pb of Eq. 7: slice logits (..., n) -> bag logits (...).

    With q = prod_i (1 - sigma(p^i)) = exp(-x), x = sum_i softplus(p^i), the bag score
    log((1 - q) / q) equals log(expm1(x)); evaluated in float32 without overflow or log(0).
    """
    x = F.softplus(p.float()).sum(dim=-1).clamp_min(torch.finfo(torch.float32).tiny)
    small = torch.log(torch.expm1(x.clamp_max(_EXPM1_SWITCH)))
    large = x + torch.log1p(-torch.exp(-x.clamp_min(_EXPM1_SWITCH)))
    return torch.where(x > _EXPM1_SWITCH, large, small)


def bag_soft_margin(p: torch.Tensor, y: torch.Tensor, bag_size: int = BAG_SIZE) -> torch.Tensor:
    """Soft margin of the bag scores at one scale: log(1 + e^{-y pb}).

    p: (B * bag_size, C) slice logits, bags stacked one after the other;
    y: (B, C) or (B,) bag labels in {0, 1}. Returns (B, C).
    """
    if p.shape[0] % bag_size:
        raise ValueError(f"{p.shape[0]} slices do not split into bags of {bag_size}")
    per_bag = p.reshape(-1, bag_size, p.shape[-1]).transpose(1, 2)
    return soft_margin(bag_score(per_bag), y.reshape(per_bag.shape[0], -1))


def mil_classification_loss(p_l: torch.Tensor, p_s: torch.Tensor, y: torch.Tensor, bag_size: int = BAG_SIZE) -> torch.Tensor:
    """L_cls of Eq. 7 at both scales, replacing Eq. 1 for bags.

    p_l, p_s: (B * bag_size, C); y: (B, C) or (B,). Returns a scalar: summed over scales and
    classes, averaged over bags.
    """
    return (bag_soft_margin(p_l, y, bag_size) + bag_soft_margin(p_s, y, bag_size)).sum(dim=1).mean()


def make_bags(slice_labels: Sequence[str], patient_negative: bool, bag_size: int = BAG_SIZE) -> list[list[int]]:
    """Slice indices of every bag a study offers, in slice order.

    ``slice_labels[k]`` is "positive", "negative" or "unknown" for slice k.

    * Positive patient: one bag [k, k + 1, ..., k + bag_size - 1] per positive slice k whose
      following slices exist and none of which is marked negative. A positive slice too close
      to the last slice has no seven successors and gives no bag.
    * Negative patient: every window of ``bag_size`` consecutive slices. All its slices are
      negative by definition (Sect. 3.1), so "unknown" is accepted; the paper draws negative
      bags at random, so the training sampler picks among these candidates.

    Raises ``ValueError`` for an unknown label or a positive slice in a negative patient.
    """
    if bag_size < 1:
        raise ValueError(f"bag_size must be positive, got {bag_size}")
    labels = list(slice_labels)
    bad = sorted({label for label in labels if label not in SLICE_LABELS})
    if bad:
        raise ValueError(f"unknown slice labels {bad}: use {', '.join(SLICE_LABELS)}")
    last_start = len(labels) - bag_size
    if patient_negative:
        if POSITIVE in labels:
            raise ValueError(f"negative patient has positive slice {labels.index(POSITIVE)}: fix the patient or slice labels")
        return [list(range(k, k + bag_size)) for k in range(last_start + 1)]
    return [
        list(range(k, k + bag_size))
        for k in range(last_start + 1)
        if labels[k] == POSITIVE and NEGATIVE not in labels[k : k + bag_size]
    ]


def bag_label(patient_negative: bool) -> int:
    """The {0, 1} label every bag of a patient shares."""
    return 0 if patient_negative else 1
