"""The CAM head's image score: global average (Eq. 1, the default) or global maximum (an ablation)."""

from __future__ import annotations

import pytest
import torch

from covidweak.models import build_model
from covidweak.models.cam import CAMHead


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


@pytest.mark.parametrize("method", ["cam", "seam", "mseamnam"])
def test_models_default_to_the_papers_average(method):
    assert build_model(method).cam_head.pooling == "gap"
    assert build_model(method, {"pooling": "gmp"}).cam_head.pooling == "gmp"


def test_an_unknown_pooling_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown pooling 'mean'"):
        build_model("cam", {"pooling": "mean"})
