"""The README's demo command on a small phantom: every stage's outputs, and what it refuses to delete."""

from __future__ import annotations

import csv
import json

import pytest

from covidweak.cli import main


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_demo_runs_every_stage_and_reruns_only_over_its_own_output(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--patients", "3", "--studies-per-patient", "1",
            "--size", "128", "--slices", "32", "--seed", "1", "--cluster-k", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert [f"{n}/7" in printed for n in range(1, 8)] == [True] * 7, "every stage announces itself"
    assert "research use only" in printed and str(out / "batch" / "index.html") in printed
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["finished"] is True
    stages = ("1_phantom", "2_lungs", "3_batch", "4_similar", "5_clusters", "6_severity_diagnosis")
    assert all(summary[name]["seconds"] >= 0 and summary[name]["command"] for name in stages)
    assert summary["total_seconds"] >= sum(summary[name]["seconds"] for name in stages) - 1

    # 1-2: the phantom and the lungs scored against its truth.
    manifest = _rows(out / "phantom" / "manifest.csv")
    studies = {row["study_id"]: row for row in manifest}
    rows = _rows(out / "results.csv")
    assert {row["diagnosis"] for row in rows} == {"covid", "cap", "normal"} and len(rows) == 3
    assert all(float(row["dice_right"]) > 0.9 and float(row["dice_left"]) > 0.9 for row in rows)
    assert summary["2_lungs"]["min_dice_left"] == min(float(r["dice_left"]) for r in rows)
    assert (out / "montage.png").stat().st_size > 10_000

    # 3: the batch wrote a report per case, summary.csv and index.html, and the demo read them back.
    batch = _rows(out / "batch" / "summary.csv")
    assert sorted(row["case_id"] for row in batch) == sorted(studies)
    assert all(row["status"] == "done" for row in batch) and summary["3_batch"]["done"] == 3
    for row in batch:
        assert (out / "batch" / row["report"]).is_file()
        assert 0 <= float(row["ct_severity_score"]) <= 30
    index_html = (out / "batch" / "index.html").read_text()
    assert all(study_id in index_html for study_id in studies)
    truth = {case["case_id"]: case["true_lesion_ml"] for case in summary["3_batch"]["cases"]}
    normal = next(s for s, row in studies.items() if row["diagnosis"] == "normal")
    covid = next(s for s, row in studies.items() if row["diagnosis"] == "covid")
    assert truth[normal] == 0 and truth[covid] > 0

    # 4: the query (the covid study, the only one of its patient) is left out of the index it searches.
    similar = json.loads((out / "similar.json").read_text())
    assert similar["index"]["studies"] == 2 and similar["k"] == 2
    assert similar["query"]["path"].endswith(f"{covid}/ct.nii.gz")
    found = [result["study_id"] for result in similar["results"]]
    assert sorted(found) == sorted(set(studies) - {covid})
    assert summary["4_similar"]["query"] == covid and summary["4_similar"]["same_patient_rank"] is None

    # 5: the cluster model and its lesion table.
    lesions = _rows(out / "cluster_model" / "lesions.csv")
    assert summary["5_clusters"]["lesions"] == len(lesions) >= 2
    assert {row["cluster"] for row in lesions} == {"0", "1"} and summary["5_clusters"]["k"] == 2
    assert (out / "cluster_model" / "cluster_model.npz").is_file()

    # 6: CXR severity and diagnosis of the covid study, beside its truth.
    shown = summary["6_severity_diagnosis"]
    severity = json.loads((out / "cxr_severity" / "severity.json").read_text())
    diagnosis = json.loads((out / "diagnosis" / "diagnosis.json").read_text())
    assert shown["study"] == covid and shown["true_diagnosis"] == "covid"
    assert shown["cxr_global_score"] == severity["global_score"] == sum(map(sum, severity["binary"]))
    assert shown["true_cxr_global_score"] == int(studies[covid]["severity_global"])
    assert shown["diagnosis"] == diagnosis["prediction"] in ("covid", "cap", "normal")
    assert abs(sum(diagnosis["probabilities"].values()) - 1) < 1e-3

    assert main(args) == 2, "a second run must not silently replace the first"
    # Asking for more clusters than the phantom has lesions: stage 5 says why it has no model, the demo goes on.
    assert main(args + ["--overwrite", "--seed", "7", "--cluster-k", "100000"]) == 0
    rerun = json.loads((out / "demo_summary.json").read_text())
    assert rerun["phantom"]["seed"] == 7 and rerun["5_clusters"]["skipped"] is True
    assert "not enough lesions" in rerun["5_clusters"]["reason"] and "6_severity_diagnosis" in rerun
    assert not (out / "cluster_model" / "cluster_model.npz").exists(), "--overwrite replaced the earlier output"


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("a user's file")
    assert main(["demo", "--out", str(tmp_path), "--overwrite"]) == 2
    assert "not a demo output" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "a user's file"


def test_demo_needs_two_studies_for_the_similar_case_search(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--patients", "1", "--studies-per-patient", "1"]) == 2
    assert "at least 2 phantom studies" in capsys.readouterr().err
    assert not out.exists(), "a refused demo creates nothing"
