"""FeCNN (Wu et al. Sect. 3.1): fusion weights of Eq. 2, FPN level shapes, Grad-CAM LAHm, the training task."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from covidweak.clusters.lam import gradcam_lahm
from covidweak.models import build_model
from covidweak.models.fecnn import (COVID_CLASS, EPSILON_FLOOR, FPN_LEVELS, FeCNN, fecnn_loss, level_error_rates,
                                    omega_from_error_rates)
from covidweak.clusters.slices import slice_class
from covidweak.training.tasks.fecnn import FeCnnTask


def test_omega_from_error_rates_eq2_by_hand():
    omega = omega_from_error_rates(torch.tensor([0.1, 0.25, 0.5, 0.7, 0.0]))
    expected = [0.5 * math.log(9), 0.5 * math.log(3), 0.0, 0.0, 0.5 * math.log((1 - EPSILON_FLOOR) / EPSILON_FLOOR)]
    assert omega.tolist() == pytest.approx(expected, abs=1e-6)


def test_level_error_rates_eq3_by_hand():
    # Two samples, labels (1, 0); level 0 right on both, level 1 wrong on the second.
    scores = torch.tensor([[[0.0, 1.0], [0.0, 2.0]], [[3.0, 0.0], [0.0, 1.0]]])
    assert level_error_rates(scores, torch.tensor([1, 0])).tolist() == [0.0, 0.5]


def test_fpn_levels_halve_in_size_and_share_the_width():
    model = FeCNN("light", classes=2).eval()
    x = torch.rand(2, 1, 64, 64)
    c3, c4, c5 = model.backbone_features(x)
    # Light backbone: conv1 stride 2, no max pool, stages at strides 2, 4, 8, 16 -> C3 16, C4 8, C5 4 pixels.
    assert (c3.shape, c4.shape, c5.shape) == ((2, 32, 16, 16), (2, 64, 8, 8), (2, 128, 4, 4))
    levels = model.fpn(c3, c4, c5)
    assert [tuple(level.shape) for level in levels] == [(2, 64, 16, 16), (2, 64, 8, 8), (2, 64, 4, 4), (2, 64, 2, 2),
                                                         (2, 64, 1, 1)]
    output = model(x)
    assert output.logits.shape == (2, 2) and output.level_scores.shape == (2, len(FPN_LEVELS), 2)
    assert (output.level_scores >= 0).all()  # Eq. 1 ends in a ReLU
    assert output.features.shape == (2, 128, 4, 4)


def test_three_way_model_and_factory():
    model = build_model("fecnn", {"backbone": "light", "classes": 3}).eval()
    assert model(torch.rand(1, 1, 32, 32)).logits.shape == (1, 3)
    with pytest.raises(ValueError, match="2 .* or 3"):
        FeCNN("light", classes=4)


def test_omega_is_stored_in_the_state_dict_and_weights_the_levels():
    model = FeCNN("light", classes=2).eval()
    x = torch.rand(1, 1, 32, 32)
    model.set_error_rates(torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5]))  # every level at chance: omega = 0
    assert model.state_dict()["omega"].tolist() == [0.0] * 5
    # With d = 0 the prediction is the final layer's bias alone.
    assert torch.allclose(model(x).logits[0], model.classifier.bias)


def test_gradcam_lahm_is_non_negative_and_matches_the_feature_grid():
    model = FeCNN("light", classes=2).eval()
    lahm, features, probabilities = gradcam_lahm(model, torch.rand(3, 1, 64, 64), COVID_CLASS)
    assert lahm.shape == (3, 4, 4) and features.shape == (3, 128, 4, 4) and probabilities.shape == (3, 2)
    assert (lahm >= 0).all()
    assert probabilities.sum(axis=1) == pytest.approx(np.ones(3), abs=1e-5)


def test_cpu_smoke_run_lowers_the_loss():
    torch.manual_seed(0)
    task = FeCnnTask()
    config = {"model": {"backbone": "light", "classes": 2}, "params": {"level_loss_weight": 1.0}}
    model = task.build_model(config)
    x = torch.zeros(16, 1, 32, 32)
    x[8:, :, 8:20, 8:20] = 1.0  # class 1: a bright "lesion"
    batch = {"x": x, "y": torch.tensor([0] * 8 + [1] * 8)}
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        loss = task.training_step(model, batch, config, "cpu")["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_fecnn_loss_adds_the_level_term():
    with torch.no_grad():
        output = FeCNN("light", classes=2).eval()(torch.rand(2, 1, 32, 32))
    labels = torch.tensor([0, 1])
    total, level_term = fecnn_loss(output, labels, level_weight=0.0)
    assert float(total) == pytest.approx(float(torch.nn.functional.cross_entropy(output.logits, labels)))
    assert float(fecnn_loss(output, labels, level_weight=2.0)[0]) == pytest.approx(float(total + 2 * level_term))


def test_slice_classes_follow_the_paper():
    assert slice_class("covid", True, 2) == 1 and slice_class("normal", False, 2) == 0
    assert slice_class("cap", True, 2) is None  # other pneumonia's lesions are left out of the binary task
    assert slice_class("covid", False, 2) == 0  # a slice known to be lesion-free is negative
    assert slice_class("covid", None, 2) is None and slice_class("normal", None, 2) == 0
    assert [slice_class(d, True, 3) for d in ("normal", "covid", "cap")] == [0, 1, 2]
    assert slice_class("cap", False, 3) == 0


@pytest.mark.slow
def test_task_prepares_balanced_epochs_and_stores_omega(phantom_dir):
    from covidweak.datasets import open_dataset
    from covidweak.training.task import TaskData

    records = open_dataset(phantom_dir)
    task = FeCnnTask()
    config = {"model": {"backbone": "light", "classes": 2}, "preprocess": {"input_size": 32}, "batch_size": 4,
              "params": {"val_batch_size": 8}}
    task.prepare(TaskData(splits={"train": records, "val": records}), config)
    x, y = task.data["train"]
    assert x.shape[1:] == (1, 32, 32) and set(np.unique(y)) == {0, 1}
    batches = task.train_batches(config, epoch=0, seed=0)
    labels = torch.cat([b["y"] for b in batches])
    assert int((labels == 1).sum()) == int((labels == 0).sum()) == int((y == 1).sum())
    model = task.build_model(config).eval()
    with torch.no_grad():
        metrics = task.validate(model, config, "cpu")
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert model.omega.tolist() == pytest.approx([metrics[f"omega_{name}"] for name in FPN_LEVELS])


def test_p3_lesion_branch_reads_the_stride_4_level_and_survives_omega_zero():
    """``lam_level: P3`` gives Grad-CAM a stride-4 map; its objective is P3's own score, so the map does
    not vanish when Eq. 2 weights P3 by 0. ``score_activation: none`` lets level scores go negative."""
    torch.manual_seed(0)
    model = build_model("fecnn", {"backbone": "light", "classes": 2, "lam_level": "P3", "score_activation": "none"}).eval()
    model.set_error_rates(torch.tensor([0.5, 0.1, 0.1, 0.1, 0.1]))  # P3 at chance: omega_P3 = 0
    x = torch.rand(4, 1, 40, 56)
    lahm, features, _ = gradcam_lahm(model, x, COVID_CLASS)
    assert features.shape == (4, model.feature_channels, 10, 14) and lahm.shape == (4, 10, 14)
    assert (lahm > 0).any()
    assert (model(x).level_scores < 0).any()
    with pytest.raises(ValueError, match="lam_level"):
        FeCNN("light", lam_level="C4")


def test_box_fecnn_input_does_not_depend_on_the_field_of_view(phantom_dir):
    """On the shared lung box, padding a CT's field of view leaves FeCNN's input and prediction unchanged."""
    import SimpleITK as sitk

    from covidweak.clusters.ct import fecnn_input
    from covidweak.datasets.phantom import read_phantom
    from covidweak.io import read_ct, read_image
    from covidweak.lungs.geometry import to_canonical
    from covidweak.weakseg.prepare import input_box

    record = next(r for r in read_phantom(phantom_dir) if r.diagnosis == "covid")
    preprocess = {"geometry": "lung_box", "box_shape": [48, 64], "hu_window": [-1200.0, 600.0], "input_size": 48}

    def box_input(ct, lungs):
        hu = sitk.GetArrayFromImage(to_canonical(ct))
        lung_array = sitk.GetArrayFromImage(to_canonical(lungs))
        box = input_box(preprocess, lung_array, to_canonical(ct).GetSpacing()[1::-1])
        centres = np.flatnonzero(lung_array.any(axis=(1, 2)))
        return fecnn_input(hu, lung_array, centres, preprocess, box)

    ct, lungs = read_ct(record.ct_path), read_image(record.lung_mask_path)
    base = box_input(ct, lungs)
    wide = box_input(sitk.ConstantPad(ct, (24, 16, 0), (24, 16, 0), -1000.0), sitk.ConstantPad(lungs, (24, 16, 0), (24, 16, 0), 0))
    assert base.shape[1:] == (1, 48, 64)
    np.testing.assert_array_equal(wide, base)
    torch.manual_seed(0)
    model = FeCNN("light", lam_level="P3", score_activation="none").eval()
    with torch.no_grad():
        assert torch.allclose(model(torch.from_numpy(wide)).logits, model(torch.from_numpy(base)).logits)


def test_level_head_pools_by_average_or_max():
    """Eq. 1's head with identity weights: global average pooling divides a one-pixel lesion by the map
    size, global max pooling keeps it (``model.level_pooling: max``)."""
    from covidweak.models.fecnn import FeatureHead

    level = torch.zeros(1, 2, 4, 4)
    level[0, 0, 1, 2] = 4.0
    scores = {}
    for pooling in ("avg", "max"):
        head = FeatureHead(2, 2, 2, dropout=0.0, relu=False, pooling=pooling).eval()
        with torch.no_grad():
            head.reduce[0].weight.copy_(torch.eye(2)[:, :, None, None])
            head.reduce[1].eps = 0.0  # running mean 0, variance 1: batch norm is the identity
            head.score.weight.copy_(torch.eye(2))
            head.score.bias.zero_()
            scores[pooling] = head(level)[0].tolist()
    assert scores["avg"] == pytest.approx([4.0 / 16, 0.0])
    assert scores["max"] == pytest.approx([4.0, 0.0])
    with pytest.raises(ValueError, match="level_pooling"):
        FeCNN("light", level_pooling="sum")
