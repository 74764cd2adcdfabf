"""covidweak.lungs.learned: what the CT lung network may add to the classical mask, and its task."""

import numpy as np
import pytest

from covidweak.lungs.learned import NET_SIZE, body_box, network_input, network_labels, predict_labels, restore_dense_lung
from covidweak.lungs.select import LEFT, RIGHT


def test_only_thick_tall_dense_regions_connected_to_the_same_lung_are_added():
    filled = np.zeros((4, 28, 40), np.uint8)
    filled[:, 2:16, 2:10] = RIGHT
    filled[:, 2:16, 30:38] = LEFT
    predicted = filled.copy()
    predicted[:, 4:14, 10:18] = RIGHT  # consolidation 8 voxels (16 mm) thick beside the right lung, 4 slices tall
    predicted[:, 2:16, 28:30] = LEFT  # a 2-voxel rim along the left lung: the network's blurred edge
    predicted[:, 22:28, 20:26] = RIGHT  # a blob apart from the right lung
    predicted[2, 16:24, 2:10] = RIGHT  # below the right lung in one slice only (MIN_SLICES)
    dense = np.ones_like(filled, dtype=bool)
    dense[1, 8, 12] = False  # aerated: the classical air boundary is not the network's to move
    out = restore_dense_lung(filled, predicted, dense, np.ones_like(dense))
    added = out != filled
    assert added[:, 4:14, 10:18].sum() > 250 and (out[added] == RIGHT).all()
    assert out[1, 8, 12] == 0 and not added[:, 2:16, 28:30].any() and not added[:, 22:28, 20:26].any()
    assert not added[2, 16:24, 2:10].any()
    assert np.array_equal(out[filled > 0], filled[filled > 0]), "the classical labels stay"


def test_nothing_is_added_outside_the_room_or_against_the_labels():
    filled = np.zeros((3, 20, 24), np.uint8)
    filled[:, 2:18, 2:8] = RIGHT
    predicted = np.zeros_like(filled)
    predicted[:, 2:18, 8:16] = LEFT  # the network calls the bay left lung: it touches only the right one
    out = restore_dense_lung(filled, predicted, np.ones(filled.shape, bool), np.ones(filled.shape, bool))
    assert np.array_equal(out, filled)
    predicted[:, 2:18, 8:16] = RIGHT
    assert (restore_dense_lung(filled, predicted, np.ones(filled.shape, bool), np.ones(filled.shape, bool)) == RIGHT).sum() \
        > (filled == RIGHT).sum()
    room = np.ones(filled.shape, bool)
    room[:, :, 8:16] = False  # the airway, outside the rib cage or outside the body
    assert np.array_equal(restore_dense_lung(filled, predicted, np.ones(filled.shape, bool), room), filled)


def test_the_input_is_the_body_box_windowed_and_resized_and_the_labels_come_back_on_the_grid():
    torch = pytest.importorskip("torch")
    hu = np.full((3, 40, 60), -1000.0, np.float32)
    body = np.zeros(hu.shape, bool)
    body[:, 5:35, 10:50] = True
    hu[body] = 40.0
    assert body_box(body) == (slice(5, 35), slice(10, 50))
    x = network_input(hu, body_box(body))
    assert x.shape == (3, 1, NET_SIZE, NET_SIZE) and x.min() >= 0.0 and x.max() <= 1.0
    labels = np.zeros(hu.shape, np.uint8)
    labels[:, 10:30, 15:25] = RIGHT
    assert set(np.unique(network_labels(labels, body_box(body)))) == {0, RIGHT}

    class LeftEverywhere(torch.nn.Module):
        def forward(self, x):
            logits = torch.zeros(x.shape[0], 3, *x.shape[2:])
            logits[:, LEFT] = 1.0
            return logits

    out = predict_labels(LeftEverywhere(), hu, body)
    assert out.shape == hu.shape and (out[body] == LEFT).all() and (out[~body] == 0).all()


@pytest.mark.slow
def test_the_ct_lungs_task_trains_and_its_file_loads_for_the_lung_step(phantom_dir, tmp_path):
    import SimpleITK as sitk

    from covidweak.lungs import segment_lungs
    from covidweak.lungs.learned import learned_fill
    from covidweak.models import load_weights
    from covidweak.training.export import export_run
    from covidweak.training.runs import read_metrics
    from covidweak.training.session import train

    train("ct-lungs", phantom_dir, tmp_path / "run", config_file="ct-lungs.demo", device="cpu",
          overrides=["data.fractions=[0.75, 0.25, 0.0]"])
    dice = [r["value"] for r in read_metrics(tmp_path / "run/metrics.csv") if r["metric"] == "dice"]
    assert dice and all(0.0 <= d <= 1.0 for d in dice)
    entry = export_run(tmp_path / "run", "ct-lungs-test", folder=tmp_path / "models")
    loaded = load_weights(tmp_path / "models" / entry["file"], method="ct-lungs")
    assert loaded.preprocess["input_size"] == NET_SIZE
    model = loaded.model.eval()
    classical = segment_lungs(sitk.ReadImage(str(next(phantom_dir.glob("*/ct.nii.gz")))), learned=False)
    labels = sitk.GetArrayFromImage(classical)
    same = learned_fill(labels, np.full(labels.shape, -900.0), labels > 0, labels > 0, -400.0, model=model)
    assert np.array_equal(same, labels), "on air alone the network step adds nothing"
