"""SEAM losses (Tang et al. 2021, Eq. 1-3) and L_all (Eq. 8)."""

from __future__ import annotations

import math

import pytest
import torch

from covidweak.losses import (
    classification_loss,
    equivariant_cross_regularization_loss,
    equivariant_regularization_loss,
    m_seam_nam_loss,
)
from covidweak.losses.seam import down, equivariance_maps, normalise_map
from covidweak.models import SEAMOutput


def test_classification_loss_matches_hand_computation():
    p_l = torch.tensor([[2.0], [-1.0]])
    p_s = torch.tensor([[0.5], [0.0]])
    y = torch.tensor([[1.0], [0.0]])
    # Image 1 is positive (y = +1), image 2 negative (y = -1).
    image1 = math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-0.5))
    image2 = math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(0.0))
    assert classification_loss(p_l, p_s, y).item() == pytest.approx((image1 + image2) / 2, rel=1e-6)


def test_classification_loss_equals_multilabel_soft_margin_times_two_scales():
    g = torch.Generator().manual_seed(0)
    p_l, p_s = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    y = torch.randint(0, 2, (4, 3), generator=g).float()
    reference = torch.nn.MultiLabelSoftMarginLoss()
    expected = 3 * (reference(p_l, y) + reference(p_s, y))  # torch averages over classes, Eq. 1 sums
    assert classification_loss(p_l, p_s, y).item() == pytest.approx(expected.item(), rel=1e-6)


def consistent_maps(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    c_l, d_l = torch.randn(2, 1, 8, 8, generator=g), torch.randn(2, 1, 8, 8, generator=g)
    size_like = torch.empty(2, 1, 3, 3)
    return c_l, down(c_l, size_like), d_l, down(d_l, size_like)


def test_equivariance_losses_vanish_when_scales_agree():
    c_l, c_s, d_l, d_s = consistent_maps()
    assert equivariant_regularization_loss(c_l, c_s, d_l, d_s).item() == pytest.approx(0.0, abs=1e-7)
    # ECR compares C with D across scales: it vanishes when the PCM leaves the CAM unchanged.
    assert equivariant_cross_regularization_loss(c_l, c_s, c_l, c_s).item() == pytest.approx(0.0, abs=1e-7)
    assert equivariant_cross_regularization_loss(c_l, c_s, d_l, d_s).item() > 0.1


def test_equivariance_losses_hand_values_on_constant_maps():
    ones_l, ones_s = torch.ones(1, 1, 6, 6), torch.ones(1, 1, 2, 2)
    # C_l = 1, C_s = 3, D_l = 0, D_s = 2: ER = |1-3| + |0-2| = 4, ECR = |1-2| + |3-0| = 4.
    assert equivariant_regularization_loss(ones_l, 3 * ones_s, 0 * ones_l, 2 * ones_s).item() == pytest.approx(4.0)
    assert equivariant_cross_regularization_loss(ones_l, 3 * ones_s, 0 * ones_l, 2 * ones_s).item() == pytest.approx(4.0)


def test_l_all_sums_terms_with_half_nfbd():
    c_l, c_s, d_l, d_s = consistent_maps(1)
    features = torch.rand(2, 6, 8, 8, generator=torch.Generator().manual_seed(2))  # non-negative, like ReLU features
    d_l = d_l * 6  # spread logits so both groups exist
    output = SEAMOutput(c_l=c_l, c_s=c_s, d_l=d_l, d_s=d_s + 0.3, p_l=c_l.mean((2, 3)), p_s=c_s.mean((2, 3)), features=features)
    losses = m_seam_nam_loss(output, torch.tensor([[1.0], [0.0]]))
    expected = losses.cls + losses.er + losses.ecr + losses.nfs + losses.nbs + 0.5 * losses.nfbd
    assert losses.nfbd.item() > 0
    assert losses.total.item() == pytest.approx(expected.item(), rel=1e-6)
    plain = m_seam_nam_loss(output, torch.tensor([[1.0], [0.0]]), use_nam=False)
    assert plain.total.item() == pytest.approx((losses.cls + losses.er + losses.ecr).item(), rel=1e-6)


def test_normalised_map_spans_zero_to_one_and_ignores_logit_scale():
    cam = torch.tensor([[[[-3.0, 0.5], [2.0, 4.0]]]])
    # ReLU gives [0, 0.5, 2, 4]; min 0, max 4 -> about [0, 0.125, 0.5, 1].
    expected = torch.tensor([[[[0.0, 0.125], [0.5, 1.0]]]])
    assert torch.allclose(normalise_map(cam), expected, atol=1e-4)
    assert torch.allclose(normalise_map(10 * cam), normalise_map(cam), atol=1e-4)
    assert normalise_map(torch.full((1, 1, 3, 3), -2.0)).abs().max().item() == 0.0


def upsampled_maps(seed: int):
    """Large maps bilinearly upsampled 3x3 -> 9x9 (align_corners): Down() recovers the small ones
    exactly, and an interpolation keeps the extremes, so normalising commutes with Down()."""
    g = torch.Generator().manual_seed(seed)
    c_s, d_s = torch.randn(2, 1, 3, 3, generator=g), torch.randn(2, 1, 3, 3, generator=g)
    up = lambda m: torch.nn.functional.interpolate(m, size=(9, 9), mode="bilinear", align_corners=True)  # noqa: E731
    return up(c_s), c_s, up(d_s), d_s


def test_normalised_equivariance_ignores_negative_images_and_logit_size():
    c_l, c_s, d_l, d_s = upsampled_maps(3)
    y = torch.tensor([[1.0], [0.0]])
    # Scale agreement still gives zero, and a map 5x larger is the same normalised map.
    maps = equivariance_maps(c_l, c_s, d_l, d_s, y)
    assert equivariant_regularization_loss(*maps).item() == pytest.approx(0.0, abs=1e-6)
    maps = equivariance_maps(5 * c_l, c_s, d_l, d_s, y)
    assert equivariant_regularization_loss(*maps).item() == pytest.approx(0.0, abs=1e-5)
    # The negative image (second) contributes nothing, however different its scales are.
    c_s_bad = c_s.clone()
    c_s_bad[1] = 7.0 * torch.rand_like(c_s_bad[1])
    maps = equivariance_maps(c_l, c_s_bad, d_l, d_s, y)
    assert equivariant_regularization_loss(*maps).item() == pytest.approx(0.0, abs=1e-6)
    # The literal reading keeps the raw logits, so the same pair costs something.
    assert equivariant_regularization_loss(*equivariance_maps(c_l, c_s_bad, d_l, d_s, y, "logits")).item() > 0.5
    with pytest.raises(ValueError, match="equivariance"):
        equivariance_maps(c_l, c_s, d_l, d_s, y, "softmax")


def test_bag_labels_reach_every_slice_of_the_equivariance_terms():
    c_l, c_s, d_l, d_s = consistent_maps(4)
    c_l, c_s, d_l, d_s = (torch.cat([m] * 4) for m in (c_l, c_s, d_l, d_s))  # 8 slices: two bags of 4
    d_s = d_s + torch.rand_like(d_s)
    output = SEAMOutput(c_l=c_l, c_s=c_s, d_l=d_l, d_s=d_s, p_l=c_l.mean((2, 3)), p_s=c_s.mean((2, 3)),
                        features=torch.rand(8, 4, 8, 8))
    both = m_seam_nam_loss(output, torch.tensor([[1.0], [1.0]]), bag_size=4, use_nam=False)
    first = m_seam_nam_loss(output, torch.tensor([[1.0], [0.0]]), bag_size=4, use_nam=False)
    assert both.er.item() > 0
    # Only the positive bag's four slices count; the terms average over all eight.
    half = equivariant_regularization_loss(*equivariance_maps(c_l[:4], c_s[:4], d_l[:4], d_s[:4], torch.ones(4, 1)))
    assert first.er.item() == pytest.approx(half.item() / 2, rel=1e-5)


def test_probability_equivariance_compares_sigmoid_maps_of_positive_images():
    """Background logits of -10 against -20 differ by 10 as logits and by ~5e-5 as probabilities."""
    c_l = torch.full((2, 1, 8, 8), -10.0)
    c_s = torch.full((2, 1, 4, 4), -20.0)
    y = torch.tensor([[1.0], [0.0]])
    maps = equivariance_maps(c_l, c_s, c_l, c_s, y, "probabilities")
    assert torch.allclose(maps[0][0], torch.sigmoid(torch.tensor(-10.0)).expand(1, 8, 8))
    assert maps[0][1].abs().max() == 0  # a negative image adds nothing, as with normalised maps
    assert equivariant_regularization_loss(*maps).item() < 1e-4
    assert equivariant_regularization_loss(*equivariance_maps(c_l, c_s, c_l, c_s, y, "logits")).item() > 1.0


def test_peak_equivariance_compares_shapes_scaled_by_the_bags_peak():
    """A map and its faded copy (probabilities 0.5 vs 0.05 at the same pixel) disagree as probabilities
    but agree once each is divided by its bag's peak; a lesion-free slice of the bag stays near 0."""
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    c_l = torch.full((2, 1, 2, 2), -20.0)
    c_l[0, 0, 0, 1] = logit(0.5)  # slice 0 of the bag holds the lesion, slice 1 none
    c_s = torch.full((2, 1, 2, 2), -20.0)
    c_s[0, 0, 0, 1] = logit(0.05)
    y = torch.ones(2, 1)
    peak = equivariance_maps(c_l, c_s, c_l, c_s, y, "peak", bag_size=2)
    assert peak[0][0, 0, 0, 1].item() == pytest.approx(1.0, abs=1e-4) and peak[1][0, 0, 0, 1].item() == pytest.approx(1.0, abs=1e-3)
    assert peak[0][1].max().item() < 1e-7  # the lesion-free slice: sigmoid(-20) / 0.5
    assert equivariant_regularization_loss(*peak).item() < 1e-3
    # plain probabilities: |0.5 - 0.05| / 4 pixels, for C and for D, on one slice of two
    plain = equivariance_maps(c_l, c_s, c_l, c_s, y, "probabilities")
    assert equivariant_regularization_loss(*plain).item() == pytest.approx(2 * 0.45 / 4 / 2, rel=1e-3)
    # a negative bag adds nothing
    assert equivariance_maps(c_l, c_s, c_l, c_s, torch.zeros(2, 1), "peak", bag_size=2)[0].abs().max() == 0
