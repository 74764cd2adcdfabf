"""``covidweak severity`` on radiographs: the severity.json contract, the images, and one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.cli import main
from covidweak.phantom.drr import render_drr


def _first(phantom_dir: Path, column: str) -> Path:
    with open(phantom_dir / "manifest.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["diagnosis"] == "covid")
    return phantom_dir / row[column]


def _assert_one_line_error(capsys, code: int, *fragments: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("covidweak severity: error:")
    for fragment in fragments:
        assert fragment in err


@pytest.mark.slow
def test_radiograph_gives_the_contract_outputs(phantom_dir, tmp_path, capsys):
    from covidweak.zones import zone_map_2d

    cxr = _first(phantom_dir, "cxr")
    out = tmp_path / "out"
    assert main(["severity", str(cxr), "--out", str(out), "--device", "cpu"]) == 0
    document = json.loads((out / "severity.json").read_text())
    assert document["modality"] == "cxr" and document["threshold"] == 0.5
    assert document["rows"] == ["upper", "middle", "lower"] and document["columns"] == ["right", "left"]
    probability, binary = np.array(document["probability"]), np.array(document["binary"])
    assert probability.shape == (3, 2) and binary.tolist() == (probability >= 0.5).astype(int).tolist()
    assert document["global_score"] == binary.sum()
    assert [(l["lung"], l["fraction"]) for l in document["zone_lines"]] == [
        ("right", 0.41667), ("right", 0.66667), ("left", 0.41667), ("left", 0.66667)]
    assert set(document["models"]) == {"severity", "lungs"} and len(document["models"]["lungs"]["sha256"]) == 64

    image = sitk.ReadImage(str(cxr))
    probability_map, lungs = (sitk.ReadImage(str(out / name)) for name in ("severity_map.nii.gz", "cxr_lungs.nii.gz"))
    for written in (probability_map, lungs):
        assert written.GetSize() == image.GetSize() and written.GetSpacing() == pytest.approx(image.GetSpacing())
    assert lungs.GetPixelID() == sitk.sitkUInt8 and probability_map.GetPixelID() == sitk.sitkFloat32
    values, labels = sitk.GetArrayFromImage(probability_map), sitk.GetArrayFromImage(lungs)
    assert set(np.unique(labels)) == {0, 1, 2} and values[labels == 0].max() == 0
    # The JSON's zone probabilities are the maps' maxima inside the written zones.
    zone_map = zone_map_2d(labels)
    for row in range(3):
        for column in range(2):
            inside = (zone_map == row + 1) & (labels == column + 1)
            assert probability[row, column] == pytest.approx(values[inside].max(), abs=1e-4)
    # The lungs agree with the phantom's projected lungs.
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(_first(phantom_dir, "cxr_lungs"))))
    assert np.mean((labels > 0) == (truth > 0)) > 0.9

    assert main(["severity", str(cxr), "--out", str(out)]) == 2
    _assert_one_line_error(capsys, 2, "already holds severity.json", "--overwrite")


def test_blank_and_non_chest_images_are_refused(tmp_path, capsys):
    blank = tmp_path / "blank.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((128, 128), 7.0, dtype=np.float32)), str(blank))
    _assert_one_line_error(capsys, main(["severity", str(blank), "--out", str(tmp_path / "a")]), "blank")
    ramp = tmp_path / "ramp.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.tile(np.linspace(0, 1, 128, dtype=np.float32), (128, 1))), str(ramp))
    _assert_one_line_error(capsys, main(["severity", str(ramp), "--out", str(tmp_path / "b")]),
                           "frontal (PA or AP) chest radiograph")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_lateral_view_is_refused(phantom_dir, tmp_path, capsys):
    ct = sitk.ReadImage(str(_first(phantom_dir, "ct")))
    hu = sitk.GetArrayFromImage(ct)  # (z, y, x): a lateral view projects along x
    lateral = render_drr(np.swapaxes(hu, 1, 2), ct.GetSpacing())
    path = tmp_path / "lateral.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(lateral), str(path))
    _assert_one_line_error(capsys, main(["severity", str(path), "--out", str(tmp_path / "c")]), "lateral")


def test_ct_where_a_radiograph_is_required_is_refused():
    from covidweak.errors import InputError
    from covidweak.severity.cxr_infer import radiograph_array

    volume = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(8, 64, 64)).astype(np.float32))
    with pytest.raises(InputError, match="3-D volume"):
        radiograph_array(volume)


@pytest.mark.slow
def test_one_slice_volume_is_a_radiograph_and_keeps_its_geometry(phantom_dir, tmp_path):
    drr = sitk.ReadImage(str(_first(phantom_dir, "cxr")))
    volume = sitk.JoinSeries(drr)  # (cols, rows, 1): how DICOM radiographs often read
    volume.SetOrigin((10.0, -20.0, 5.0))
    path = tmp_path / "one_slice.nrrd"
    sitk.WriteImage(volume, str(path))
    out = tmp_path / "out"
    assert main(["severity", str(path), "--out", str(out), "--device", "cpu"]) == 0
    lungs = sitk.ReadImage(str(out / "cxr_lungs.nii.gz"))
    assert lungs.GetDimension() == 3 and lungs.GetSize() == volume.GetSize()
    assert lungs.GetOrigin() == pytest.approx(volume.GetOrigin())
    assert json.loads((out / "severity.json").read_text())["modality"] == "cxr"
