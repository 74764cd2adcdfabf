"""The radiograph lung box (covidweak.severity.cxr_geometry): one physical scale whatever the matrix."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.errors import InputError
from covidweak.severity.cxr_geometry import map_from_box, network_input, radiograph_box
from covidweak.severity.cxr_preprocess import preprocess_cxr, resize_image

BOX = {"input_size": 96, "geometry": "lung_box"}


@pytest.fixture(scope="module")
def radiograph(phantom_dir):
    from covidweak.datasets.phantom import read_phantom

    record = next(r for r in read_phantom(phantom_dir) if r.diagnosis == "covid")
    image = sitk.ReadImage(str(record.extra["cxr_path"]))
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(record.extra["cxr_lungs_path"]))).astype(np.uint8)
    return sitk.GetArrayFromImage(image).astype(np.float32), lungs, image.GetSpacing()[::-1]


def test_padding_the_field_of_view_leaves_the_box_input_unchanged(radiograph):
    image, lungs, spacing = radiograph
    base, base_lungs, _ = network_input(image, lungs, spacing, BOX)
    pad = ((20, 12), (16, 30))
    wide, wide_lungs, _ = network_input(np.pad(image, pad, constant_values=image.min()), np.pad(lungs, pad), spacing, BOX)
    assert base.shape == (96, 96)
    np.testing.assert_array_equal(wide_lungs, base_lungs)
    np.testing.assert_allclose(wide, base, atol=1e-5)


def test_halving_the_pixel_size_gives_nearly_the_same_box_input(radiograph):
    """A radiograph with twice the pixels over the same field (finer detector) is reduced back to 1.4 mm."""
    image, lungs, spacing = radiograph
    base, base_lungs, base_box = network_input(image, lungs, spacing, BOX)
    fine_image = resize_image(image, (2 * image.shape[0], 2 * image.shape[1]))
    fine_lungs = np.kron(lungs, np.ones((2, 2), dtype=np.uint8))
    fine, fine_lungs_box, fine_box = network_input(fine_image, fine_lungs, tuple(s / 2 for s in spacing), BOX)
    assert fine_box.spacing == pytest.approx(base_box.spacing)
    assert np.mean(fine_lungs_box == base_lungs) > 0.98
    inside = base_lungs > 0
    assert np.corrcoef(fine[inside], base[inside])[0, 1] > 0.95
    # The whole-image resize, by contrast, shows the chest at another scale when the matrix changes.
    assert network_input(image, lungs, spacing, {"input_size": 96})[0].shape == (96, 96)


def test_whole_image_geometry_is_kims_resize(radiograph):
    image, lungs, spacing = radiograph
    out, out_lungs, box = network_input(image, lungs, spacing, {"input_size": 64})
    assert box is None
    np.testing.assert_array_equal(out, preprocess_cxr(image, 64))
    np.testing.assert_array_equal(out_lungs, resize_image(lungs, 64, order=0))


def test_a_box_map_comes_back_on_the_radiograph_grid(radiograph):
    image, lungs, spacing = radiograph
    box = radiograph_box(BOX, lungs, spacing)
    back = map_from_box(np.ones(box.shape, dtype=np.float32), box)
    assert back.shape == image.shape
    assert back[lungs > 0].min() == pytest.approx(1.0)


def test_unknown_geometry_is_refused(radiograph):
    image, lungs, spacing = radiograph
    with pytest.raises(InputError, match="unknown radiograph geometry 'crop'"):
        network_input(image, lungs, spacing, {"input_size": 64, "geometry": "crop"})


def test_box_f_starts_from_the_whole_image_f_and_refuses_another_model_section():
    import torch

    from covidweak.models.weights import load_weights
    from covidweak.training.config import build_config
    from covidweak.training.tasks import get_task

    task = get_task("cxr-embed")
    config = build_config(task, "cxr-embed.box", [])
    assert config["params"]["init_from"] == "cxr-embed-light" and config["preprocess"]["geometry"] == "lung_box"
    started = task.build_model(config).state_dict()
    shipped = load_weights("cxr-embed-light", method="cxr-embed").model.state_dict()
    assert all(torch.equal(started[key], shipped[key].to(started[key].dtype)) for key in shipped)
    with pytest.raises(InputError, match="does not fit model.size"):
        task.build_model(build_config(task, "cxr-embed.box", ["model.size=paper"]))
