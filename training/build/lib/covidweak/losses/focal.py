"""Class-balanced focal loss of Hu et al. (IEEE Access 2020, Sect. II-E, Eq. 1).

L = -1/N sum_i w_i (1 - P_c)^gamma log P_c, with P_c the softmax probability of the true
class c of sample i, w_i = 1 / freq(c) (inverse class frequency) and gamma = 1 (Sect. III-B).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from torch.nn import functional as F

FOCAL_GAMMA = 1.0  # "We set gamma to 1 in the focal modulator f" (Hu et al., Sect. III-B)
CLASS_BALANCE = ("loss", "sampling")
"""How a classifier's training balances its classes: the w_i of Eq. 1 (the paper), or equal
numbers of samples per class each epoch with w_i = 1 (the diagnosis task's params.balance)."""


def class_balanced_weights(counts: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Inverse class frequencies (K,) from per-class sample counts (K,).

    Scaled to average 1 over the classes, so balanced data gives all-ones weights and the loss
    keeps the magnitude of cross-entropy; Hu et al.'s 1/freq differs only by that constant.
    Raises ``ValueError`` for a class without samples: its weight would be infinite.
    """
    counts = torch.as_tensor(counts, dtype=torch.float32)
    if counts.ndim != 1 or bool((counts <= 0).any()):
        raise ValueError(f"class counts must be positive, one per class; got {counts.tolist()}")
    inverse = counts.sum() / counts
    return inverse / inverse.mean()


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = FOCAL_GAMMA,
    weights: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Class-balanced focal loss: logits (N, K), integer targets (N,), weights (K,) -> scalar.

    With gamma = 0 and equal weights it is the mean cross-entropy.
    """
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, target.long().unsqueeze(1)).squeeze(1)
    loss = -((1.0 - log_p.exp()) ** gamma) * log_p
    if weights is not None:
        loss = loss * weights.to(loss.device, loss.dtype)[target.long()]
    return loss.mean()
