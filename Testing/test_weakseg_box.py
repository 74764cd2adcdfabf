"""Lesion networks on the 1.4 mm lung box: training data, a short CPU run, and inference onto the CT grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from covidweak.training.task import TaskData
from covidweak.training.tasks.weakseg import CamPretrainTask
from covidweak.training.tasks.weakseg_data import slice_samples
from covidweak.weakseg.prepare import LUNG_BOX
from weakseg_fixtures import recorded_short_run

BOX = [48, 64]  # a small box keeps the test fast; the lungs still fit (its spacing grows to hold them)
BOX_PREPROCESS = {"geometry": LUNG_BOX, "box_shape": BOX}
BOX_MODEL = {"backbone": "box", "pooling": "noisy-or"}


@pytest.fixture(scope="module")
def box_task(phantom_dir):
    from covidweak.datasets.phantom import read_phantom

    records = read_phantom(phantom_dir)
    val = [next(r for r in records if r.diagnosis == "covid"), next(r for r in records if r.diagnosis == "normal")]
    task = CamPretrainTask()
    config = {"batch_size": 8, "model": BOX_MODEL, "preprocess": BOX_PREPROCESS}
    task.prepare(TaskData(splits={"train": [r for r in records if r not in val], "val": val}), config)
    return task


def test_studies_are_prepared_on_the_box_with_lungs_kept(box_task):
    study = box_task.train_set[0]
    assert study.stacks.shape[1:] == (3, *BOX) and study.lungs.shape[1:] == tuple(BOX)
    assert study.stacks.max() <= 1.0 and study.stacks.min() >= 0.0
    # Outside the centre slice's lungs every channel of a stack is the constant 0.
    assert (study.stacks[:, 1][~study.lungs] == 0).all()


def test_negatives_come_from_slices_with_lung_only(box_task):
    _, negatives = slice_samples(box_task.train_set)
    assert negatives
    assert all(box_task.train_set[s].lungs[k].any() for s, (k,), _ in negatives)
    without_lung = sum(int((~st.lungs.any(axis=(1, 2))).sum()) for st in box_task.train_set if st.negative)
    assert without_lung > 0  # the phantom has slices above and below the lungs, and they are left out


def test_thirty_step_cpu_run_at_the_box_geometry_lowers_the_loss(tmp_path, box_task):
    from covidweak.training.config import build_config

    overrides = ["epochs=1", "max_steps=30", "batch_size=8", "accumulate=1", "optim.name=adam", "optim.lr=0.001",
                 "model.backbone=box", "model.pooling=noisy-or", "preprocess.geometry=lung_box", f"preprocess.box_shape={BOX}",
                 "params.augment=false", "log_every=10"]
    config = build_config(box_task, overrides=overrides)
    result, losses = recorded_short_run(box_task, config, tmp_path / "run")
    assert result.step == 30 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_box_network_maps_land_on_the_cts_exact_grid(phantom_dir):
    from covidweak.datasets.phantom import read_phantom
    from covidweak.io import read_ct, read_image
    from covidweak.models import build_model
    from covidweak.models.weights import LoadedModel
    from covidweak.weakseg.infer import segment_ct

    record = next(r for r in read_phantom(phantom_dir) if r.diagnosis == "covid")
    ct, lungs = read_ct(record.ct_path), read_image(record.lung_mask_path)
    model = LoadedModel(model=build_model("cam", BOX_MODEL).eval(), method="cam", arch=BOX_MODEL,
                        preprocess={**BOX_PREPROCESS, "hu_window": [-1200.0, 600.0], "stack_depth": 3}, path=None,
                        sha256="")
    with torch.no_grad():
        model.model.cam_head.classifier.bias.fill_(5.0)  # every slice and pixel "lesion": the map shows the box
    result = segment_ct(ct, model, lungs=lungs, device="cpu")
    probability = sitk.GetArrayFromImage(result.probability)
    lung = sitk.GetArrayFromImage(lungs) > 0
    assert result.probability.GetSize() == ct.GetSize() and result.probability.GetOrigin() == ct.GetOrigin()
    assert (probability[~lung] == 0).all()
    assert (probability[lung] > 0.5).all()  # the box covers every lung pixel


def test_augmentation_rotates_the_box_without_shearing():
    """A disc drawn on the non-square box stays a disc of the same area under rotations up to 45 degrees."""
    from covidweak.training.tasks.weakseg_data import Augment, augment

    h, w = 160, 224
    yy, xx = np.mgrid[:h, :w]
    disc = ((yy - h / 2 + 0.5) ** 2 + (xx - w / 2 + 0.5) ** 2 <= 30 ** 2).astype(np.float32)
    x = torch.from_numpy(np.repeat(np.repeat(disc[None, None], 3, axis=1), 8, axis=0))
    spec = Augment(flip=False, shift=0.0, rotate_deg=45.0, zoom=1.0, brightness=0.0, contrast=0.0)
    _, masks = augment(x, x[:, :1].clone(), spec, torch.Generator().manual_seed(0))
    for mask in masks[:, 0].numpy():
        # A sheared disc is an ellipse: the eigenvalues of its pixel covariance would differ
        # (by about 40 % at 30 degrees on this 1.4 aspect ratio).
        eigen = np.linalg.eigvalsh(np.cov(np.stack(np.nonzero(mask)).astype(float)))
        assert eigen[1] / eigen[0] < 1.05
        assert abs(mask.sum() - disc.sum()) / disc.sum() < 0.02
