"""Hu et al. lesion boxes: post-processing on hand-made maps, IG mechanics on a random-init model."""

from __future__ import annotations

import numpy as np
import pytest

from covidweak.errors import ModelError
from covidweak.models import load_weights
from covidweak.weakseg.saliency import IG_STEPS, joint_saliency, lesion_boxes, merge_slices, slice_boxes
from weakseg_fixtures import INPUT_SIZE, synthetic_ct, weight_file


def test_a_box_is_found_where_the_blob_is():
    rng = np.random.default_rng(0)
    saliency = rng.normal(0, 0.01, (64, 64))
    saliency[20:30, 40:52] = -1.0  # the sign is ignored
    boxes = slice_boxes(saliency, min_area_px=20)
    assert len(boxes) == 1
    box = boxes[0]
    assert abs(box["row_min"] - 20) <= 2 and abs(box["row_max"] - 29) <= 2
    assert abs(box["col_min"] - 40) <= 2 and abs(box["col_max"] - 51) <= 2


def test_small_specks_and_pixels_outside_the_lung_give_no_box():
    saliency = np.zeros((64, 64))
    saliency[10:12, 10:12] = 1.0
    saliency[40:50, 40:50] = 1.0
    lung = np.zeros((64, 64), dtype=bool)
    lung[:32] = True
    assert slice_boxes(saliency, lung, min_area_px=20) == []
    assert len(slice_boxes(saliency, None, min_area_px=20)) == 1
    assert slice_boxes(np.zeros((8, 8))) == []


def test_overlapping_boxes_of_adjacent_slices_merge_into_one_3d_box():
    box = {"row_min": 10, "col_min": 10, "row_max": 20, "col_max": 20, "peak": 1.0}
    shifted = {**box, "row_min": 18, "row_max": 30, "peak": 2.0}
    far = {**box, "col_min": 40, "col_max": 50}
    merged = merge_slices({3: [box, far], 4: [shifted], 6: [box]})
    spans = sorted((m["slice_min"], m["slice_max"], m["row_max"], m["peak"]) for m in merged)
    assert spans == [(3, 3, 20, 1.0), (3, 4, 30, 2.0), (6, 6, 20, 1.0)]


@pytest.fixture(scope="module")
def mscam(tmp_path_factory):
    return load_weights(weight_file(tmp_path_factory.mktemp("w"), "mscam"), method="mscam")


def test_joint_saliency_has_the_input_size(mscam):
    stacks = np.random.default_rng(1).random((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    saliency = joint_saliency(mscam.model, stacks, steps=IG_STEPS)
    assert saliency.shape == (1, INPUT_SIZE, INPUT_SIZE) and np.isfinite(saliency).all() and saliency.any()


def test_lesion_boxes_lie_inside_the_ct(mscam):
    ct, lungs = synthetic_ct(lung_slices=(6, 16))  # 40 mm of lung: a chest's share of its 72 mm body
    boxes = lesion_boxes(ct, mscam, lungs, steps=4, device="cpu", min_area_mm2=1.0)
    assert boxes, "a random network still has a thresholdable saliency"
    low = np.array(ct.TransformIndexToPhysicalPoint((0, 0, 0))) * [-1, -1, 1]
    high = np.array(ct.TransformIndexToPhysicalPoint([s - 1 for s in ct.GetSize()])) * [-1, -1, 1]
    bounds = np.sort([low, high], axis=0) + [[-3], [3]]
    for box in boxes:
        assert set(box) == {"ras_min", "ras_max", "centre", "size", "k_min", "k_max", "score"}
        assert np.all(np.array(box["ras_min"]) >= bounds[0]) and np.all(np.array(box["ras_max"]) <= bounds[1])
        assert 6 <= box["k_min"] <= box["k_max"] < 16 and 0 < box["score"] <= 1


def test_lesion_boxes_need_a_multiscale_cam(tmp_path):
    ct, lungs = synthetic_ct()
    with pytest.raises(ModelError, match="mscam"):
        lesion_boxes(ct, load_weights(weight_file(tmp_path, "cam"), method="cam"), lungs, device="cpu")
