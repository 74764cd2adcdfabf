"""The batch runner end to end: 12 phantom cases (one a DICOM series) of which 3 are broken,
a batch killed halfway and resumed, the per-case files, the scene bundle and the DICOM SEG.

The shipped cam-light weights at T_fg 0.5 on 96x96x16 phantoms keep a case
to a few seconds (at 64 pixels the classical lung segmentation misses some).
What the probabilities mean is not under test here, only that every file says
the same thing and that nothing finished is computed twice.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.errors import InputError
from test_dicom_seg import write_ct_series

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "Resources" / "Scripts" / "covid_batch.py"
OPTIONS = ["--method", "cam", "--t-fg", "0.5", "--t-bg", "0.3", "--device", "cpu"]
BROKEN = {"broken_truncated": "truncated", "broken_radiograph": "2-D image", "broken_mr": "looks like MR"}
DICOM_CASE = "good_dicom"


def environment() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "training"))


@pytest.fixture(scope="module")
def batch_input(tmp_path_factory) -> Path:
    """A folder of 12 cases: 8 phantom CT files, 1 phantom DICOM series folder, 3 broken files."""
    from covidweak.phantom import PhantomConfig, generate_study

    folder = tmp_path_factory.mktemp("batch_input")
    config = PhantomConfig(size=96, slices=16)
    for number in range(9):
        study = generate_study(100 + number, 0, ("covid", "cap", "normal")[number % 3], config=config)
        if number == 4:
            write_ct_series(study.ct, folder / DICOM_CASE)
        else:
            sitk.WriteImage(study.ct, str(folder / f"good_{number}.nii.gz"))
    whole = (folder / "good_0.nii.gz").read_bytes()
    (folder / "broken_truncated.nii.gz").write_bytes(whole[: len(whole) // 2])
    sitk.WriteImage(sitk.Image(64, 64, sitk.sitkInt16) - 1000, str(folder / "broken_radiograph.nii.gz"))
    mr = sitk.GetImageFromArray(np.random.default_rng(0).uniform(0, 900, (16, 96, 96)).astype(np.float32))
    sitk.WriteImage(mr, str(folder / "broken_mr.nrrd"))
    return folder


def finished_cases(out: Path) -> dict[str, int]:
    """case id -> case.json modification time (ns), for every finished case folder."""
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "cases").glob("*/case.json")}


def read_summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", newline="") as stream:
        return {row["case_id"]: row for row in csv.DictReader(stream)}


@pytest.fixture(scope="module")
def resumed_batch(batch_input, tmp_path_factory):
    """Run the script, kill it after 3 finished cases, rerun with `covidweak batch --jobs 2` to the end.

    Returns (output folder, cases finished before the kill with their case.json mtimes, rerun's exit status).
    """
    out = tmp_path_factory.mktemp("batch") / "out"
    first = subprocess.Popen([sys.executable, str(SCRIPT), "--input", str(batch_input), "--output", str(out),
                              "--jobs", "1", *OPTIONS], env=environment(), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(finished_cases(out)) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = finished_cases(out)
    assert 3 <= len(before) < 9, f"the kill should land mid-batch: {first.stderr.read().decode()[-2000:]}"
    rerun = subprocess.run([sys.executable, "-m", "covidweak", "batch", "--input", str(batch_input), "--output",
                            str(out), "--jobs", "2", *OPTIONS], env=environment(), capture_output=True, text=True,
                           timeout=600)
    return out, before, rerun


@pytest.mark.slow
def test_nine_cases_done_and_three_reported_with_their_reason(resumed_batch):
    out, _, rerun = resumed_batch
    assert rerun.returncode == 1, rerun.stderr[-2000:]  # 1: the batch finished but some cases failed
    summary = read_summary(out)
    assert len(summary) == 12
    done = sorted(case for case, row in summary.items() if row["status"] == "done")
    assert len(done) == 9 and DICOM_CASE in done
    for case, reason in BROKEN.items():
        assert summary[case]["status"] == "failed" and reason in summary[case]["error"], summary[case]
    assert "9 of 12 cases done" in rerun.stdout and "broken_mr:" in rerun.stdout
    for case in done:
        row = summary[case]
        assert float(row["lung_volume_ml"]) > 0 and int(row["lesion_count"]) >= 0
        assert 0 <= int(row["ct_severity_score"]) <= 30
        assert (out / row["report"]).is_file()
        # The severity step scores the lesions of the segmentation step, not a second segmentation.
        severity = json.loads((out / "cases" / case / "ct_severity.json").read_text())
        assert severity["involvement_percent"] == pytest.approx(float(row["involvement_percent"]), abs=1e-3)
        diagnosis = json.loads((out / "cases" / case / "diagnosis.json").read_text())
        assert row["diagnosis"] == diagnosis["prediction"] in ("covid", "cap", "normal")
        assert float(row["diagnosis_probability"]) == pytest.approx(diagnosis["probabilities"][row["diagnosis"]], abs=1e-4)
        assert (out / "cases" / case / "diagnosis_slices.tsv").is_file()
    assert not list((out / "cases").glob(".*")), "no partial folder is left"


@pytest.mark.slow
def test_rerun_after_a_kill_does_not_redo_finished_cases(resumed_batch):
    out, before, _ = resumed_batch
    after = finished_cases(out)
    assert len(after) == 9
    assert {case: after[case] for case in before} == before, "finished cases were written again"
    again = subprocess.run([sys.executable, "-m", "covidweak", "batch", "--input", str(out.parent / "missing"),
                            "--output", str(out), *OPTIONS], env=environment(), capture_output=True, text=True)
    assert again.returncode == 2 and "no such file or folder" in again.stderr


@pytest.mark.slow
def test_case_files_agree_with_each_other_and_the_bundle_reads_back(resumed_batch):
    from COVIDBatchLib.manifest import verified_manifest
    from COVIDBatchLib.scene_files import read_bundle
    from covidweak.slicer.mrml import image_from_volume_node

    out, _, _ = resumed_batch
    folder = out / "cases" / "good_1"
    manifest = verified_manifest(folder)
    assert manifest is not None and manifest["models"][0]["name"] == "cam-light"
    with open(folder / "lesions.tsv", newline="") as stream:
        lesions = list(csv.DictReader(stream, delimiter="\t"))
    assert len(lesions) == manifest["figures"]["lesion_count"]
    probability = sitk.ReadImage(str(folder / "lesion_probability.nii.gz"))
    assert probability.GetSize() == (96, 96, 16)

    scene = read_bundle(folder / "scene.mrb")
    try:
        volumes = {scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode").GetName(): scene.GetNthNodeByClass(
            i, "vtkMRMLScalarVolumeNode") for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))}
        assert set(volumes) == {"good_1", "good_1 lesion probability"}
        in_bundle = sitk.GetArrayFromImage(image_from_volume_node(volumes["good_1 lesion probability"]))
        np.testing.assert_allclose(in_bundle, sitk.GetArrayFromImage(probability), atol=1e-6)
        # Lesions and severity zones; lesion, involvement, severity zone and two diagnosis tables.
        assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 2
        assert scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 5  # + diagnosis per class and per slice
        red = scene.GetSingletonNode("Red", "vtkMRMLSliceCompositeNode")
        assert red.GetBackgroundVolumeID() == volumes["good_1"].GetID()
        assert red.GetForegroundVolumeID() == volumes["good_1 lesion probability"].GetID()
    finally:
        scene.Clear(True)


@pytest.mark.slow
def test_dicom_case_gets_a_seg_on_its_series(resumed_batch, batch_input):
    from covidweak.dicom_seg import read_dicom_seg

    out, _, _ = resumed_batch
    folder = out / "cases" / DICOM_CASE
    mask, frame = read_dicom_seg(folder / "lesion_seg.dcm", batch_input / DICOM_CASE)
    probability = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "lesion_probability.nii.gz")))
    np.testing.assert_array_equal(mask, (probability > 0.5).astype(np.uint8))
    import pydicom

    assert frame == pydicom.dcmread(next((batch_input / DICOM_CASE).iterdir())).FrameOfReferenceUID


@pytest.mark.slow
def test_a_changed_output_makes_the_case_unfinished(resumed_batch, tmp_path):
    import shutil

    from COVIDBatchLib.manifest import verified_manifest

    out, _, _ = resumed_batch
    copy = tmp_path / "case"
    shutil.copytree(out / "cases" / "good_2", copy)
    assert verified_manifest(copy) is not None
    with open(copy / "lesions.tsv", "a") as stream:
        stream.write("edited\n")
    assert verified_manifest(copy) is None
    (copy / "case.json").write_text("{")
    assert verified_manifest(copy) is None


@pytest.mark.slow
def test_index_page_links_every_finished_report(resumed_batch):
    from COVIDBatchLib.runner import SUMMARY_COLUMNS

    out, _, _ = resumed_batch
    page = (out / "index.html").read_text()
    summary = read_summary(out)
    for case, row in summary.items():
        assert (f'href="{row["report"]}"' in page) == (row["status"] == "done")
    assert page.count('onclick="sortBy(this)"') == len(SUMMARY_COLUMNS) - 1  # every column but the report link
    assert "<script src" not in page and "http" not in page


def test_the_network_is_loaded_once_per_process():
    from COVIDBatchLib.steps import loaded_model

    assert loaded_model("cam-light", "cam", "cpu") is loaded_model("cam-light", "cam", "cpu")


def test_output_folder_and_options_are_checked(batch_input, tmp_path):
    from COVIDBatchLib.runner import prepare_output
    from COVIDBatchLib.steps import BatchOptions, check_steps

    stranger = tmp_path / "someone_elses"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a batch folder"):
        prepare_output(stranger, BatchOptions())
    assert (stranger / "notes.txt").read_text() == "keep me"
    ours = tmp_path / "ours"
    prepare_output(ours, BatchOptions(method="cam"))
    prepare_output(ours, BatchOptions(method="cam", device="cpu", pdf=True))  # not result options: resumes
    with pytest.raises(InputError, match="method 'cam' -> 'mseamnam'"):
        prepare_output(ours, BatchOptions(method="mseamnam"))
    with pytest.raises(InputError, match="unknown step"):
        check_steps(["COVIDWeakSeg", "Nope"])
    assert json.loads((ours / "batch.json").read_text())["steps"] == ["COVIDWeakSeg", "COVIDSeverity"]


def test_cases_come_from_files_dicom_folders_and_manifests(batch_input, phantom_dir, tmp_path):
    from COVIDBatchLib.cases import find_cases

    cases = find_cases(batch_input)
    assert len(cases) == 12
    assert [c.case_id for c in cases if c.dicom] == [DICOM_CASE]
    assert {"broken_mr", "good_0", "broken_truncated"} <= {c.case_id for c in cases}
    from_manifest = find_cases(phantom_dir / "manifest.csv")
    assert len(from_manifest) == 8 and {c.diagnosis for c in from_manifest} <= {"covid", "cap", "normal"}
    assert find_cases(phantom_dir) == from_manifest
    twin = tmp_path / "twins"
    twin.mkdir()
    (twin / "a b.nrrd").write_bytes(b"")
    (twin / "a_b.mha").write_bytes(b"")
    with pytest.raises(InputError, match="both give case id 'a_b'"):
        find_cases(twin)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no CT"):
        find_cases(empty)
