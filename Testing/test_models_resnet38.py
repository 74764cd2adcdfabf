"""ResNet-38 backbone: shapes, output stride, both configurations."""

from __future__ import annotations

import pytest
import torch

from covidweak.models import LIGHT, PAPER, ResNet38, config_by_name
from covidweak.models.resnet38 import BOX


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_light_feature_shapes_and_output_stride():
    net = ResNet38(LIGHT).eval()
    with torch.no_grad():
        feats = net(torch.randn(2, 3, 64, 48))
    c = net.feature_channels
    assert feats.b3.shape == (2, c.b3, 16, 12)
    assert feats.b4.shape == (2, c.b4, 64 // LIGHT.output_stride, 48 // LIGHT.output_stride)
    assert feats.b5.shape == (2, c.b5, 8, 6)
    assert feats.final.shape == (2, c.final, 8, 6)
    assert (c.b3, c.b4, c.b5, c.final) == (64, 128, 256, 1024)
    assert all((f >= 0).all() for f in feats)  # batch-normalised and ReLU-activated


def test_box_configuration_keeps_stride_4_and_the_nam_taps():
    net = ResNet38(BOX).eval()
    with torch.no_grad():
        feats = net(torch.randn(2, 3, 160, 224))
    c = net.feature_channels
    # B3, B4, B5 and the CAM features all at 40 x 56: a quarter of the 160 x 224 lung box.
    for f, channels in zip(feats, c):
        assert f.shape == (2, channels, 40, 56)
    assert 0.15e6 < n_params(net) < 0.5e6  # trains on a 2-core CPU at ~20 slices/s


def test_box_stride_4_sees_as_far_as_stride_8():
    """Doubling the dilations keeps the receptive field: a one-pixel change moves outputs ~the same distance away."""
    def reach(config):
        net = ResNet38(config).eval()
        x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)).requires_grad_()
        final = net(x).final
        centre = final.shape[-1] // 2
        final[0, :, centre, centre].sum().backward()
        rows = torch.nonzero(x.grad[0].abs().sum(0).sum(1)).flatten()
        return int(rows.max() - rows.min())

    stride8 = reach(config_by_name("light"))
    stride4 = reach(BOX)
    assert 0.5 * stride8 <= stride4 <= 1.5 * stride8


@pytest.fixture(scope="module")
def paper_net():
    return ResNet38(PAPER).eval()


def test_paper_configuration_has_model_a_size_and_runs(paper_net):
    net = paper_net
    # Wu et al.'s model A has about 104 M parameters (here without the ImageNet classifier).
    assert 95e6 < n_params(net) < 115e6
    assert net.feature_channels == (256, 512, 1024, 4096)
    # 38 weighted layers: stem + 15 wide blocks x 2 + 2 bottlenecks x 3 (+ the classifier head).
    layers = [m for name, m in net.named_modules() if isinstance(m, torch.nn.Conv2d) and "shortcut" not in name]
    assert len(layers) == 1 + 15 * 2 + 2 * 3
    with torch.no_grad():
        feats = net(torch.randn(1, 3, 32, 32))
    assert feats.final.shape == (1, 4096, 4, 4)


def test_light_is_small_enough_for_cpu(paper_net):
    assert n_params(ResNet38(LIGHT)) < 0.06 * n_params(paper_net)


def test_config_by_name():
    assert config_by_name("paper") is PAPER and config_by_name("light") is LIGHT
    with pytest.raises(ValueError, match="unknown backbone configuration 'huge'"):
        config_by_name("huge")


def test_frozen_batch_norm_keeps_its_statistics_and_parameters_in_training():
    from covidweak.models import build_model

    model = build_model("mseamnam", {"freeze_bn": True}).train()
    norms = list(model.backbone._batch_norms())
    assert norms and all(not m.training and not m.weight.requires_grad for m in norms)
    before = [m.running_mean.clone() for m in norms]
    model(torch.rand(8, 3, 64, 64))  # a training-mode forward would update running statistics
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, norms))
    assert build_model("mseamnam").backbone.freeze_bn is False  # the default trains BatchNorm


def test_frozen_statistics_keep_batch_norm_affine_parameters_trainable():
    from covidweak.models import build_model

    model = build_model("mseamnam", {"freeze_bn": "stats"}).train()
    norms = list(model.backbone._batch_norms())
    assert all(not m.training and m.weight.requires_grad and m.bias.requires_grad for m in norms)
    before = [m.running_var.clone() for m in norms]
    model(torch.rand(8, 3, 64, 64)).p_l.sum().backward()
    assert all(torch.equal(b, m.running_var) for b, m in zip(before, norms))
    assert all(m.bias.grad is not None for m in norms)
    with pytest.raises(ValueError, match="freeze_bn"):
        build_model("mseamnam", {"freeze_bn": "sometimes"})
