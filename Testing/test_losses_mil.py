"""Multi-instance bags and bag loss (Tang et al. 2021, Sect. 2.3, Eq. 7)."""

from __future__ import annotations

import math

import pytest
import torch

from covidweak.losses import bag_score, cam_pretraining_loss, make_bags, mil_classification_loss
from covidweak.losses.mil import bag_soft_margin

P, N, U = "positive", "negative", "unknown"


def test_bag_score_of_one_slice_is_its_logit():
    p = torch.tensor([[-30.0], [-3.0], [0.0], [2.5], [40.0]])
    torch.testing.assert_close(bag_score(p), p[:, 0], rtol=1e-5, atol=1e-5)


def test_bag_score_matches_noisy_or_formula():
    p = torch.tensor([-1.0, 0.5, -2.0, 0.0], dtype=torch.float64)
    q = torch.prod(1 - torch.sigmoid(p))
    assert bag_score(p).item() == pytest.approx(math.log((1 - q) / q), rel=1e-6)


def test_bag_score_is_finite_at_extremes_with_gradient():
    p = torch.tensor([[-200.0] * 8, [200.0] * 8, [-200.0] * 7 + [200.0]], requires_grad=True)
    pb = bag_score(p)
    assert torch.isfinite(pb).all() and pb[0] < -80 and pb[1] > 1000
    pb.sum().backward()
    assert torch.isfinite(p.grad).all()


def test_bag_loss_hand_value_and_scale_sum():
    p = torch.tensor([[0.3], [-0.7], [1.1], [-2.0], [-1.0], [-4.0]])
    y = torch.tensor([1.0, 0.0])
    pb = [bag_score(p[:3, 0]).item(), bag_score(p[3:, 0]).item()]
    expected = (math.log(1 + math.exp(-pb[0])) + math.log(1 + math.exp(pb[1]))) / 2
    assert bag_soft_margin(p, y, bag_size=3).mean().item() == pytest.approx(expected, rel=1e-6)
    assert mil_classification_loss(p, p, y, bag_size=3).item() == pytest.approx(2 * expected, rel=1e-6)
    assert cam_pretraining_loss(p, y, bag_size=3).item() == pytest.approx(expected, rel=1e-6)


def test_bag_loss_rejects_partial_bags():
    with pytest.raises(ValueError, match="bags of 8"):
        mil_classification_loss(torch.zeros(9, 1), torch.zeros(9, 1), torch.zeros(1), bag_size=8)


def test_positive_bags_start_at_each_positive_slice_with_seven_followers():
    labels = [U, P, U, U, P, U, U, U, U, U, U, U, P, U]
    assert make_bags(labels, patient_negative=False) == [list(range(1, 9)), list(range(4, 12))]


def test_positive_bags_skip_windows_with_negative_slices():
    labels = [P, U, N, U, P, U, P]
    assert make_bags(labels, patient_negative=False, bag_size=3) == [[4, 5, 6]]


def test_negative_patient_offers_every_window():
    labels = [N] * 10
    assert make_bags(labels, patient_negative=True) == [list(range(k, k + 8)) for k in range(3)]
    assert make_bags([N] * 7, patient_negative=True) == []


def test_contradictory_or_unknown_labels_are_rejected():
    with pytest.raises(ValueError, match="negative patient has positive slice 3"):
        make_bags([N, N, N, P], patient_negative=True, bag_size=2)
    with pytest.raises(ValueError, match="unknown slice labels"):
        make_bags([P, "lesion"], patient_negative=False, bag_size=1)
