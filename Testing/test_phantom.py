"""Phantom generator: API contract, determinism, follow-ups, files, dataset and CLI."""

import argparse
import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.errors import InputError
from covidweak.phantom import PhantomConfig, allocate_patterns, generate_study, write_study

SMALL = PhantomConfig(size=128, slices=32)
META_KEYS = {"study_id", "patient_id", "study_index", "diagnosis", "seed", "size", "slices", "spacing", "slice_labels",
             "slice_has_lesion", "severity_array", "severity_global", "lesions", "generator_version",
             "lesion_scale", "burden", "lung_involvement"}


@pytest.fixture(scope="module")
def covid_pair():
    return generate_study(21, 0, "covid", SMALL), generate_study(21, 1, "covid", SMALL)


def test_images_share_the_ct_geometry_and_have_contract_types(covid_pair):
    s = covid_pair[0]
    assert s.ct.GetSize() == (128, 128, 32) and s.ct.GetPixelID() == sitk.sitkInt16
    for image in (s.lungs, s.lesions):
        assert image.GetPixelID() == sitk.sitkUInt8
        assert image.GetSize() == s.ct.GetSize() and image.GetOrigin() == s.ct.GetOrigin()
        assert image.GetSpacing() == s.ct.GetSpacing() and image.GetDirection() == s.ct.GetDirection()
    assert s.cxr.GetDimension() == 2 and s.cxr.GetPixelID() == sitk.sitkFloat32
    cxr = sitk.GetArrayFromImage(s.cxr)
    assert cxr.min() >= 0 and cxr.max() <= 1
    assert s.cxr_lungs.GetSize() == s.cxr.GetSize()
    assert set(np.unique(sitk.GetArrayFromImage(s.lungs))) == {0, 1, 2}


def test_right_lung_is_at_low_x_in_ct_and_left_of_the_radiograph(covid_pair):
    s = covid_pair[0]
    lungs = sitk.GetArrayFromImage(s.lungs)
    x = np.arange(lungs.shape[2])
    assert x[np.nonzero(lungs == 1)[2]].mean() < lungs.shape[2] / 2 < x[np.nonzero(lungs == 2)[2]].mean()
    proj = sitk.GetArrayFromImage(s.cxr_lungs)
    assert np.nonzero(proj == 1)[1].mean() < np.nonzero(proj == 2)[1].mean()


def test_same_seed_gives_identical_arrays():
    a = generate_study(33, 1, "cap", SMALL)
    b = generate_study(33, 1, "cap", SMALL)
    for name in ("ct", "lungs", "lesions", "cxr", "cxr_lungs"):
        assert np.array_equal(sitk.GetArrayFromImage(getattr(a, name)), sitk.GetArrayFromImage(getattr(b, name))), name
    assert a.meta == b.meta
    other = generate_study(34, 1, "cap", SMALL)
    assert not np.array_equal(sitk.GetArrayFromImage(a.lungs), sitk.GetArrayFromImage(other.lungs))


def test_follow_ups_share_anatomy_and_lesions_evolve(covid_pair):
    first, second = covid_pair
    assert first.patient_id == second.patient_id and first.study_id != second.study_id
    assert np.array_equal(sitk.GetArrayFromImage(first.lungs), sitk.GetArrayFromImage(second.lungs))
    bone = first.tissue == 4
    ct0, ct1 = sitk.GetArrayFromImage(first.ct), sitk.GetArrayFromImage(second.ct)
    assert abs(ct0[bone].mean() - ct1[bone].mean()) < 15  # same skeleton, new noise
    v0 = sum(l["volume_ml"] for l in first.meta["lesions"])
    v1 = sum(l["volume_ml"] for l in second.meta["lesions"])
    assert v1 > v0  # lesions grow towards their peak at the second follow-up


def test_meta_is_complete_and_consistent(covid_pair):
    s = covid_pair[0]
    meta = s.meta
    assert set(meta) == META_KEYS
    assert len(meta["slice_labels"]) == len(meta["slice_has_lesion"]) == 32
    lesions = sitk.GetArrayFromImage(s.lesions)
    assert meta["slice_has_lesion"] == [bool(v) for v in lesions.any(axis=(1, 2))]
    for label, truth in zip(meta["slice_labels"], meta["slice_has_lesion"]):
        assert label in ("positive", "unknown")
        assert truth or label != "positive"
    assert np.array(meta["severity_array"]).shape == (3, 2)
    assert meta["severity_global"] == int(np.sum(meta["severity_array"]))
    total = sum(l["volume_ml"] for l in meta["lesions"])
    voxel_ml = np.prod(s.ct.GetSpacing()) / 1000
    assert total == pytest.approx((lesions > 0).sum() * voxel_ml, rel=1e-3)
    for lesion in meta["lesions"]:
        assert lesion["type"] in (1, 2, 3) and lesion["lung"] in ("right", "left")
        assert lesion["zone"] in ("upper", "middle", "lower")
        # RAS +x points to the patient's right
        assert (lesion["centroid_ras"][0] > 0) == (lesion["lung"] == "right")


def test_weak_labels_mark_every_fourth_or_fifth_lesion_slice():
    from covidweak.phantom.labels import weak_slice_labels

    has = np.zeros(40, bool)
    has[5:25] = True
    has[30:31] = True
    labels = weak_slice_labels(has, "covid", np.random.default_rng(0))
    positive = [i for i, l in enumerate(labels) if l == "positive"]
    assert all(has[i] for i in positive) and 30 in positive
    gaps = np.diff([i for i in positive if i < 25])
    assert len(gaps) >= 3 and set(gaps) <= {4, 5}
    assert weak_slice_labels(has, "normal", np.random.default_rng(0)) == ["negative"] * 40


def test_pattern_allocation_covers_every_weighted_pattern():
    mix = {"covid": 0.5, "cap": 0.25, "normal": 0.25}
    got = allocate_patterns(4, mix, seed=11)
    assert sorted(got) == ["cap", "covid", "covid", "normal"]
    assert sorted(allocate_patterns(3, {"covid": 0.9, "cap": 0.05, "normal": 0.05}, seed=1)) == ["cap", "covid", "normal"]
    assert allocate_patterns(2, {"covid": 1, "cap": 0}, seed=1) == ["covid", "covid"]
    with pytest.raises(InputError, match="unknown pattern"):
        allocate_patterns(2, {"flu": 1}, seed=1)


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError, match="pattern"):
        generate_study(1, 0, "influenza", SMALL)
    with pytest.raises(InputError, match="spacing"):
        generate_study(1, 0, "covid", PhantomConfig(size=128, slices=32, spacing=(1.4, 1.4)))
    with pytest.raises(InputError, match="lesion scale"):
        generate_study(1, 0, "covid", PhantomConfig(size=128, slices=32, lesion_scale=0.0))


def test_lesion_scale_grows_the_lesions_and_keeps_the_anatomy(covid_pair):
    base = covid_pair[0]
    big = generate_study(21, 0, "covid", PhantomConfig(size=128, slices=32, lesion_scale=2.0))
    assert big.meta["lesion_scale"] == 2.0 and base.meta["lesion_scale"] == 1.0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(big.lungs), sitk.GetArrayFromImage(base.lungs))
    small_volume = sum(row["volume_ml"] for row in base.meta["lesions"])
    big_volume = sum(row["volume_ml"] for row in big.meta["lesions"])
    # Radii double, so a lesion's volume grows up to 8x (less where the lung boundary clips it);
    # the scale also widens the subpleural placement, so centres may move and the total differs.
    assert big_volume > 3.0 * small_volume


def test_dataset_on_disk_matches_manifest(phantom_dir):
    with open(phantom_dir / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8
    assert {r["diagnosis"] for r in rows} == {"covid", "cap", "normal"}
    for row in rows:
        meta = json.loads((phantom_dir / row["meta"]).read_text())
        assert meta["study_id"] == row["study_id"] and int(row["n_lesions"]) == len(meta["lesions"])
        ct = sitk.ReadImage(str(phantom_dir / row["ct"]))
        assert ct.GetSize() == (128, 128, 32)
        if row["diagnosis"] == "normal":
            assert set(meta["slice_labels"]) == {"negative"} and meta["severity_global"] == 0


def test_write_study_refuses_to_overwrite(tmp_path, covid_pair):
    folder = write_study(covid_pair[0], tmp_path)
    assert (folder / "cxr_lungs.nii.gz").exists()
    with pytest.raises(InputError, match="already"):
        write_study(covid_pair[0], tmp_path)


def _cli(argv):
    from covidweak.commands import phantom

    parser = argparse.ArgumentParser()
    phantom.add_parser(parser.add_subparsers())
    args = parser.parse_args(["phantom", *argv])
    return args.func(args)


@pytest.mark.slow
def test_cli_writes_refuses_and_overwrites(tmp_path):
    out = tmp_path / "data"
    base = ["--out", str(out), "--patients", "1", "--studies-per-patient", "1", "--seed", "3", "--size", "64",
            "--slices", "16", "--spacing", "2.8,2.8,10", "--mix", "covid=1"]
    assert _cli(base) == 0
    first = (out / "manifest.csv").read_text()
    with pytest.raises(InputError, match="--overwrite"):
        _cli(base)
    assert _cli(base + ["--overwrite"]) == 0
    assert (out / "manifest.csv").read_text() == first
    with pytest.raises(InputError, match="spacing"):
        _cli(base[:-4] + ["--spacing", "1,x,2", "--overwrite"])
    with pytest.raises(InputError, match="mix"):
        _cli(base[:-2] + ["--mix", "covid:1", "--overwrite"])
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "x.txt").write_text("mine")
    with pytest.raises(InputError, match="not a phantom dataset"):
        _cli(["--out", str(stranger), "--patients", "1", "--seed", "1", "--overwrite"])
