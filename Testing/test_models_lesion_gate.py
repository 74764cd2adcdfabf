"""The slice gate of ``lesion_logits``: a class map is only read on slices its classifier calls lesion."""

from __future__ import annotations

import torch

from covidweak.models import CAMNet, build_model, lesion_logits
from covidweak.models.cam import CAMOutput
from covidweak.models.factory import ABSENT_LOGIT, UNetOutput, slice_has_lesion


def test_one_logit_scores_are_lesion_when_positive():
    output = CAMOutput(cam=torch.zeros(3, 1, 2, 2), score=torch.tensor([[-0.5], [0.0], [2.0]]))
    assert slice_has_lesion(output).tolist() == [False, False, True]


def test_two_class_scores_are_lesion_when_the_lesion_class_wins():
    output = CAMOutput(cam=torch.zeros(2, 1, 2, 2), score=torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
    assert slice_has_lesion(output).tolist() == [False, True]


def test_a_model_without_image_score_is_never_gated():
    assert slice_has_lesion(UNetOutput(torch.zeros(1, 1, 2, 2))) is None
    unet = build_model("unet").eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(lesion_logits(unet, x, gate=True), lesion_logits(unet, x))


def test_cam_maps_of_lesion_free_slices_are_absent():
    """A CAM whose classifier is flipped in sign for half the batch: those slices read absent."""
    torch.manual_seed(0)
    cam = CAMNet().eval()
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        plain = lesion_logits(cam, x)
        score = cam(x).score[:, 0]
        gated = lesion_logits(cam, x, gate=True)
        cam.cam_head.classifier.weight.neg_()
        flipped = lesion_logits(cam, x, gate=True)
    assert (score != 0).all()
    for k in range(4):
        lesion = bool(score[k] > 0)
        assert torch.equal(gated[k], plain[k] if lesion else torch.full_like(plain[k], ABSENT_LOGIT))
        assert torch.equal(flipped[k], torch.full_like(plain[k], ABSENT_LOGIT) if lesion else -plain[k])
    assert torch.sigmoid(torch.tensor(ABSENT_LOGIT)) < 1e-9
