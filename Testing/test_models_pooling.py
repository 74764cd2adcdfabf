"""The CAM head's image score: global average (Eq. 1, the default) or global maximum (an ablation)."""

from __future__ import annotations

import math

import pytest
import torch

from covidweak.models import build_model
from covidweak.models.cam import NOISY_OR_PIXEL_PRIOR, CAMHead


def head_with_known_map(pooling: str) -> CAMHead:
    head = CAMHead(2, pooling=pooling).eval()  # eval: no dropout
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([[1.0, 0.0]]).view(1, 2, 1, 1))
    return head


def test_average_and_maximum_of_a_hand_made_map():
    features = torch.zeros(1, 2, 4, 4)
    features[0, 0, 1, 2] = 8.0  # one "lesion" cell of 16; the second channel has zero weight
    cam, score = head_with_known_map("gap")(features)
    assert cam[0, 0, 1, 2] == 8.0 and score.item() == pytest.approx(0.5)
    _, score = head_with_known_map("gmp")(features)
    assert score.item() == pytest.approx(8.0)


def test_noisy_or_of_a_hand_made_map():
    """Two pixels at sigmoid 0.5, the rest at ~0: P(slice) = 1 - 0.5 * 0.5 = 0.75, logit log 3."""
    head = CAMHead(2, pooling="noisy-or").eval()
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([[1.0, 0.0]]).view(1, 2, 1, 1))
        head.classifier.bias.zero_()
    features = torch.full((1, 2, 4, 4), -60.0)
    features[0, 0, 1, 2] = features[0, 0, 3, 0] = 0.0
    cam, score = head(features)
    assert cam[0, 0, 1, 2] == 0.0 and score.item() == pytest.approx(math.log(3.0), abs=1e-6)
    # One pixel at probability 0.9 alone: the slice score is that pixel's own logit.
    features[0, 0, 3, 0] = -60.0
    features[0, 0, 1, 2] = math.log(9.0)
    _, score = head(features)
    assert torch.sigmoid(score).item() == pytest.approx(0.9, abs=1e-6)


def test_noisy_or_starts_from_the_pixel_prior():
    """Untrained, every pixel sits at NOISY_OR_PIXEL_PRIOR: P(slice) = 1 - (1 - 1e-4)^(h w)."""
    head = CAMHead(3, pooling="noisy-or").eval()
    _, score = head(torch.zeros(1, 3, 40, 56))
    expected = 1 - (1 - NOISY_OR_PIXEL_PRIOR) ** (40 * 56)
    assert torch.sigmoid(score).item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("method", ["cam", "seam", "mseamnam"])
def test_models_default_to_the_papers_average(method):
    assert build_model(method).cam_head.pooling == "gap"
    assert build_model(method, {"pooling": "gmp"}).cam_head.pooling == "gmp"


def test_an_unknown_pooling_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown pooling 'mean'"):
        build_model("cam", {"pooling": "mean"})


def test_noisy_or_seam_refines_pixel_probabilities_not_logits():
    """D = logit(sigmoid(C) . M) under noisy-OR; D = C . M (SEAM's own rule) under GAP."""
    from covidweak.models.seam import NOISY_OR_PCM_EPS

    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    for pooling in ("noisy-or", "gap"):
        model = build_model("seam", {"backbone": "box", "pooling": pooling}).eval()
        with torch.no_grad():
            branch = model.branch(x)
            feats = model.backbone(x)
            m = model.pcm.affinity(x, feats.b4, feats.b5)
            n, c, h, w = branch.cam.shape
            if pooling == "noisy-or":
                average = (torch.sigmoid(branch.cam).reshape(n, c, h * w) @ m).reshape(n, c, h, w)
                expected = torch.logit(average, eps=NOISY_OR_PCM_EPS)
            else:
                expected = (branch.cam.reshape(n, c, h * w) @ m).reshape(n, c, h, w)
        torch.testing.assert_close(branch.refined, expected, rtol=1e-4, atol=1e-4)
    # A background of logit -15 with one lesion cell of logit +3: averaging logits drowns the lesion.
    cam = torch.full((1, 1, 1, 4), -15.0)
    cam[..., 0] = 3.0
    m = torch.full((1, 4, 4), 0.25)
    assert torch.sigmoid((cam.reshape(1, 1, 4) @ m)).max() < 1e-4
    assert torch.sigmoid(torch.logit(torch.sigmoid(cam).reshape(1, 1, 4) @ m)).max() > 0.2
