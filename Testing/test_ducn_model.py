"""DuCN (Peng et al.): losses by hand, the three-channel input, the network and a CPU training smoke run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from covidweak.errors import InputError
from covidweak.losses.triplet import TRIPLET_MARGIN, detection_loss, total_loss, triplet_loss
from covidweak.models.ducn import DuCN, build_ducn, load_imagenet_init
from covidweak.models.factory import build_model
from covidweak.similar.inputs import apply_ablation, slice_channels, study_inputs


def test_triplet_loss_by_hand():
    anchor = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    positive = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    negative = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
    # Row 1: d(a,p) = sqrt(2), d(a,n) = 2 -> sqrt(2) - 2 + 1.2; row 2: 0 - sqrt(2) + 1.2 < 0 -> 0.
    expected = (math.sqrt(2) - 2 + TRIPLET_MARGIN) / 2
    assert triplet_loss(anchor, positive, negative).item() == pytest.approx(expected, abs=1e-5)  # torch's eps 1e-6


def test_detection_and_total_loss_weights():
    logits = torch.zeros(1, 2)  # cross-entropy ln 2 for either label
    value = detection_loss(torch.tensor(0.5), logits, torch.tensor([1]))
    assert value.item() == pytest.approx(0.4 * 0.5 + 0.6 * math.log(2), abs=1e-6)
    assert total_loss(torch.tensor(1.0), torch.tensor(2.0)).item() == pytest.approx(0.3 * 1.0 + 0.7 * 2.0)


def test_slice_channels_distance_map_by_hand():
    lungs = np.zeros((1, 7, 7), np.uint8)
    lungs[0, 1:6, 1:6] = 1  # a 5x5 lung: rings at distance 1, 2 and the centre at 3 from the outside
    hu = np.full((1, 7, 7), -1200.0, np.float32)
    hu[0, 3, 3] = 600.0
    channels, rows = slice_channels(hu, lungs, (1.0, 1.0), {"input_size": 7})
    assert rows.tolist() == [0] and channels.shape == (1, 3, 7, 7)
    raw, lung_image, distance = channels[0]
    assert raw[3, 3] == 1.0 and raw[0, 0] == 0.0  # HU window -1200..600 mapped to 0..1
    assert distance[0, 0] == 0 and distance[1, 1] == pytest.approx(1 / 3) and distance[2, 3] == pytest.approx(2 / 3)
    assert distance[3, 3] == pytest.approx(1.0)
    assert lung_image[3, 3] == 1.0 and np.all(lung_image[lungs[0] == 0] == 0)


def test_slice_channels_on_the_lung_box_crop_a_14mm_ct_and_keep_its_distances():
    """At the canonical 1.4 mm the box is a plain crop: the same 5x5 lung and hand values as above,
    wherever the lung sits in a larger field of view."""
    lungs = np.zeros((1, 40, 50), np.uint8)
    lungs[0, 11:16, 31:36] = 1
    hu = np.full((1, 40, 50), -1200.0, np.float32)
    hu[0, 13, 33] = 600.0
    channels, rows = slice_channels(hu, lungs, (1.4, 1.4), {"geometry": "lung_box", "box_shape": [16, 20]})
    assert rows.tolist() == [0] and channels.shape == (1, 3, 16, 20)
    raw, lung_image, distance = channels[0]
    centre = np.unravel_index(np.argmax(lung_image), lung_image.shape)
    assert raw[centre] == 1.0 and distance[centre] == pytest.approx(1.0)
    ring = (centre[0] - 1, centre[1])
    assert distance[ring] == pytest.approx(2 / 3) and lung_image.astype(bool).sum() == 1  # only the 600 HU pixel is non-zero
    assert (distance > 0).sum() == 25 and raw.min() == 0.0  # the lung, and air (-1200 HU) around it


def test_slices_without_enough_lung_are_left_out():
    lungs = np.zeros((2, 7, 7), np.uint8)
    lungs[1, 1:6, 1:6] = 2
    lungs[0, 3, 3] = 1  # one pixel: not a lung slice
    _, rows = slice_channels(np.zeros((2, 7, 7), np.float32), lungs, (1.0, 1.0), {"input_size": 7})
    assert rows.tolist() == [1]


def test_ablations_replace_channels_as_table1():
    channels = np.stack([np.full((2, 2), v, np.float32) for v in (1, 2, 3)])[None]  # raw 1, lung 2, distance 3
    first = {name: apply_ablation(channels, name)[0, :, 0, 0].tolist() for name in ("none", "rir", "dmr", "lmr")}
    assert first == {"none": [1, 2, 3], "rir": [2, 2, 3], "dmr": [1, 2, 2], "lmr": [1, 1, 1]}
    with pytest.raises(InputError):
        apply_ablation(channels, "no-such")


def test_study_inputs_number_slices_by_file_index():
    hu = np.full((3, 8, 8), -800.0, np.float32)
    labels = np.zeros((3, 8, 8), np.uint8)
    labels[2, 1:7, 1:7] = 1
    ct, lungs = sitk.GetImageFromArray(hu), sitk.GetImageFromArray(labels)
    for image in (ct, lungs):  # a z-flipped file: canonical order reverses the slices
        image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    inputs = study_inputs(ct, lungs, {"input_size": 8})
    assert inputs.slice_numbers.tolist() == [2] and inputs.channels.shape == (1, 3, 8, 8)
    with pytest.raises(InputError, match="no lung"):
        study_inputs(ct, sitk.GetImageFromArray(np.zeros((3, 8, 8), np.uint8)), {"input_size": 8})


def test_network_shapes_and_unit_norm():
    model = build_model("ducn", {"widen_factor": 0.25}).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = model(detect=x, recommend=x[:1])
    assert out.detection_embedding.shape == (2, 128) and out.recommendation_embedding.shape == (1, 128)
    assert out.detection_logits.shape == (2, 2)
    norms = torch.cat([out.detection_embedding, out.recommendation_embedding]).norm(dim=1)
    assert torch.allclose(norms, torch.ones(3), atol=1e-5)
    with torch.no_grad():
        only = model(recommend=x)
    assert only.detection_embedding is None and only.recommendation_embedding.shape == (2, 128)


def test_shared_levels_get_gradients_from_both_children():
    model = build_ducn("ducn", {"widen_factor": 0.25})
    x = torch.rand(2, 3, 64, 64)
    shared = model.shared[0].weight
    for child, field in (("detection", "detection_logits"), ("recommendation", "recommendation_embedding")):
        model.zero_grad(set_to_none=True)
        out = model(**{"detect" if child == "detection" else "recommend": x})
        getattr(out, field).square().sum().backward()
        other = model.recommendation if child == "detection" else model.detection
        assert shared.grad is not None and shared.grad.abs().sum() > 0, child
        assert all(p.grad is None for p in other.parameters()), child


def test_imagenet_init_fills_shared_and_both_children(tmp_path):
    from monai.networks.nets import resnet18

    reference = resnet18(spatial_dims=2, n_input_channels=3, num_classes=1000, conv1_t_stride=2,
                         bias_downsample=False)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = DuCN(1.0)
    copied = load_imagenet_init(model, path)
    assert copied > 100
    assert torch.equal(model.shared[0].weight, reference.conv1.weight)
    for child in (model.detection, model.recommendation):
        assert torch.equal(child[0][0].conv1.weight, reference.layer3[0].conv1.weight)
    assert not torch.equal(model.detection[-1].weight[:1], reference.fc.weight[:1, :512])  # 1000-way fc not copied
    with pytest.raises(InputError):
        load_imagenet_init(build_ducn("ducn", {"widen_factor": 0.25}), path)


@pytest.mark.slow
def test_cpu_training_smoke_run_lowers_the_loss(phantom_dir, tmp_path):
    from covidweak.datasets import open_dataset
    from covidweak.training.config import build_config
    from covidweak.training.loop import fit
    from covidweak.training.runs import RunFolder
    from covidweak.training.task import TaskData
    from covidweak.training.tasks import get_task

    task = get_task("ducn")
    config = build_config(task, None, ["epochs=4", "batch_size=4", "params.samples_per_epoch=8", "optim.name=adam",
                                       "optim.lr=0.001", "model.widen_factor=0.25", "preprocess.input_size=32"])
    records = open_dataset(phantom_dir)
    # Training and validation on the same studies: the smoke run checks that the loss can be fitted.
    task.prepare(TaskData(splits={"train": records, "val": records}), config)
    folder = RunFolder(tmp_path / "run")
    folder.prepare(resume=False)
    torch.manual_seed(0)
    result = fit(task, config, folder, torch.device("cpu"))
    losses = [epoch["loss"] for epoch in result.history]
    assert losses[-1] < losses[0]
    assert 0 <= result.history[-1]["study_accuracy"] <= 1


def test_triplet_sampler_follows_the_paper():
    from covidweak.training.tasks.ducn import SlicePool

    # Six patients, two slices each: covid 0, 1, 2; cap 3, 4; normal 5. Slice 1 of every patient shows a lesion.
    patient = np.repeat(np.arange(6), 2)
    diagnosis = np.array(["covid"] * 6 + ["cap"] * 4 + ["normal"] * 2)
    lesion = np.tile([False, True], 6)
    pool = SlicePool(np.zeros((12, 3, 4, 4), np.float16), patient, patient, diagnosis, lesion)
    rows = pool.draw(np.random.default_rng(0), 200, "any", "test", lesion_slices_only=True)
    a, p, n, ra, rp, rn = rows.T
    assert np.all(diagnosis[a] == "covid") and np.all(diagnosis[p] == "covid") and np.all(diagnosis[n] != "covid")
    assert np.all(patient[a] != patient[p])
    assert np.all(lesion[a] & lesion[p]) and np.all(lesion[n] | (diagnosis[n] == "normal"))
    assert np.all(patient[ra] == patient[rp]) and np.all(ra != rp)
    assert np.all(patient[ra] != patient[rn]) and np.all(diagnosis[ra] == diagnosis[rn])
    assert set(diagnosis[ra]) == {"covid", "cap"}  # normal has one patient: no negative of the same diagnosis
    covid_only = pool.draw(np.random.default_rng(0), 50, "covid", "test")
    assert np.all(diagnosis[covid_only[:, 3]] == "covid")


def test_similar_lesion_triplets_pair_other_patients_by_their_lesion_tables():
    from covidweak.training.tasks.ducn import SlicePool

    # Four one-study patients of two slices: covid 0, 1 alike (0.9), cap 2, normal 3; slice 1 shows the lesion.
    patient = np.repeat(np.arange(4), 2)
    diagnosis = np.array(["covid"] * 4 + ["cap"] * 2 + ["normal"] * 2)
    lesion = np.tile([False, True], 4)
    similarity = np.array([[1, .9, .2, .1], [.9, 1, .3, .1], [.2, .3, 1, .1], [.1, .1, .1, 1]])
    pool = SlicePool(np.zeros((8, 3, 4, 4), np.float16), patient, patient, diagnosis, lesion, similarity)
    rows = pool.draw(np.random.default_rng(0), 300, "any", "test", lesion_slices_only=True, scr_positive="similar_lesions")
    ra, rp, rn = rows[:, 3:].T
    assert np.all(patient[ra] != patient[rp]) and np.all(patient[ra] != patient[rn])
    assert np.all(similarity[patient[ra], patient[rp]] >= similarity[patient[ra], patient[rn]])
    covid = patient[ra] < 2
    assert np.all(patient[rp][covid] == 1 - patient[ra][covid])  # the other covid patient is the only close one
    # Studies with lesions offer their lesion slices; the normal study offers both of its slices.
    shown = lesion | (diagnosis == "normal")
    assert np.all(shown[ra]) and np.all(shown[rp]) and np.all(shown[rn]) and set(ra[patient[ra] == 3]) == {6, 7}
    with pytest.raises(InputError, match="lesion tables"):
        SlicePool(np.zeros((8, 3, 4, 4), np.float16), patient, patient, diagnosis, lesion).draw(
            np.random.default_rng(0), 4, "any", "test", scr_positive="similar_lesions")
