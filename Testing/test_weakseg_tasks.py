"""The six lesion segmentation training tasks on a small phantom at 64x64: data, steps, validation, a short run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from covidweak.losses import make_bags
from covidweak.training.task import TaskData
from covidweak.training.tasks.weakseg import (
    CamPretrainTask,
    MSeamNamTask,
    MultiScaleCamTask,
    SeamNamTask,
    SeamTask,
    UNetTask,
)
from covidweak.training.tasks.weakseg_data import bag_samples, slice_samples
from weakseg_fixtures import recorded_short_run

TASKS = (CamPretrainTask, SeamTask, SeamNamTask, MSeamNamTask, MultiScaleCamTask, UNetTask)
SIZE = 64


def config_for(task, batch_size: int = 8, **params) -> dict:
    """The task's defaults at 64x64 with the framework's batch size; ``params`` override."""
    defaults = task.defaults
    return {"batch_size": batch_size, "model": defaults["model"], "params": {**defaults["params"], **params},
            "preprocess": {**defaults["preprocess"], "input_size": SIZE}}


@pytest.fixture(scope="module")
def task_data(phantom_dir):
    """Train on every study but one per patient class; validate on a positive and a negative study."""
    from covidweak.datasets.phantom import read_phantom

    records = read_phantom(phantom_dir)
    val = [next(r for r in records if r.diagnosis == "covid" and r.study_index == 1),
           next(r for r in records if r.diagnosis == "normal" and r.study_index == 1)]
    train = [r for r in records if r not in val]
    return TaskData(splits={"train": train, "val": val})


@pytest.fixture(scope="module")
def prepared(task_data):
    """One prepared task per class (data read once per module)."""
    tasks = {}
    for cls in TASKS:
        task = cls()
        task.prepare(task_data, config_for(task))
        tasks[cls] = task
    return tasks


def test_single_slice_samples_use_known_labels_only(prepared):
    studies = prepared[SeamTask].train_set
    positives, negatives = slice_samples(studies)
    assert positives and negatives
    for s, (k,), label in positives:
        assert label == 1 and studies[s].labels[k] == "positive"
    for s, (k,), label in negatives:
        assert label == 0 and studies[s].negative and studies[s].labels[k] == "negative"
    unknown = sum(label == "unknown" for study in studies for label in study.labels)
    assert unknown > 0 and len(positives) + len(negatives) == sum(len(s.labels) for s in studies) - unknown


def test_bags_follow_the_papers_rules(prepared):
    studies = prepared[MSeamNamTask].train_set
    positives, negatives = bag_samples(studies)
    assert positives and negatives
    for s, bag, label in positives:
        labels = [studies[s].labels[k] for k in bag]
        assert label == 1 and not studies[s].negative
        assert list(bag) == list(range(bag[0], bag[0] + 8))
        assert labels[0] == "positive" and set(labels[1:]) <= {"positive", "unknown"}
    for s, bag, label in negatives:
        assert label == 0 and studies[s].negative and list(bag) == list(range(bag[0], bag[0] + 8))
        assert all(studies[s].labels[k] == "negative" for k in bag)
    expected = sum(len(make_bags(study.labels, study.negative)) for study in studies)
    assert len(positives) + len(negatives) == expected


def test_epochs_are_balanced_and_fixed_by_seed_and_epoch(prepared):
    task = prepared[SeamTask]
    config = config_for(task, augment=True)
    first = task.train_batches(config, epoch=1, seed=3)
    again = task.train_batches(config, epoch=1, seed=3)
    other = task.train_batches(config, epoch=2, seed=3)
    assert all(torch.equal(a["x"], b["x"]) for a, b in zip(first, again))
    assert not torch.equal(first[0]["x"], other[0]["x"])
    labels = torch.cat([b["y"] for b in first])
    # Sect. 3.1: as many negative slices as positive ones.
    assert labels.sum() * 2 == len(labels)
    assert all(0.0 <= float(b["x"].min()) and float(b["x"].max()) <= 1.0 for b in first)


def test_epoch_samples_caps_an_epoch_at_a_random_subset(prepared):
    task = prepared[MSeamNamTask]
    full = task.train_batches(config_for(task, batch_size=16), epoch=0, seed=0)
    capped = task.train_batches(config_for(task, batch_size=16, epoch_samples=3), epoch=0, seed=0)
    assert sum(len(b["y"]) for b in full) > 3 and sum(len(b["y"]) for b in capped) == 3


def test_bag_batches_keep_bags_whole(prepared):
    task = prepared[MSeamNamTask]
    batch = task.train_batches(config_for(task, batch_size=16), epoch=0, seed=0)[0]
    assert batch["x"].shape == (2, 8, 3, SIZE, SIZE) and batch["y"].shape == (2, 1)


def test_unet_batches_carry_sparse_masks(prepared):
    task = prepared[UNetTask]
    for batch in task.train_batches(config_for(task, augment=False), epoch=0, seed=0):
        lesion = batch["mask"].flatten(1).amax(dim=1)
        assert batch["mask"].shape == (len(batch["y"]), 1, SIZE, SIZE)
        assert torch.all(lesion[batch["y"][:, 0] == 0] == 0)  # negative slices: empty masks
        assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("cls", TASKS, ids=lambda cls: cls.name)
def test_training_step_gives_finite_loss_and_gradients_everywhere(prepared, cls):
    """Every trainable parameter gets a nonzero gradient.

    SEAM's PCM reads C, B4 and B5 detached (see :mod:`covidweak.models.seam`): the PCM's own
    convolutions learn from L_ER / L_ECR through D only and the backbone from the C terms only,
    but no parameter is left without a gradient, so there are no exceptions to allow. The batch
    holds a positive sample: normalised L_ER / L_ECR ignore negative images, so a batch that is one
    negative bag gives the PCM nothing to learn, by design.
    """
    task = prepared[cls]
    config = config_for(task)
    torch.manual_seed(0)
    model = task.build_model(config).train()
    batch = next(b for b in task.train_batches(config, epoch=0, seed=0) if b["y"].any())
    outputs = task.training_step(model, batch, config, torch.device("cpu"))
    assert outputs["loss"].ndim == 0 and torch.isfinite(outputs["loss"])
    outputs["loss"].backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name


def test_validate_reports_patient_dice(prepared):
    task = prepared[CamPretrainTask]
    torch.manual_seed(0)
    metrics = task.validate(task.build_model(config_for(task)), config_for(task), torch.device("cpu"))
    assert task.selection_metric == "val_dice_all" and task.higher_is_better
    assert metrics["val_positive_patients"] == 1 and metrics["val_negative_patients"] == 1
    for key in ("val_dice", "val_dice_negative", "val_dice_all"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["val_dice_negative"] in (0.0, 1.0)  # Table 1: 1 if nothing is segmented, else 0


def test_export_spec_carries_the_preprocessing(prepared):
    for cls, method in zip(TASKS, ("cam", "seam", "seamnam", "mseamnam", "mscam", "unet")):
        spec = prepared[cls].export_spec(config_for(prepared[cls]))
        assert spec.method == method and spec.arch["backbone"] == "light"
        assert spec.preprocess["input_size"] == SIZE and spec.preprocess["stack_depth"] == 3


def test_mseamnam_initialises_from_cam_pretraining(tmp_path, prepared):
    from covidweak.models import save_weights

    cam_task = prepared[CamPretrainTask]
    cam = cam_task.build_model(config_for(cam_task))
    spec = cam_task.export_spec(config_for(cam_task))
    path = tmp_path / "cam.pt"
    save_weights(path, cam, spec.method, spec.arch, spec.preprocess)
    task = prepared[MSeamNamTask]
    model = task.build_model(config_for(task, init_from=str(path)))
    for key, value in cam.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    # a CAM continued on other patients starts from the same weights, head included
    torch.manual_seed(1)
    again = cam_task.build_model(config_for(cam_task, init_from=str(path)))
    for key, value in cam.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_thirty_step_cpu_run_lowers_mseamnam_loss(tmp_path, prepared):
    """30 updates of one bag each through the framework's loop; the smoothed loss goes down."""
    from covidweak.training.config import build_config

    task = prepared[MSeamNamTask]
    overrides = ["epochs=1", "max_steps=30", "batch_size=8", "accumulate=1", "optim.name=adam", "optim.lr=0.001",
                 f"preprocess.input_size={SIZE}", "params.augment=false", "log_every=10"]
    config = build_config(task, overrides=overrides)
    result, losses = recorded_short_run(task, config, tmp_path / "run")
    assert result.step == 30 and len(losses) == 30 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert "val_dice" in result.history[-1]
