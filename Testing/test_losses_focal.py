"""Class-balanced focal loss of Hu et al. (2020, Eq. 1)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from covidweak.losses import class_balanced_weights, focal_loss


def test_gamma_zero_equal_weights_is_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(6, 3, generator=g), torch.randint(0, 3, (6,), generator=g)
    expected = F.cross_entropy(logits, target).item()
    assert focal_loss(logits, target, gamma=0.0).item() == pytest.approx(expected, rel=1e-6)
    weights = class_balanced_weights([5, 5, 5])
    assert focal_loss(logits, target, gamma=0.0, weights=weights).item() == pytest.approx(expected, rel=1e-6)


def test_hand_value_with_gamma_one_and_weights():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # P(class 1) = 0.75
    target = torch.tensor([1])
    weights = torch.tensor([1.0, 2.0])
    assert focal_loss(logits, target, weights=weights).item() == pytest.approx(2.0 * 0.25 * -math.log(0.75), rel=1e-6)


def test_class_balanced_weights_are_inverse_frequencies_averaging_one():
    weights = class_balanced_weights([30, 10])
    assert weights.tolist() == pytest.approx([0.5, 1.5])
    with pytest.raises(ValueError, match="positive"):
        class_balanced_weights([3, 0])


def test_focal_loss_backward():
    logits = torch.randn(4, 2, requires_grad=True)
    focal_loss(logits, torch.tensor([0, 1, 1, 0]), weights=class_balanced_weights([1, 3])).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
