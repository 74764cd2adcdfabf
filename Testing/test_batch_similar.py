"""The batch's similar-case step: a case index of three phantom studies (random DuCN weights), one batch case
that is a copy of one of them, whose report must list that study first."""

from __future__ import annotations

import csv
import shutil

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """(dataset folder with manifest.csv, random DuCN weight file, built index folder)."""
    import torch

    from covidweak.cli import main
    from covidweak.models import build_model, save_weights
    from covidweak.phantom import PhantomConfig, generate_dataset

    folder = tmp_path_factory.mktemp("similar_library")
    generate_dataset(folder / "data", patients=3, studies_per_patient=1, seed=21,
                     config=PhantomConfig(size=96, slices=16))
    torch.manual_seed(0)
    arch = {"widen_factor": 0.25}
    save_weights(folder / "ducn.pt", build_model("ducn", arch), "ducn", arch, {"input_size": 64})
    assert main(["index", "build", "--data", str(folder / "data"), "--out", str(folder / "index"), "--weights",
                 str(folder / "ducn.pt"), "--device", "cpu"]) == 0
    return folder / "data", folder / "ducn.pt", folder / "index"


def test_report_lists_the_same_study_first(library, tmp_path):
    from COVIDBatchLib.runner import run_batch
    from COVIDBatchLib.steps import BatchOptions

    data, weights, index = library
    with open(data / "manifest.csv", newline="") as stream:
        first = next(csv.DictReader(stream))
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(data / first["ct"], cases / "query.nii.gz")
    options = BatchOptions(method="cam", t_fg=0.5, t_bg=0.3, device="cpu", steps=("COVIDWeakSeg", "COVIDSimilarCase"),
                           similar_index=str(index), similar_k=2, ducn_weights=str(weights))
    [row] = run_batch(cases, tmp_path / "out", options)
    assert row["status"] == "done", row["error"]
    assert row["similar_top_study"] == first["study_id"] and row["similar_top_diagnosis"] == first["diagnosis"]
    with open(tmp_path / "out" / "cases" / "query" / "similar_cases.tsv", newline="") as stream:
        results = list(csv.DictReader(stream, delimiter="\t"))
    assert [r["rank"] for r in results] == ["1", "2"]
    # Not 0: the batch segments the query's lungs itself, the index used the phantom's masks, so the two
    # centroids differ by the few lung slices one mask has and the other lacks.
    assert float(results[0]["distance"]) < 0.5 * float(results[1]["distance"])
    report = (tmp_path / "out" / "cases" / "query" / "report.html").read_text()
    assert "Similar cases (COVIDSimilarCase)" in report and first["study_id"] in report
    assert "COVIDSimilarCase</td><td>ducn</td><td>ducn</td>" in report


def test_similar_step_without_an_index_is_a_reported_failure(library, tmp_path):
    from COVIDBatchLib.runner import run_batch
    from COVIDBatchLib.steps import BatchOptions

    data, _, _ = library
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(next(data.glob("*/ct.nii.gz")), cases / "query.nii.gz")
    options = BatchOptions(method="cam", t_fg=0.5, t_bg=0.3, device="cpu", steps=("COVIDWeakSeg", "COVIDSimilarCase"))
    [row] = run_batch(cases, tmp_path / "out", options)
    assert row["status"] == "failed" and "--similar-index" in row["error"]
