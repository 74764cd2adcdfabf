"""The lung plausibility check: heads, abdomens and CTs holding a few lung slices are refused, chests are not.

The non-chest volumes are built here: a head (skull, brain, air sinuses), an abdomen (fat,
organs, bowel gas) and a phantom chest cut below its lung bases. Without the check the
classical segmentation returns their sinuses, bowel gas or lung bases as "lungs".
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.cli import main
from covidweak.errors import InputError
from covidweak.lungs import segment_lungs
from covidweak.lungs.plausible import (MIN_HEIGHT_RATIO, MIN_LUNG_FRACTION, MIN_LUNG_ML, LungShape, check_lung_image,
                                       measure, problem)

NOT_A_CHEST = "does not look like a chest CT"
TOO_LITTLE = "too little of the lungs"


def _ellipsoid(shape, spacing_zyx, centre_mm, radii_mm) -> np.ndarray:
    """(z, y, x) bool: voxel centres inside the ellipsoid (all in mm, z y x order)."""
    axes = [(np.arange(n) + 0.5) * s - c for n, s, c in zip(shape, spacing_zyx, centre_mm)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    return (z / radii_mm[0]) ** 2 + (y / radii_mm[1]) ** 2 + (x / radii_mm[2]) ** 2 <= 1.0


def _image(hu: np.ndarray, spacing_zyx) -> sitk.Image:
    image = sitk.GetImageFromArray(hu.astype(np.float32))
    image.SetSpacing([float(s) for s in spacing_zyx[::-1]])
    return image


def head_ct() -> sitk.Image:
    """A 128x128x54 head (1.8 mm, 3 mm slices): skull shell, brain, two maxillary sinuses (~40 mL each) and a frontal one."""
    shape, spacing = (54, 128, 128), (3.0, 1.8, 1.8)
    centre = (81.0, 115.0, 115.0)
    hu = np.full(shape, -1000.0)
    hu[_ellipsoid(shape, spacing, centre, (80, 95, 75))] = 1000.0
    hu[_ellipsoid(shape, spacing, centre, (73, 88, 68))] = 35.0
    for side in (-1, 1):
        hu[_ellipsoid(shape, spacing, (55.0, 60.0, 115.0 + side * 22), (22, 24, 17))] = -1000.0
    hu[_ellipsoid(shape, spacing, (100.0, 40.0, 115.0), (12, 10, 18))] = -1000.0
    return _image(hu, spacing)


def abdomen_ct(seed: int = 0) -> sitk.Image:
    """A 128x128x60 abdomen (2.8 mm, 4 mm slices): fat rim, soft-tissue organs and twelve bowel gas pockets."""
    shape, spacing = (60, 128, 128), (4.0, 2.8, 2.8)
    centre = np.array([120.0, 179.0, 179.0])
    hu = np.full(shape, -1000.0)
    hu[_ellipsoid(shape, spacing, centre, (400, 120, 160))] = -100.0
    hu[_ellipsoid(shape, spacing, centre, (400, 105, 145))] = 40.0
    rng = np.random.default_rng(seed)
    for _ in range(12):
        gas_centre = centre + rng.uniform(-1, 1, 3) * (80, 60, 90)
        hu[_ellipsoid(shape, spacing, gas_centre, rng.uniform(12, 30, 3))] = -1000.0
    return _image(hu, spacing)


@pytest.fixture(scope="module")
def chest():
    """A 256x256x64 covid phantom study (1.4 mm, 5 mm slices)."""
    from covidweak.phantom import PhantomConfig, generate_study

    return generate_study(1, 0, "covid", PhantomConfig(size=256, slices=64))


def lung_bases_ct(study, keep: int = 10) -> sitk.Image:
    """``study``'s CT cut above its ``keep`` lowest lung slices: an abdominal CT grazing the lung bases (5 cm here)."""
    truth = sitk.GetArrayViewFromImage(study.lungs) > 0
    lowest = int(np.flatnonzero(truth.any(axis=(1, 2)))[0])  # identity direction: index 0 is inferior
    return study.ct[:, :, : lowest + keep]


@pytest.mark.parametrize("make, fragment", [
    pytest.param(head_ct, NOT_A_CHEST, id="head"),
    pytest.param(abdomen_ct, NOT_A_CHEST, id="abdomen"),
    pytest.param(lambda: abdomen_ct(2), NOT_A_CHEST, id="abdomen-more-gas"),
])
def test_non_chest_is_refused_in_one_line(make, fragment):
    with pytest.raises(InputError, match=fragment) as refused:
        segment_lungs(make())
    assert "\n" not in str(refused.value) and "give a chest CT that covers the lungs" in str(refused.value)


def test_ct_with_only_the_lung_bases_is_refused(chest):
    with pytest.raises(InputError, match=TOO_LITTLE):
        segment_lungs(lung_bases_ct(chest))


def test_a_given_lung_mask_of_a_few_slices_is_refused_before_segmenting(chest, tmp_path):
    """A user's mask crops the network input as the found lungs do, so it gets the same check."""
    from covidweak.weakseg.infer import segment_ct
    from weakseg_fixtures import weight_file
    from covidweak.models import load_weights

    labels = sitk.GetArrayFromImage(chest.lungs)
    lung_rows = np.flatnonzero(labels.any(axis=(1, 2)))
    labels[lung_rows[10]:] = 0  # keep the ten lowest lung slices: 50 mm of lung
    bases = sitk.GetImageFromArray(labels)
    bases.CopyInformation(chest.lungs)
    model = load_weights(weight_file(tmp_path, "cam"), method="cam")
    with pytest.raises(InputError, match=TOO_LITTLE):
        segment_ct(chest.ct, model, lungs=bases, device="cpu")
    assert check_lung_image(chest.ct, chest.lungs) is None  # the whole mask passes


@pytest.mark.parametrize("size, slices, pattern", [(64, 24, "cap"), (64, 32, "covid"), (96, 16, "cap"), (128, 32, "normal")])
def test_small_test_phantoms_pass(size, slices, pattern):
    """The fixtures elsewhere in Testing/ use phantoms this small; their anatomy shrinks with the field of view."""
    from covidweak.phantom import PhantomConfig, generate_study

    study = generate_study(3, 0, pattern, PhantomConfig(size=size, slices=slices))
    assert np.count_nonzero(sitk.GetArrayViewFromImage(segment_lungs(study.ct))) > 0


def test_measure_on_a_hand_built_trunk():
    """10 slices of a 10 x 20 voxel body (2 mm voxels); lungs: two 4 x 5 blocks in slices 2-5."""
    body = np.zeros((10, 12, 24), dtype=bool)
    body[:, 1:11, 2:22] = True
    lungs = np.zeros(body.shape, dtype=np.uint8)
    lungs[2:6, 3:7, 4:9] = 1
    lungs[2:6, 3:7, 15:20] = 2
    shape = measure(lungs, body, (2.0, 2.0, 2.0))
    assert shape.lung_ml == pytest.approx(2 * 4 * 4 * 5 * 8 / 1000.0)
    assert shape.fraction == pytest.approx(2 * 4 * 5 / (10 * 20))
    assert shape.height_mm == 8.0 and shape.width_mm == 40.0 and shape.height_ratio == pytest.approx(0.2)


def test_problem_names_the_first_failed_rule():
    chest = LungShape(lung_ml=4000.0, fraction=0.3, height_mm=250.0, width_mm=330.0)
    assert problem(chest) is None
    assert "found only 5 mL" in problem(LungShape(5.0, 0.3, 250.0, 330.0))
    assert TOO_LITTLE in problem(LungShape(300.0, 0.3, 0.2 * 330.0, 330.0))
    assert NOT_A_CHEST in problem(LungShape(40.0, 0.04, 50.0, 150.0))
    assert problem(LungShape(MIN_LUNG_ML, MIN_LUNG_FRACTION, MIN_HEIGHT_RATIO * 200.0, 200.0)) is None


def test_cli_lungs_writes_nothing_for_a_head(tmp_path, capsys):
    ct = tmp_path / "head.nii.gz"
    sitk.WriteImage(head_ct(), str(ct))
    out = tmp_path / "lungs.nii.gz"
    assert main(["lungs", str(ct), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("covidweak lungs: error:") and NOT_A_CHEST in err and "\n" not in err
    assert not out.exists()


def test_cli_segment_writes_nothing_for_an_abdomen(tmp_path, capsys):
    ct = tmp_path / "abdomen.nii.gz"
    sitk.WriteImage(abdomen_ct(), str(ct))
    out = tmp_path / "out"
    assert main(["segment", str(ct), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert NOT_A_CHEST in err and "\n" not in err
    assert not out.exists() or not any(out.iterdir())


def test_user_lung_mask_is_checked_against_its_ct(chest):
    check_lung_image(chest.ct, chest.lungs)  # the phantom's true lungs pass
    head = head_ct()
    sinuses = sitk.Cast(head < -500, sitk.sitkUInt8) * sitk.Cast(sitk.BinaryFillhole(head > -500), sitk.sitkUInt8)
    with pytest.raises(InputError, match=NOT_A_CHEST):
        check_lung_image(head, sinuses)


def test_lungs_almost_wholly_opacified_are_refused_with_a_message_that_says_so():
    """A white-out the classical mask cannot follow (a follow-up at 94 % involvement keeps 48 mL of air) is
    refused rather than segmented wrongly, and the line names that reading beside 'not a chest'."""
    from covidweak.phantom import PhantomConfig
    from covidweak.phantom.study import generate_study

    study = generate_study(84006, 2, "covid", PhantomConfig(size=128, slices=32))
    assert study.meta["lung_involvement"] > 0.9
    with pytest.raises(InputError, match="lungs are so opacified") as refused:
        segment_lungs(study.ct)
    assert NOT_A_CHEST in str(refused.value) and "\n" not in str(refused.value)
