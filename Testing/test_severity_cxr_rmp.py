"""Kim et al.'s ROI max pooling, lung split, zone lines and preprocessing, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from covidweak.errors import InputError
from covidweak.severity import cxr_preprocess, cxr_rmp
from covidweak.severity.cxr_infer import check_frontal_lungs


def two_lungs() -> np.ndarray:
    """13 x 10 mask: a right lung rows 0-12, cols 1-3 (touching the top border); a left lung rows 2-7, cols 6-8."""
    mask = np.zeros((13, 10), dtype=np.uint8)
    mask[0:13, 1:4] = 1
    mask[2:8, 6:9] = 1
    return mask


def test_split_lungs_by_components_right_is_image_left():
    lungs = cxr_rmp.split_lungs(two_lungs())
    assert set(np.unique(lungs[:, 1:4][two_lungs()[:, 1:4] > 0])) == {1}
    assert set(np.unique(lungs[2:8, 6:9])) == {2}
    assert lungs.sum() == 39 * 1 + 18 * 2


def test_split_lungs_sends_an_island_to_the_nearer_lung_and_keeps_a_single_lung_on_its_side():
    mask = two_lungs()
    mask[11, 8] = 1  # an island below the left lung
    assert cxr_rmp.split_lungs(mask)[11, 8] == 2
    single = np.zeros((13, 10), dtype=np.uint8)
    single[2:8, 6:9] = 1
    assert set(np.unique(cxr_rmp.split_lungs(single))) == {0, 2}
    assert not cxr_rmp.split_lungs(np.zeros((5, 5))).any()


def test_zone_lines_at_5_12_and_2_3_of_each_lung_height():
    lines = cxr_rmp.zone_lines(cxr_rmp.split_lungs(two_lungs()))
    # right lung rows 0..12: 0 + 5/12 * 12 = 5, 0 + 2/3 * 12 = 8; left lung rows 2..7: 2 + 5/12 * 5, 2 + 2/3 * 5.
    assert [(l["lung"], l["col_start"], l["col_end"]) for l in lines] == [("right", 1, 3)] * 2 + [("left", 6, 8)] * 2
    assert [l["row"] for l in lines] == pytest.approx([5.0, 8.0, 2 + 25 / 12, 2 + 10 / 3])
    assert [l["fraction"] for l in lines] == [0.41667, 0.66667, 0.41667, 0.66667]


def test_rmp_takes_the_maximum_of_each_zone():
    lungs = cxr_rmp.split_lungs(two_lungs())
    probability = np.zeros(lungs.shape, dtype=np.float32)
    probability[4, 2] = 0.3   # right lung, row 4 < line 5: upper
    probability[5, 1] = 0.9   # right lung, row 5 on the line: middle
    probability[5, 3] = 0.4   # right middle, smaller
    probability[12, 1] = 0.7  # right lower
    probability[4, 7] = 0.5   # left lung, row 4 < 2 + 25/12: upper
    probability[5, 7] = 0.6   # left lung, row 5 >= 2 + 25/12: middle
    probability[6, 8] = 0.2   # left lower (row 6 >= 2 + 10/3)
    probability[0, 9] = 1.0   # outside the lungs: ignored
    expected = np.array([[0.3, 0.5], [0.9, 0.6], [0.7, 0.2]])
    np.testing.assert_allclose(cxr_rmp.severity_from_map(probability, lungs), expected, atol=1e-6)
    assert cxr_rmp.binarise(expected).tolist() == [[0, 1], [1, 1], [1, 0]]
    assert cxr_rmp.global_score(expected) == 4


def test_rmp_on_a_lung_touching_the_border_and_a_single_lung():
    lungs = np.zeros((6, 6), dtype=np.uint8)
    lungs[:, 3:] = 2  # one left lung filling the image's right half, touching three borders
    probability = np.tile(np.linspace(0.0, 1.0, 6, dtype=np.float32)[:, None], (1, 6))
    # Rows 0..5: depth row/5; upper rows 0-2 (depth < 5/12), middle row 3 (depth 0.6), lower rows 4-5.
    np.testing.assert_allclose(cxr_rmp.severity_from_map(probability, lungs), [[0, 0.4], [0, 0.6], [0, 1.0]],
                               atol=1e-6)


def test_rmp_gradient_reaches_only_each_zone_maximum():
    lungs = cxr_rmp.split_lungs(two_lungs())
    probability = torch.full(lungs.shape, 0.1, requires_grad=True)
    with torch.no_grad():
        probability[12, 2] = 0.8
    regions = torch.from_numpy(cxr_rmp.region_masks(lungs))[None]
    array = cxr_rmp.roi_max_pool(probability[None], regions)[0]
    array[2, 0].backward()
    assert probability.grad[12, 2] == 1 and probability.grad.sum() == 1


def test_preprocessing_blur_is_3x3_and_output_is_standardised():
    delta = np.zeros((9, 9), dtype=np.float32)
    delta[4, 4] = 1
    blurred = cxr_preprocess.gaussian_blur_3x3(delta)
    assert np.count_nonzero(blurred) == 9 and blurred.sum() == pytest.approx(1.0)
    assert blurred[4, 4] > blurred[4, 5] > blurred[3, 5] > 0
    image = np.arange(114 * 128, dtype=np.float32).reshape(114, 128) ** 0.5
    out = cxr_preprocess.preprocess_cxr(image, 64)
    assert out.shape == (64, 64) and out.dtype == np.float32
    assert out.mean() == pytest.approx(0, abs=1e-5) and out.std() == pytest.approx(1, abs=1e-4)
    assert np.all(np.diff(out[:, 32]) >= 0)  # equalisation keeps the grey-level order


def test_frontal_check_refuses_missing_lungs():
    lungs = np.zeros((100, 100), dtype=np.uint8)
    with pytest.raises(InputError, match="no lungs found"):
        check_frontal_lungs(lungs)
    lungs[20:80, 60:90] = 2
    with pytest.raises(InputError, match="only the left lung"):
        check_frontal_lungs(lungs)
    lungs[20:80, 10:59] = 1  # touching the left lung: no mediastinum
    with pytest.raises(InputError, match="lateral view"):
        check_frontal_lungs(lungs)
    lungs[:, 40:59] = 0  # a 20-pixel mediastinum
    check_frontal_lungs(lungs)


def test_severity_metrics_by_hand():
    from covidweak.severity.cxr_evaluate import severity_metrics

    truth = np.array([[[1, 0], [0, 0], [0, 0]], [[0, 0], [0, 0], [0, 0]], [[1, 1], [1, 0], [0, 0]]])
    predicted = np.array([[[0.9, 0.1], [0.2, 0.1], [0.1, 0.1]],   # score 1, true 1
                          [[0.6, 0.1], [0.5, 0.1], [0.1, 0.1]],   # score 2, true 0
                          [[0.8, 0.7], [0.4, 0.1], [0.1, 0.1]]])  # score 2, true 3
    metrics = severity_metrics(predicted, truth)
    assert metrics["mse"] == pytest.approx(5 / 3) and metrics["mae"] == pytest.approx(1.0)
    assert metrics["cc"] == pytest.approx(3 / np.sqrt(6 * 42))  # scores (1, 2, 2) against (1, 0, 3)
    assert metrics["r2"] == pytest.approx(1 - 5 / (42 / 9))
    # Zones with both classes: right upper AUC 1, left upper 1, right middle 0.5; the other three left out.
    assert metrics["mean_auc"] == pytest.approx(2.5 / 3) and metrics["auc_zones"] == 3
