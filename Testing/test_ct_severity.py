"""CT severity (covidweak.severity.ct): score bins, zone codes, per-zone involvement on a hand-made
label volume, lesion-type volumes, and the ct_severity.json / zones.nii.gz contract."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.errors import InputError
from covidweak.severity.ct import (OUTPUT_FILES, SCORE_NAME, ct_severity, involvement_score, lesion_type_volumes,
                                   run_ct_severity, zone_codes, zone_involvement)
from covidweak.weakseg.infer import SegmentResult, threshold
from covidweak.weakseg.outputs import write_outputs
from weakseg_fixtures import synthetic_ct


@pytest.mark.parametrize("percent, score", [
    (0.0, 0), (1e-9, 1), (4.999, 1), (5.0, 2), (25.0, 2), (25.001, 3), (50.0, 3), (50.5, 4), (75.0, 4),
    (75.001, 5), (100.0, 5)])
def test_involvement_score_bins_and_boundaries(percent, score):
    assert involvement_score(percent) == score


@pytest.mark.parametrize("bad", [-0.1, 100.1, float("nan")])
def test_involvement_score_refuses_non_percentages(bad):
    with pytest.raises(ValueError):
        involvement_score(bad)


def test_zone_codes_combine_lung_and_zone():
    lungs = np.array([0, 1, 1, 1, 2, 2, 2, 1, 0])
    zones = np.array([0, 1, 2, 3, 1, 2, 3, 0, 2])  # a lung voxel without zone stays 0; so does a zone outside lungs
    assert zone_codes(lungs, zones).tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 0]


def hand_made_lungs():
    """(z 12, y 4, x 5) at 1 mm: right lung x 0-1, left lung x 2-3, x 4 outside; every slice has lung.

    Kim's lines at 5/12 and 2/3 of the 11 mm height from the top (z = 11) put upper at z 7-11
    (5 slices, 40 voxels per lung), middle at z 4-6 (24 voxels), lower at z 0-3 (32 voxels).
    """
    lungs = np.zeros((12, 4, 5), np.uint8)
    lungs[:, :, 0:2] = 1
    lungs[:, :, 2:4] = 2
    image = sitk.GetImageFromArray(lungs)
    image.SetSpacing((1.0, 1.0, 1.0))
    return image


def hand_made_lesions():
    """Involvement per zone: RU 2/40 = 5 %, RM 6/24 = 25 %, RL 16/32 = 50 %, LU 0, LM 1/24, LL 32/32, plus
    one lesion voxel outside the lungs."""
    lesion = np.zeros((12, 4, 5), np.uint8)
    lesion[11, 0, 0:2] = 1  # right upper: 2 voxels
    lesion[4:7, 0, 0:2] = 1  # right middle: 6 voxels
    lesion[0:2, :, 0:2] = 1  # right lower: 16 voxels
    lesion[5, 0, 2] = 1  # left middle: 1 voxel
    lesion[0:4, :, 2:4] = 1  # left lower: all 32 voxels
    lesion[6, 2, 4] = 1  # outside the lungs: not counted
    return lesion


def test_zone_involvement_on_a_hand_made_volume():
    lungs = hand_made_lungs()
    fields, codes = ct_severity(hand_made_lesions(), lungs)
    assert np.bincount(codes.ravel(), minlength=7).tolist() == [48, 40, 24, 32, 40, 24, 32]
    zones = fields["zones"]
    assert [(z["lung"], z["zone"], z["label"]) for z in zones] == [
        ("right", "upper", 1), ("right", "middle", 2), ("right", "lower", 3),
        ("left", "upper", 4), ("left", "middle", 5), ("left", "lower", 6)]
    assert [z["involvement_percent"] for z in zones] == pytest.approx([5.0, 25.0, 50.0, 0.0, 100 / 24, 100.0])
    assert [z["score"] for z in zones] == [2, 2, 3, 0, 1, 5]
    assert fields["total_score"] == 13
    assert zones[0]["lung_volume_ml"] == pytest.approx(0.040) and zones[0]["lesion_volume_ml"] == pytest.approx(0.002)
    assert fields["lungs"]["right"]["involvement_percent"] == pytest.approx(100 * 24 / 96)
    assert fields["lungs"]["left"]["lesion_volume_ml"] == pytest.approx(0.033)
    assert fields["involvement_percent"] == pytest.approx(100 * 57 / 192)
    assert fields["score_name"] == SCORE_NAME and fields["lesion_types_ml"] is None


def test_a_missing_lung_scores_zero_in_its_zones():
    codes = np.array([1, 1, 2, 3])  # right lung only
    table = zone_involvement(np.array([1, 0, 0, 0]), codes, voxel_ml=0.5)
    assert [z["score"] for z in table] == [3, 0, 0, 0, 0, 0]  # 1 of 2 voxels: 50 %
    assert table[3]["lung_volume_ml"] == 0.0 and table[3]["involvement_percent"] == 0.0


def test_lesion_type_volumes_count_segmented_voxels_by_reference_type():
    mask = np.array([1, 1, 1, 1, 1, 1, 0, 0])
    types = np.array([1, 1, 1, 3, 3, 0, 2, 2])  # one segmented voxel on no lesion; crazy paving missed
    assert lesion_type_volumes(mask, types, voxel_ml=0.25) == {"GGO": 0.75, "crazy paving": 0.0, "consolidation": 0.5}


def test_no_lungs_is_refused():
    empty = sitk.GetImageFromArray(np.zeros((12, 4, 5), np.uint8))
    with pytest.raises(InputError, match="no lungs"):
        ct_severity(np.zeros((12, 4, 5)), empty)


@pytest.fixture
def segmented(tmp_path):
    """A synthetic CT in a phantom-like study folder, and a `covidweak segment` folder for it."""
    ct, lungs = synthetic_ct()
    study = tmp_path / "study"
    study.mkdir()
    sitk.WriteImage(ct, str(study / "ct.nii.gz"))
    prob = np.zeros(sitk.GetArrayViewFromImage(ct).shape, np.float32)
    prob[8:11, 18:24, 12:18] = 0.9  # the dense square in the right lung
    probability = sitk.GetImageFromArray(prob)
    probability.CopyInformation(ct)
    result = SegmentResult(probability=probability, lungs=lungs, mask=threshold(probability, 0.1),
                           summary={"method": "mseamnam", "weights_sha256": "abc", "t_fg": 0.1})
    write_outputs(result, tmp_path / "seg")
    return study, tmp_path / "seg", prob


def namespace(study, out, segment, **extra):
    return argparse.Namespace(image=study / "ct.nii.gz", out=out, device="cpu", overwrite=False, seg_method="mseamnam",
                              seg_weights=None, t_fg=0.1, from_segment=segment, **extra)


def test_run_ct_severity_writes_the_contract_files(segmented, tmp_path):
    study, segment, prob = segmented
    out = tmp_path / "out"
    assert run_ct_severity(namespace(study, out, segment)) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES.values())
    report = json.loads((out / "ct_severity.json").read_text())
    assert report["modality"] == "ct" and report["score_name"] == SCORE_NAME
    assert [z["label"] for z in report["zones"]] == [1, 2, 3, 4, 5, 6]
    assert set(report["zones"][0]) == {"lung", "zone", "label", "lung_volume_ml", "lesion_volume_ml",
                                       "involvement_percent", "score"}
    assert set(report["lungs"]) == {"right", "left"} and report["lungs"]["left"]["lesion_volume_ml"] == 0.0
    assert report["lesion_types_ml"] is None  # no phantom labels beside this CT
    assert report["segmentation"] == {"method": "mseamnam", "weights_sha256": "abc", "t_fg": 0.1}
    lesion_ml = 3 * 6 * 6 * 1.5 * 1.4 * 4.0 / 1000
    assert report["lungs"]["right"]["lesion_volume_ml"] == pytest.approx(lesion_ml)
    assert 0 <= report["total_score"] <= 30
    zones = sitk.ReadImage(str(out / "zones.nii.gz"))
    ct = sitk.ReadImage(str(study / "ct.nii.gz"))
    assert zones.GetPixelID() == sitk.sitkUInt8 and zones.GetSize() == ct.GetSize()
    assert zones.GetOrigin() == pytest.approx(ct.GetOrigin()) and zones.GetSpacing() == pytest.approx(ct.GetSpacing())
    assert set(np.unique(sitk.GetArrayViewFromImage(zones)).tolist()) == {0, 1, 2, 3, 4, 5, 6}
    with pytest.raises(InputError, match="--overwrite"):
        run_ct_severity(namespace(study, out, segment))


def test_phantom_lesion_types_and_t_fg_rethreshold(segmented, tmp_path):
    study, segment, prob = segmented
    types = np.zeros(prob.shape, np.uint8)
    types[8:11, 18:24, 12:15] = 1
    types[8:11, 18:24, 15:18] = 3
    labels = sitk.GetImageFromArray(types)
    labels.CopyInformation(sitk.ReadImage(str(study / "ct.nii.gz")))
    sitk.WriteImage(labels, str(study / "lesions.nii.gz"))
    (study / "meta.json").write_text("{}")
    out = tmp_path / "typed"
    assert run_ct_severity(namespace(study, out, segment)) == 0
    half = 3 * 6 * 3 * 1.5 * 1.4 * 4.0 / 1000
    assert json.loads((out / "ct_severity.json").read_text())["lesion_types_ml"] == pytest.approx(
        {"GGO": half, "crazy paving": 0.0, "consolidation": half})
    # --t-fg above every probability re-thresholds the saved map: nothing is involved.
    args = namespace(study, tmp_path / "high", segment)
    args.t_fg = 0.95
    assert run_ct_severity(args) == 0
    assert json.loads((tmp_path / "high" / "ct_severity.json").read_text())["total_score"] == 0


def test_a_radiograph_is_refused(tmp_path):
    image = sitk.GetImageFromArray(np.full((64, 64), -500.0, np.float32))
    path = tmp_path / "cxr.nii.gz"
    sitk.WriteImage(image, str(path))
    args = namespace(tmp_path, tmp_path / "out", None)
    args.image = path
    with pytest.raises(InputError, match="3-D"):
        run_ct_severity(args)
