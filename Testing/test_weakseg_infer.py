"""segment_ct: geometry, lung-only slices, batching, bad inputs, CPU/GPU agreement."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from covidweak.errors import InputError
from covidweak.models import load_weights
from covidweak.weakseg.infer import segment_ct
from weakseg_fixtures import synthetic_ct, weight_file


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_weights(weight_file(tmp_path_factory.mktemp("w")), method="mscam")


def _same_geometry(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing())
            and np.allclose(a.GetOrigin(), b.GetOrigin()) and np.allclose(a.GetDirection(), b.GetDirection()))


def test_outputs_have_the_ct_grid_and_are_zero_outside_the_lungs(model):
    ct, lungs = synthetic_ct()
    result = segment_ct(ct, model, lungs=lungs, t_fg=0.3, device="cpu")
    for image in (result.probability, result.mask, result.lungs):
        assert _same_geometry(image, ct)
    prob = sitk.GetArrayFromImage(result.probability)
    assert prob.dtype == np.float32 and prob.min() >= 0 and prob.max() <= 1
    assert not prob[sitk.GetArrayFromImage(lungs) == 0].any()
    assert prob[sitk.GetArrayFromImage(lungs) > 0].max() > 0
    assert np.array_equal(sitk.GetArrayFromImage(result.mask), (prob > 0.3).astype(np.uint8))
    assert result.summary["t_fg"] == 0.3 and result.summary["method"] == "mscam"


class CountingNet(torch.nn.Module):
    """Passes through to a network and records the batch sizes it was given."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.batches = inner, []

    def forward(self, x):
        self.batches.append(x.shape[0])
        return self.inner(x)


def test_only_lung_slices_run_in_batches_of_the_given_size(model):
    ct, lungs = synthetic_ct(lung_slices=(4, 15))
    counting = CountingNet(model.model)
    wrapped = type(model)(**{**model.__dict__, "model": counting})
    segment_ct(ct, wrapped, lungs=lungs, batch_size=4, device="cpu")
    assert counting.batches == [4, 4, 3]


def test_batch_size_does_not_change_the_map(model):
    ct, lungs = synthetic_ct()
    one = segment_ct(ct, model, lungs=lungs, batch_size=1, device="cpu").probability
    many = segment_ct(ct, model, lungs=lungs, batch_size=16, device="cpu").probability
    np.testing.assert_allclose(sitk.GetArrayFromImage(one), sitk.GetArrayFromImage(many), atol=1e-5)


def test_a_flipped_direction_matrix_gives_the_same_map_in_physical_space(model):
    ct, lungs = synthetic_ct()
    flipped = []
    for image in (ct, lungs):
        array = sitk.GetArrayFromImage(image)[:, :, ::-1].copy()
        out = sitk.GetImageFromArray(array)
        out.SetSpacing(image.GetSpacing())
        out.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))
        out.SetOrigin(image.TransformIndexToPhysicalPoint((image.GetSize()[0] - 1, 0, 0)))
        flipped.append(out)
    straight = sitk.GetArrayFromImage(segment_ct(ct, model, lungs=lungs, device="cpu").probability)
    result = segment_ct(flipped[0], model, lungs=flipped[1], device="cpu")
    assert _same_geometry(result.probability, flipped[0])
    np.testing.assert_allclose(sitk.GetArrayFromImage(result.probability)[:, :, ::-1], straight, atol=1e-5)


def test_a_radiograph_is_refused(model):
    cxr = sitk.GetImageFromArray(np.full((64, 64), -500.0, dtype=np.float32))
    with pytest.raises(InputError, match="3-D chest CT"):
        segment_ct(cxr, model, device="cpu")


def test_all_air_is_refused(model):
    air = sitk.GetImageFromArray(np.full((20, 32, 32), -1000.0, dtype=np.float32))
    with pytest.raises(InputError):
        segment_ct(air, model, device="cpu")


def test_a_ct_without_lungs_is_refused(model):
    ct, lungs = synthetic_ct()
    with pytest.raises(InputError, match="lung mask is empty"):
        segment_ct(ct, model, lungs=lungs * 0, device="cpu")
    solid = sitk.GetImageFromArray(np.where(sitk.GetArrayFromImage(lungs) > 0, 40.0, sitk.GetArrayFromImage(ct)))
    solid.CopyInformation(ct)
    with pytest.raises(InputError, match="lung"):
        segment_ct(solid, model, device="cpu")


def test_a_lung_mask_on_another_grid_is_refused(model):
    ct, lungs = synthetic_ct()
    lungs.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="geometry"):
        segment_ct(ct, model, lungs=lungs, device="cpu")


def test_bad_thresholds_are_refused(model):
    ct, lungs = synthetic_ct()
    with pytest.raises(InputError, match="T_bg <= T_fg"):
        segment_ct(ct, model, lungs=lungs, t_fg=0.01, t_bg=0.1, device="cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["mscam", "mseamnam", "unet"])
def test_gpu_and_cpu_probabilities_agree(tmp_path, method):
    loaded = load_weights(weight_file(tmp_path, method), method=method)
    ct, lungs = synthetic_ct()
    cpu = sitk.GetArrayFromImage(segment_ct(ct, loaded, lungs=lungs, device="cpu").probability)
    gpu = sitk.GetArrayFromImage(segment_ct(ct, loaded, lungs=lungs, device="cuda").probability)
    assert np.abs(cpu - gpu).max() <= 1e-2
