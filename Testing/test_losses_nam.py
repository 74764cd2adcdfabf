"""NAM losses (Tang et al. 2021, Eq. 4-6): hand values, a per-pixel reference loop, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from covidweak.losses.nam import NAM_RADIUS, T_BG, T_FG, disc_offsets, nam_losses

FG_LOGIT = 5.0  # sigmoid ~ 0.993 > T_fg
BG_LOGIT = -8.0  # sigmoid ~ 3e-4 < T_bg
IGNORED_LOGIT = math.log(0.05 / 0.95)  # sigmoid = 0.05, between T_bg and T_fg


def reference_nam(features: np.ndarray, d_l: np.ndarray, radius: int) -> tuple[float, float, float]:
    """Eq. 4-6 pixel by pixel, per image, averaged over images that have the set."""
    prob = 1.0 / (1.0 + np.exp(-d_l.max(axis=1)))
    terms = {"nfs": [], "nbs": [], "fb": [], "bf": []}
    for n in range(features.shape[0]):
        fg, bg = prob[n] > T_FG, prob[n] < T_BG
        h, w = fg.shape
        per_centre = {key: [] for key in terms}
        for y in range(h):
            for x in range(w):
                cos_fg, cos_bg = [], []
                for yy in range(max(0, y - radius), min(h, y + radius + 1)):
                    for xx in range(max(0, x - radius), min(w, x + radius + 1)):
                        d2 = (yy - y) ** 2 + (xx - x) ** 2
                        if d2 == 0 or d2 > radius * radius:
                            continue
                        a, b = features[n, :, y, x], features[n, :, yy, xx]
                        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
                        if fg[yy, xx]:
                            cos_fg.append(cos)
                        if bg[yy, xx]:
                            cos_bg.append(cos)
                if fg[y, x] and cos_fg:
                    per_centre["nfs"].append(np.mean([1 - c for c in cos_fg]))
                if bg[y, x] and cos_bg:
                    per_centre["nbs"].append(np.mean([1 - c for c in cos_bg]))
                if fg[y, x] and cos_bg:
                    per_centre["fb"].append(np.mean(cos_bg))
                if bg[y, x] and cos_fg:
                    per_centre["bf"].append(np.mean(cos_fg))
        for key, values in per_centre.items():
            if values:
                terms[key].append(np.mean(values))

    def batch_mean(key: str) -> float:
        return float(np.mean(terms[key])) if terms[key] else 0.0

    return batch_mean("nfs"), batch_mean("nbs"), batch_mean("fb") + batch_mean("bf")


def random_case(seed: int, n: int = 2, d: int = 5, h: int = 9, w: int = 11):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, h, w, generator=g, dtype=torch.float64)
    d_l = torch.tensor([FG_LOGIT, BG_LOGIT, IGNORED_LOGIT], dtype=torch.float64)[torch.randint(0, 3, (n, 1, h, w), generator=g)]
    return features, d_l


def test_disc_has_80_offsets_for_radius_5():
    offsets = disc_offsets(NAM_RADIUS)
    assert len(offsets) == 80
    assert (0, 0) not in offsets and (5, 0) in offsets and (4, 4) not in offsets


@pytest.mark.parametrize("seed, radius", [(0, 1), (1, 2), (2, NAM_RADIUS)])
def test_vectorised_equals_reference_loop(seed, radius):
    features, d_l = random_case(seed)
    got = nam_losses(features, d_l, radius=radius)
    expected = reference_nam(features.numpy(), d_l.numpy(), radius)
    np.testing.assert_allclose([got.nfs.item(), got.nbs.item(), got.nfbd.item()], expected, rtol=1e-5, atol=1e-6)


def test_identical_foreground_features_give_zero_nfs():
    features = torch.zeros(1, 3, 4, 4)
    features[0, 0] = 1.0  # every pixel has the same direction
    d_l = torch.full((1, 1, 4, 4), IGNORED_LOGIT)
    d_l[0, 0, 1, 1] = d_l[0, 0, 1, 2] = FG_LOGIT
    losses = nam_losses(features, d_l)
    assert losses.nfs.item() == pytest.approx(0.0, abs=1e-6)
    assert losses.nbs.item() == 0.0 and losses.nfbd.item() == 0.0  # no background pixels at all


def test_orthogonal_foreground_and_background_give_zero_nfbd_and_similarity_terms():
    features = torch.zeros(1, 2, 6, 6)
    d_l = torch.full((1, 1, 6, 6), BG_LOGIT)
    d_l[0, 0, 2:4, 2:4] = FG_LOGIT
    features[0, 0] = (d_l[0, 0] > 0).float() * 3.0
    features[0, 1] = (d_l[0, 0] < 0).float() * 0.5
    losses = nam_losses(features, d_l)
    assert losses.nfbd.item() == pytest.approx(0.0, abs=1e-6)
    assert losses.nfs.item() == pytest.approx(0.0, abs=1e-6)
    assert losses.nbs.item() == pytest.approx(0.0, abs=1e-6)


def test_opposite_foreground_pair_hand_value():
    # Two adjacent fg pixels with opposite features: cos = -1, so each has mean (1 - cos) = 2.
    features = torch.zeros(1, 2, 1, 2)
    features[0, 0, 0, 0], features[0, 0, 0, 1] = 1.0, -2.0
    d_l = torch.full((1, 1, 1, 2), FG_LOGIT)
    assert nam_losses(features, d_l).nfs.item() == pytest.approx(2.0)


def test_fore_back_hand_value():
    # fg pixel (1, 0) and bg pixel (0, 1) at 45 degrees: each term of Eq. 6 is cos 45.
    features = torch.tensor([[1.0, 1.0], [0.0, 1.0]]).T.reshape(1, 2, 1, 2)
    d_l = torch.tensor([FG_LOGIT, BG_LOGIT]).reshape(1, 1, 1, 2)
    assert nam_losses(features, d_l).nfbd.item() == pytest.approx(2 * math.sqrt(0.5), rel=1e-6)


@pytest.mark.parametrize("logit", [FG_LOGIT, BG_LOGIT, IGNORED_LOGIT])
def test_single_group_or_no_group_gives_finite_losses_with_gradient(logit):
    features = torch.randn(2, 4, 5, 5, requires_grad=True)
    losses = nam_losses(features, torch.full((2, 1, 5, 5), logit))
    total = losses.total()
    assert all(torch.isfinite(t) for t in losses)
    assert losses.nfbd.item() == 0.0
    total.backward()
    assert torch.isfinite(features.grad).all()


def test_image_without_foreground_does_not_dilute_the_batch_mean():
    features, d_l = random_case(3, n=1)
    alone = nam_losses(features, d_l)
    paired = nam_losses(torch.cat([features, features]), torch.cat([d_l, torch.full_like(d_l, BG_LOGIT)]))
    assert paired.nfs.item() == pytest.approx(alone.nfs.item(), rel=1e-9)


def test_gradients_reach_features_and_not_the_grouping_map():
    features, d_l = random_case(4)
    features = features.float().requires_grad_()
    d_l = d_l.float().requires_grad_()
    nam_losses(features, d_l).total().backward()
    assert features.grad.abs().sum() > 0
    assert d_l.grad is None


def test_size_mismatch_is_rejected():
    with pytest.raises(ValueError, match="differ in size"):
        nam_losses(torch.randn(1, 3, 4, 4), torch.randn(1, 1, 5, 5))
