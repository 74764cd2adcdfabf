"""The phantom looks like chest CT/CXR: checked against radiological numbers, not assumed."""

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from covidweak import zones
from covidweak.phantom import PhantomConfig, generate_study
from covidweak.phantom import tissues as T
from covidweak.phantom.drr import project_labels

SMALL = PhantomConfig(size=128, slices=32)


@pytest.fixture(scope="module")
def rich():
    """A covid follow-up holding GGO, crazy-paving and consolidation, lesions both seen and
    unseen on the radiograph (seed chosen for that under generator 1.2)."""
    return generate_study(42, 1, "covid", SMALL)


def _core_mean(study, code):
    """Mean CT number of a tissue away from its borders (partial volume excluded)."""
    ct = sitk.GetArrayFromImage(study.ct).astype(float)
    mask = study.tissue == code
    core = ndimage.binary_erosion(mask, structure=np.ones((1, 3, 3), bool))
    if core.sum() < 20:  # a small lesion has no core at this resolution: use all of it
        core = mask
    assert core.sum() > 5, T.NAMES[code]
    return ct[core].mean()


@pytest.mark.parametrize("code, low, high", [
    (T.LUNG, -900, -800), (T.FAT, -130, -70), (T.MUSCLE, 20, 70), (T.LIVER, 40, 75),
    (T.GGO, -700, -400), (T.CONSOLIDATION, -100, 50),
])
def test_tissue_ct_numbers_are_realistic(rich, code, low, high):
    assert low <= _core_mean(rich, code) <= high


def test_bone_is_dense_and_crazy_paving_lies_between_ggo_and_consolidation(rich):
    assert _core_mean(rich, T.BONE) > 300
    ggo, crazy, cons = (_core_mean(rich, c) for c in (T.GGO, T.CRAZY_PAVING, T.CONSOLIDATION))
    assert ggo < crazy < cons


def test_noise_is_realistic(rich):
    ct = sitk.GetArrayFromImage(rich.ct).astype(float)
    liver = ndimage.binary_erosion(rich.tissue == T.LIVER, iterations=3)
    # smooth texture adds a little to quantum noise: 10-35 HU is routine-dose chest CT
    assert 10 < ct[liver].std() < 35


def test_lesions_lie_inside_the_lungs_and_lungs_match_the_image(rich):
    lungs = sitk.GetArrayFromImage(rich.lungs)
    lesions = sitk.GetArrayFromImage(rich.lesions)
    ct = sitk.GetArrayFromImage(rich.ct)
    assert lesions.any() and np.all(lungs[lesions > 0] > 0)
    inside = lungs > 0
    assert ct[inside & (lesions == 0)].mean() < -750
    # dense voxels inside the lung mask are vessels, airway walls or lesions, a small share
    assert np.mean(ct[inside & (lesions == 0)] > -300) < 0.05
    # aerated voxels left outside the lung mask inside the body: trachea and main bronchi only
    body = ndimage.binary_fill_holes(ct > -500)
    outside_air = body & ~inside & (ct < -600)
    assert outside_air.sum() < 0.05 * inside.sum()


def test_trachea_air_connects_to_the_lungs_through_the_airways():
    study = generate_study(12, 0, "normal", PhantomConfig())  # full resolution resolves bronchi
    ct = sitk.GetArrayFromImage(study.ct)
    lungs = sitk.GetArrayFromImage(study.lungs)
    air, _ = ndimage.label(ct < -500)
    midline = air[-1][:, ct.shape[2] // 2 - 6: ct.shape[2] // 2 + 6]  # top slice, central columns
    inner = set(np.unique(midline)) - {0, air[0, 0, 0]}  # not the air around the patient
    assert len(inner) == 1, "expected one air tube (the trachea) in the midline of the top slice"
    component = air == inner.pop()
    assert (component & (lungs == 1)).any() and (component & (lungs == 2)).any()


def test_radiograph_shows_dark_lungs_beside_a_bright_mediastinum(rich):
    cxr = sitk.GetArrayFromImage(rich.cxr)
    lungs = sitk.GetArrayFromImage(rich.cxr_lungs)
    rows = np.nonzero(lungs.any(axis=1))[0]
    middle = slice(rows.min() + len(rows) // 3, rows.min() + 2 * len(rows) // 3)
    centre = cxr[middle, cxr.shape[1] // 2 - 3: cxr.shape[1] // 2 + 3].mean()
    assert cxr[lungs > 0].mean() < centre - 0.1


def test_severity_array_counts_the_visible_opacities_and_their_lesions_zones(rich):
    lesions = sitk.GetArrayFromImage(rich.lesions)
    cxr_lungs = sitk.GetArrayFromImage(rich.cxr_lungs)
    projected = project_labels(lesions, rich.ct.GetSpacing())
    every_shadow = zones.severity_array(zones.zone_map_2d(cxr_lungs), cxr_lungs, projected)
    shown = np.array(rich.meta["severity_array"])
    assert shown.sum() >= 1 and np.all(shown <= every_shadow)  # visible opacities are a subset of shadows
    visible = [lesion for lesion in rich.meta["lesions"] if lesion["cxr_visible"]]
    assert 0 < len(visible) < len(rich.meta["lesions"])  # this study holds both kinds
    for lesion in visible:
        row = zones.ZONE_NAMES.index(lesion["zone"])
        col = zones.LUNG_NAMES.index(lesion["lung"])
        assert shown[row][col] == 1


@pytest.mark.slow
def test_covid_is_bilateral_peripheral_lower_and_cap_central():
    def stats(pattern, seeds):
        depth, lower, upper, bilateral = [], 0.0, 0.0, []
        for seed in seeds:
            s = generate_study(seed, 1, pattern, SMALL)
            lungs = sitk.GetArrayFromImage(s.lungs)
            lesions = sitk.GetArrayFromImage(s.lesions) > 0
            dist = ndimage.distance_transform_edt(lungs > 0, sampling=s.ct.GetSpacing()[::-1])
            depth.append(dist[lesions].mean())
            zone = zones.zone_map_3d(s.lungs)
            lower += (lesions & (zone == 3)).sum()
            upper += (lesions & (zone == 1)).sum()
            bilateral.append({l["lung"] for l in s.meta["lesions"]} == {"right", "left"})
        return np.mean(depth), lower, upper, np.mean(bilateral)

    covid = stats("covid", range(60, 65))
    cap = stats("cap", range(60, 65))
    assert covid[3] == 1.0 and cap[3] < 0.5
    assert covid[1] > 1.5 * covid[2]  # lower-zone predominant (the upper zone is the larger one)
    assert covid[0] < cap[0]  # subpleural vs central
