"""The attenuation gate, logit offset and size gate of weak-seg weights (covidweak.weakseg.calibration)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.errors import InputError
from covidweak.training.export import calibrated
from covidweak.training.task import ExportSpec
from covidweak.weakseg.calibration import (attenuation_gate, check_hu_floor, check_min_lesion_ml,
                                           chosen_min_lesion_ml, offset_from_validation, operating_offset, size_gate)
from weakseg_fixtures import synthetic_ct, weight_file


def test_the_gate_zeroes_lung_at_or_below_the_floor():
    probability = np.array([[0.9, 0.5], [0.2, 0.7]], dtype=np.float32)
    hu = np.array([[-850.0, -700.0], [-650.0, 20.0]])
    assert attenuation_gate(probability, hu, -700.0).tolist() == [[0.0, 0.0], [pytest.approx(0.2), pytest.approx(0.7)]]
    assert np.array_equal(attenuation_gate(probability, hu, None), probability)


def test_the_offset_moves_the_chosen_threshold_to_the_papers():
    # logit(0.1) - logit(0.0002) = -2.19722 + 8.51699
    assert operating_offset(0.0002, 0.1) == pytest.approx(6.31977, abs=1e-5)
    z = np.linspace(-12.0, 4.0, 1601)
    offset = operating_offset(0.0002, 0.1)

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    assert np.array_equal(sigmoid(z + offset) > 0.1, sigmoid(z) > 0.0002)
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        operating_offset(0.0, 0.1)


def test_floors_outside_air_to_water_are_refused():
    check_hu_floor(None)
    check_hu_floor(-700)
    for bad in (100.0, -1500.0, math.nan, "low"):
        with pytest.raises(InputError, match="outside -1000..0 HU"):
            check_hu_floor(bad)


def test_the_size_gate_zeroes_regions_above_t_smaller_than_the_volume():
    probability = np.zeros((2, 4, 6), dtype=np.float32)
    probability[0, 0, 0] = 0.9  # 1 voxel: 2 mm^3 = 0.002 mL
    probability[:, 2:4, 2:5] = 0.5  # 12 voxels = 0.024 mL
    probability[1, 0, 5] = 0.05  # below t: never a region, kept as it is
    spacing = (2.0, 1.0, 1.0)  # mm (z, y, x): 2 mm^3 per voxel
    gated = size_gate(probability, spacing, 0.01, t=0.1)
    assert gated[0, 0, 0] == 0.0 and np.all(gated[:, 2:4, 2:5] == 0.5) and gated[1, 0, 5] == pytest.approx(0.05)
    assert np.all(size_gate(probability, spacing, 0.03, t=0.1)[:, 2:4, 2:5] == 0.0)
    assert np.array_equal(size_gate(probability, spacing, None, t=0.1), probability)
    assert np.array_equal(size_gate(probability, spacing, 0.0, t=0.1), probability)
    for bad in (-0.1, math.nan, "big"):
        with pytest.raises(InputError, match="must be a finite number >= 0"):
            check_min_lesion_ml(bad)


def _row(key, value, dice):
    return {key: value, "all": {"dice": {"mean": dice}}}


def _report(floor, offset=0.0, sizes=((0.0, 0.80), (0.05, 0.804), (0.1, 0.800), (0.2, 0.70))):
    return {"methods": {"cam": {"method": "cam", "split": "val", "lesion_hu_floor": floor, "logit_offset": offset,
                                "sweep": [_row("t_fg", 0.0001, 0.7), _row("t_fg", 0.0002, 0.8), _row("t_fg", 0.1, 0.5)],
                                "size_sweep": {"t_fg": 0.0002,
                                               "rows": [_row("min_lesion_ml", v, d) for v, d in sizes]}}}}


def test_the_minimum_size_is_the_largest_within_tolerance_of_the_best():
    # best 0.804 at 0.05 mL; 0.800 >= 0.804 - 0.005 too, 0.70 is not: 0.1 mL
    assert chosen_min_lesion_ml(_report(-700.0), "cam") == 0.1
    report = _report(-700.0)
    report["methods"]["cam"]["min_lesion_ml"] = 0.5  # the scored weights already drop regions under 0.5 mL
    assert chosen_min_lesion_ml(report, "cam") == 0.5
    del report["methods"]["cam"]["size_sweep"]
    with pytest.raises(InputError, match="no minimum-lesion-size sweep for cam"):
        chosen_min_lesion_ml(report, "cam")


def test_the_offset_comes_from_the_validation_sweep_of_the_same_floor():
    assert offset_from_validation(_report(-700.0), "cam", -700.0) == pytest.approx(6.31977, abs=1e-5)
    # evaluate writes None for weights without an offset
    assert offset_from_validation(_report(-700.0, None), "cam", -700.0) == pytest.approx(6.31977, abs=1e-5)
    # Weights that already carry an offset: the new one adds to it.
    assert offset_from_validation(_report(-700.0, 1.5), "cam", -700.0) == pytest.approx(7.81977, abs=1e-5)
    with pytest.raises(InputError, match="floor None, but the file gets -700.0"):
        offset_from_validation(_report(None), "cam", -700.0)


def test_export_adds_the_settings_to_weak_seg_weights_only():
    spec = ExportSpec(method="cam", arch={}, preprocess={"geometry": "lung_box"})
    assert calibrated(spec, None, None) == {"geometry": "lung_box"}
    settings = calibrated(spec, -700, _report(-700.0))
    assert settings["lesion_hu_floor"] == -700.0 and settings["logit_offset"] == pytest.approx(6.31977, abs=1e-5)
    assert settings["min_lesion_ml"] == 0.1
    assert spec.preprocess == {"geometry": "lung_box"}  # the task's own dict is not changed
    with pytest.raises(InputError, match="trains diagnosis"):
        calibrated(ExportSpec(method="diagnosis", arch={}, preprocess={}), -700, None)
    # FeCNN takes the floor (it splits its lesion regions by attenuation), not the weak-seg choices.
    assert calibrated(ExportSpec(method="fecnn", arch={}, preprocess={}), -700, None) == {"lesion_hu_floor": -700.0}
    with pytest.raises(InputError, match="trains fecnn"):
        calibrated(ExportSpec(method="fecnn", arch={}, preprocess={}), -700, _report(-700.0))


def test_segment_reads_the_settings_of_its_weights(tmp_path):
    from covidweak.models import load_weights
    from covidweak.weakseg.infer import segment_ct

    ct, lungs = synthetic_ct()  # lungs at -850 HU with one -300 HU square in the right lung
    plain = load_weights(str(weight_file(tmp_path, "unet", "plain.pt")), method="unet")
    gated = load_weights(str(weight_file(tmp_path, "unet", "gated.pt",
                                         {"lesion_hu_floor": -700.0, "logit_offset": 2.0})), method="unet")
    p = sitk.GetArrayFromImage(segment_ct(ct, plain, lungs=lungs, device="cpu").probability)
    q = sitk.GetArrayFromImage(segment_ct(ct, gated, lungs=lungs, device="cpu").probability)
    dense = sitk.GetArrayFromImage(ct) > -700.0
    in_lung = sitk.GetArrayFromImage(lungs) > 0
    assert np.all(q[in_lung & ~dense] == 0.0) and np.all(p[in_lung & ~dense] > 0.0)
    square = in_lung & dense
    expected = 1.0 / (1.0 + np.exp(-(np.log(p[square] / (1.0 - p[square])) + 2.0)))
    np.testing.assert_allclose(q[square], expected, rtol=1e-4)
    # The dense square is 3 x 6 x 6 voxels of 1.5 x 1.4 x 4 mm = 0.907 mL: a 1 mL minimum removes it.
    sized = load_weights(str(weight_file(tmp_path, "unet", "sized.pt", {"lesion_hu_floor": -700.0, "logit_offset": 20.0,
                                                                         "min_lesion_ml": 1.0})), method="unet")
    r = sitk.GetArrayFromImage(segment_ct(ct, sized, lungs=lungs, device="cpu").probability)
    assert np.all(r == 0.0)
