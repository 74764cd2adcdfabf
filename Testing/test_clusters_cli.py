"""``covidweak clusters``: fit on the test phantom, apply to one of its CTs, and refuse bad input.

The FeCNN here is untrained except for its final bias, set so that every slice is called
COVID-19: the lesion branch then runs on every lung slice, which is what these tests need.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from covidweak.cli import main
from covidweak.clusters.store import LESION_CSV_COLUMNS, ClusterModel, save_model

INPUT_SIZE = 64


@pytest.fixture(scope="module")
def covid_weights(tmp_path_factory):
    from covidweak.models.fecnn import COVID_CLASS, build_fecnn
    from covidweak.models.weights import save_weights

    torch.manual_seed(0)
    model = build_fecnn("fecnn", {"backbone": "light", "classes": 2})
    with torch.no_grad():
        model.classifier.bias.zero_()
        model.classifier.bias[COVID_CLASS] = 3.0
    path = tmp_path_factory.mktemp("fecnn") / "fecnn-test.pt"
    save_weights(path, model, "fecnn", {"backbone": "light", "classes": 2, "input_size": INPUT_SIZE},
                 {"input_size": INPUT_SIZE, "hu_window": [-1200.0, 600.0], "lung_only": True})
    return path


@pytest.fixture(scope="module")
def fitted(phantom_dir, covid_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("clusters") / "model"
    assert main(["clusters", "--data", str(phantom_dir), "--k", "2", "--out", str(out), "--weights", str(covid_weights),
                 "--device", "cpu"]) == 0
    return out


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        return reader.fieldnames, list(reader)


@pytest.mark.slow
def test_fit_writes_the_model_and_the_library_table(fitted):
    assert {p.name for p in fitted.iterdir()} >= {"cluster_model.npz", "cluster_model.json", "lesions.csv"}
    columns, rows = read_rows(fitted / "lesions.csv")
    assert tuple(columns) == LESION_CSV_COLUMNS
    assert rows and {row["cluster"] for row in rows} == {"0", "1"}
    assert all(0.5 <= float(row["score"]) <= 1.0 for row in rows)  # the nearest of two centres
    assert {row["type"] for row in rows} <= {"", "ggo", "crazy-paving", "consolidation"}
    assert any(row["type"] for row in rows)  # the phantom's covid studies have typed lesions
    with np.load(fitted / "cluster_model.npz") as arrays:
        assert arrays["centres"].shape == (2, 128)
        assert arrays["library_tsne"].shape == (len(rows), 2)


@pytest.mark.slow
def test_apply_writes_labels_on_the_ct_grid(fitted, phantom_dir, covid_weights, tmp_path, capsys):
    study = sorted(p for p in phantom_dir.iterdir() if p.is_dir())[0]
    out = tmp_path / "case"
    args = ["clusters", "--ct", str(study / "ct.nii.gz"), "--model", str(fitted), "--out", str(out),
            "--lungs", str(study / "lungs.nii.gz"), "--weights", str(covid_weights), "--device", "cpu"]
    assert main(args) == 0
    columns, rows = read_rows(out / "lesions.csv")
    assert tuple(columns) == LESION_CSV_COLUMNS
    assert {row["study_id"] for row in rows} == {"ct"}
    labels = sitk.ReadImage(str(out / "lesion_labels.nii.gz"))
    ct = sitk.ReadImage(str(study / "ct.nii.gz"))
    assert labels.GetPixelID() == sitk.sitkUInt16
    assert labels.GetSize() == ct.GetSize() and labels.GetOrigin() == pytest.approx(ct.GetOrigin())
    ids = set(np.unique(sitk.GetArrayFromImage(labels)).tolist()) - {0}
    assert ids == {int(row["lesion_id"]) for row in rows}
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(study / "lungs.nii.gz")))
    assert not (sitk.GetArrayFromImage(labels)[lungs == 0]).any()  # lesions lie inside the lungs

    assert main(args) == 2  # an existing output is kept without --overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_a_model_with_another_feature_size_is_refused(phantom_dir, covid_weights, tmp_path, capsys):
    rng = np.random.default_rng(0)
    model = ClusterModel(centres=rng.normal(size=(2, 7)), svd_components=rng.normal(size=(3, 7)),
                         library_svd=rng.normal(size=(4, 3)), library_tsne=rng.normal(size=(4, 2)),
                         info={"fecnn": {"name": "other", "sha256": "0" * 64}})
    save_model(tmp_path / "model", model, rows=[])
    study = sorted(p for p in phantom_dir.iterdir() if p.is_dir())[0]
    code = main(["clusters", "--ct", str(study / "ct.nii.gz"), "--model", str(tmp_path / "model"), "--out",
                 str(tmp_path / "out"), "--weights", str(covid_weights), "--device", "cpu"])
    assert code == 2
    assert "expects 7-dim lesion features" in capsys.readouterr().err


def test_a_folder_that_is_no_model_is_refused(phantom_dir, tmp_path, capsys):
    study = sorted(p for p in phantom_dir.iterdir() if p.is_dir())[0]
    assert main(["clusters", "--ct", str(study / "ct.nii.gz"), "--model", str(tmp_path), "--out",
                 str(tmp_path / "out")]) == 2
    assert "is not a lesion-cluster model" in capsys.readouterr().err


@pytest.mark.slow
def test_more_clusters_than_lesions_is_refused(phantom_dir, covid_weights, tmp_path, capsys):
    code = main(["clusters", "--data", str(phantom_dir), "--k", "100000", "--out", str(tmp_path / "m"),
                 "--weights", str(covid_weights), "--device", "cpu"])
    assert code == 2
    assert "larger than the" in capsys.readouterr().err
    assert not (tmp_path / "m" / "cluster_model.json").exists()


def test_bad_k_and_missing_model_are_refused(phantom_dir, tmp_path, capsys):
    assert main(["clusters", "--data", str(phantom_dir), "--k", "three", "--out", str(tmp_path / "m")]) == 2
    assert "--k three" in capsys.readouterr().err
    assert main(["clusters", "--ct", str(tmp_path / "x.nii.gz"), "--out", str(tmp_path / "o")]) == 2
    assert "--ct needs --model" in capsys.readouterr().err


@pytest.mark.slow
def test_a_ct_without_lungs_is_refused(fitted, covid_weights, tmp_path, capsys):
    soft_tissue = np.full((16, 64, 64), 40.0, dtype=np.float32)
    soft_tissue[:, :, :4] = -1000.0  # a strip of outside air, so the image is a plausible CT
    image = sitk.GetImageFromArray(soft_tissue)
    image.SetSpacing((2.0, 2.0, 5.0))
    sitk.WriteImage(image, str(tmp_path / "no_lungs.nii.gz"))
    code = main(["clusters", "--ct", str(tmp_path / "no_lungs.nii.gz"), "--model", str(fitted), "--out",
                 str(tmp_path / "out"), "--weights", str(covid_weights), "--device", "cpu"])
    assert code == 2
    assert "lung" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_fecnn_writes_the_three_tables(phantom_dir, covid_weights, tmp_path):
    import json

    report_path = tmp_path / "report.json"
    assert main(["evaluate", "fecnn", "--data", str(phantom_dir), "--out", str(report_path), "--weights",
                 str(covid_weights), "--cam-weights", "none", "--split", "all", "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    # Every slice is called COVID-19: the normal study's slices are all wrong, the COVID-19 lesion slices all right.
    assert report["diagnosis"]["per_class"] == {"negative": 0.0, "covid": 1.0}
    assert [row["threshold"] for row in report["hit_rate"]["LAM"]] == pytest.approx([0.1 * t for t in range(1, 10)])
    rates = [row["hit_rate"] for row in report["hit_rate"]["LAM"]]
    assert all(a >= b for a, b in zip(rates, rates[1:]))  # a stricter overlap never hits more
    table = report["identification"]["table"]
    assert table["types"] == ["ggo", "crazy-paving", "consolidation"] and report["identification"]["k"] == 3


@pytest.mark.slow
def test_apply_streams_json_progress_for_the_slicer_child_process(fitted, phantom_dir, covid_weights, tmp_path,
                                                                   capsys):
    import covidweak.progress
    from covidweak.slicer import progress_stream

    factory = covidweak.progress.tqdm_progress
    study = sorted(p for p in phantom_dir.iterdir() if p.is_dir())[0]
    assert progress_stream.main(["clusters", "--ct", str(study / "ct.nii.gz"), "--model", str(fitted), "--out",
                                 str(tmp_path / "case"), "--lungs", str(study / "lungs.nii.gz"),
                                 "--device", "cpu"]) == 0  # no --weights: the model's own FeCNN file
    updates = [progress_stream.parse_progress_line(line) for line in capsys.readouterr().out.splitlines()]
    updates = [u for u in updates if u is not None]
    assert updates and updates[-1][0] == updates[-1][1]  # the last update reports the work complete
    assert covidweak.progress.tqdm_progress is factory, "the progress is handed to the command, nothing is rebound"
