"""SEAM, CAM and multi-scale CAM networks: shapes, gradients, bf16 autocast, probability maps."""

from __future__ import annotations

import pytest
import torch

from covidweak.losses import cam_pretraining_loss, focal_loss, m_seam_nam_loss
from covidweak.models import PAPER, SEAM, CAMNet, MultiScaleCAM, cam_to_probability, transfer_cam_weights
from covidweak.models.seam import PixelCorrelationModule

SIZE = 64


@pytest.fixture(scope="module")
def seam():
    torch.manual_seed(0)
    return SEAM(small_scale=0.5)


def slices(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def test_seam_output_shapes(seam):
    out = seam.eval()(slices())
    assert out.c_l.shape == out.d_l.shape == (2, 1, 8, 8)
    assert out.c_s.shape == out.d_s.shape == (2, 1, 4, 4)
    assert out.p_l.shape == out.p_s.shape == (2, 1)
    channels = seam.backbone.feature_channels
    assert out.features.shape == (2, channels.b3 + channels.b4 + channels.b5, 8, 8)
    torch.testing.assert_close(out.p_l, out.c_l.mean(dim=(2, 3)))


def test_batchnorm_running_statistics_come_from_the_large_scale_only():
    """Inference runs the large scale alone, so the small view must not shift its statistics."""
    torch.manual_seed(0)
    both, large_only = SEAM(small_scale=0.5), SEAM(small_scale=0.5)
    large_only.load_state_dict(both.state_dict())
    x = slices(4) * 3.0 + 1.0
    with torch.no_grad():
        torch.manual_seed(1)  # the same dropout masks for the large view of both
        both.train()(x)
        torch.manual_seed(1)
        large_only.train().branch(x)
    for key, value in both.state_dict().items():
        if "running_" in key:
            torch.testing.assert_close(value, large_only.state_dict()[key])
    momenta = {m.momentum for m in both.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.1}  # restored after the small view


def test_affinity_columns_sum_to_one_and_keep_constant_cams():
    pcm = PixelCorrelationModule(b4_channels=8, b5_channels=8, width=0.25)
    image, b4, b5 = torch.randn(1, 3, 16, 16), torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)
    m = pcm.affinity(image, b4, b5)
    assert m.shape == (1, 16, 16) and (m >= 0).all()
    torch.testing.assert_close(m.sum(dim=1), torch.ones(1, 16), rtol=1e-4, atol=1e-4)
    constant = torch.full((1, 1, 4, 4), -2.5)
    torch.testing.assert_close(pcm(constant, image, b4, b5), constant, rtol=1e-4, atol=1e-4)


def test_pcm_power_sharpens_affinity_by_hand():
    """Two cells with embeddings at 60 degrees: cos = 0.5, so beta = 1 gives M = [[2/3, 1/3], ...], beta = 2 gives 4/5, 1/5."""
    pcm = PixelCorrelationModule(b4_channels=8, b5_channels=8, width=0.25, power=2.0)
    embed = torch.zeros_like(pcm.embed.weight)
    embed[0, 0], embed[1, 1] = 1.0, 1.0  # embedding = the image's first two channels
    pcm.embed.weight.data.copy_(embed)
    image = torch.zeros(1, 3, 1, 2)
    image[0, :2, 0, 0] = torch.tensor([1.0, 0.0])
    image[0, :2, 0, 1] = torch.tensor([0.5, 3**0.5 / 2])
    b4 = b5 = torch.zeros(1, 8, 1, 2)  # no feature contribution: ReLU(conv(0)) = 0
    m = pcm.affinity(image, b4, b5)[0]
    torch.testing.assert_close(m, torch.tensor([[0.8, 0.2], [0.2, 0.8]]), rtol=1e-4, atol=1e-4)
    cam = torch.tensor([[[[1.0, 0.0]]]])
    torch.testing.assert_close(pcm(cam, image, b4, b5), torch.tensor([[[[0.8, 0.2]]]]), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="pcm_power"):
        PixelCorrelationModule(b4_channels=8, b5_channels=8, power=0.0)


def train_step(model: SEAM, x: torch.Tensor, bag_size: int) -> None:
    """One M-SEAM-NAM step on bags of ``bag_size`` slices, alternating positive/negative bags."""
    model.train().zero_grad()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
        out = model(x)
    # Push D_l apart so NAM has foreground and background pixels to compare.
    out.d_l = out.d_l * 50.0
    y = (torch.arange(x.shape[0] // bag_size, device=x.device) % 2 == 0).float()[:, None]
    losses = m_seam_nam_loss(out, y, bag_size=bag_size)
    assert all(torch.isfinite(t) for t in losses)
    losses.total.backward()
    for part in (model.backbone.stem, model.backbone.b3, model.pcm.embed, model.cam_head.classifier):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


def test_m_seam_nam_backward_reaches_backbone_pcm_and_head(seam):
    train_step(seam, torch.cat([slices(), slices()]), bag_size=2)


@pytest.mark.gpu
def test_paper_configuration_trains_at_paper_size_on_gpu():
    model = SEAM(PAPER).cuda()
    x = torch.randn(8, 3, 448, 448, device="cuda")  # one bag, as in Sect. 2.3
    train_step(model, x, bag_size=8)


def test_seam_runs_under_bf16_autocast_on_cpu(seam):
    seam.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = seam(slices(1))
        prob = cam_to_probability(out, (SIZE, SIZE))
    assert prob.dtype == torch.float32 and torch.isfinite(prob).all()
    with torch.no_grad():
        reference = cam_to_probability(seam(slices(1)), (SIZE, SIZE))
    assert (prob - reference).abs().max() < 0.1


def test_probability_is_sigmoid_of_upsampled_d_l(seam):
    with torch.no_grad():
        out = seam.eval()(slices(1))
        prob = cam_to_probability(out, (SIZE, SIZE))
        single = seam.branch(slices(1))
    assert prob.shape == (1, 1, SIZE, SIZE) and 0 <= prob.min() and prob.max() <= 1
    torch.testing.assert_close(prob, cam_to_probability(single, (SIZE, SIZE)))
    # The centre of each stride-8 cell interpolates to the cell's own logit.
    torch.testing.assert_close(prob[0, 0, 4::8, 4::8][:1, :1], torch.sigmoid(out.d_l[0, 0, :1, :1]), rtol=0.02, atol=0.02)


def test_cam_pretraining_initialises_seam():
    torch.manual_seed(2)
    cam = CAMNet()
    out = cam(slices())
    assert out.cam.shape == (2, 1, 8, 8) and out.score.shape == (2, 1)
    cam_pretraining_loss(out.score, torch.tensor([[1.0], [0.0]])).backward()
    assert cam.backbone.stem.weight.grad.abs().sum() > 0
    target = SEAM()
    transfer_cam_weights(cam, target)
    cam.eval(), target.eval()
    with torch.no_grad():
        torch.testing.assert_close(target.branch(slices()).cam, cam(slices()).cam)


def test_multiscale_cam_shapes_backward_and_probability():
    net = MultiScaleCAM(num_classes=3, width=0.25)
    out = net(slices())
    assert [tuple(c.shape) for c in out.cams] == [(2, 3, 16, 16), (2, 3, 8, 8), (2, 3, 4, 4)]
    torch.testing.assert_close(out.score, sum(c.amax(dim=(2, 3)) for c in out.cams))
    focal_loss(out.score, torch.tensor([0, 2])).backward()
    assert net.blocks[0][0].weight.grad.abs().sum() > 0
    prob = cam_to_probability(out, (SIZE, SIZE))
    assert prob.shape == (2, 2, SIZE, SIZE)
    # Lesion classes' probabilities are per-pixel softmax shares, so together at most 1.
    assert (prob.sum(dim=1) <= 1 + 1e-5).all()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(net.eval()(slices()).score).all()
