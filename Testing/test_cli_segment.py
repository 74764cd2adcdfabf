"""``covidweak segment``: the output folder, default weights, and one-line errors (exit 2)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.cli import main
from covidweak.models.weights import REGISTRY_NAME, sha256_of
from covidweak.weakseg.lesions import LESION_COLUMNS
from covidweak.weakseg.outputs import OUTPUT_FILES, read_outputs
from weakseg_fixtures import synthetic_ct, weight_file


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("case")
    ct, lungs = synthetic_ct()
    sitk.WriteImage(ct, str(folder / "ct.nii.gz"))
    sitk.WriteImage(lungs, str(folder / "lungs.nii.gz"))
    return folder


def test_segment_writes_the_five_files(case, tmp_path):
    weights = weight_file(tmp_path, "cam")
    out = tmp_path / "out"
    argv = [str(case / "ct.nii.gz"), "--out", str(out), "--method", "cam", "--weights", str(weights),
            "--lungs", str(case / "lungs.nii.gz"), "--t-fg", "0.4", "--device", "cpu", "--batch-size", "3"]
    assert main(["segment", *argv]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["weights_sha256"] == sha256_of(weights) and summary["t_fg"] == 0.4
    assert "research use only" in summary["note"]
    stages = summary["stage_seconds"]  # where the runtime went, for the speed goals
    assert set(stages) == {"lungs_s", "probability_s", "tables_s"} and all(v >= 0 for v in stages.values())
    assert sum(stages.values()) <= summary["runtime_s"] + 0.01
    with open(out / "lesions.csv", newline="") as stream:
        assert tuple(csv.DictReader(stream).fieldnames) == LESION_COLUMNS
    ct = sitk.ReadImage(str(case / "ct.nii.gz"))
    prob = sitk.ReadImage(str(out / "lesion_prob.nii.gz"))
    assert prob.GetSize() == ct.GetSize() and np.allclose(prob.GetOrigin(), ct.GetOrigin())
    assert read_outputs(out).t_fg == 0.4
    assert main(["segment", *argv]) == 2  # refuses to overwrite
    assert main(["segment", *argv, "--overwrite"]) == 0


def test_default_weights_come_from_the_registry(case, tmp_path, monkeypatch):
    weights = weight_file(tmp_path, "mscam", "mscam-light.pt")
    entry = {"name": "mscam-light", "file": weights.name, "sha256": sha256_of(weights), "method": "mscam"}
    (tmp_path / REGISTRY_NAME).write_text(json.dumps({"format_version": 1, "models": [entry]}))
    monkeypatch.setenv("COVIDWEAK_MODELS_DIR", str(tmp_path))
    out = tmp_path / "out"
    assert main(["segment", str(case / "ct.nii.gz"), "--out", str(out), "--method", "mscam",
                 "--lungs", str(case / "lungs.nii.gz"), "--device", "cpu"]) == 0
    assert json.loads((out / "summary.json").read_text())["weights"] == "mscam-light"


def _segment(case, tmp_path, *extra):
    return main(["segment", str(case / "ct.nii.gz"), "--out", str(tmp_path / "out"),
                 "--lungs", str(case / "lungs.nii.gz"), "--device", "cpu", *extra])


def test_missing_corrupt_and_mismatched_weights_exit_2(case, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a zip file")
    assert _segment(case, tmp_path, "--weights", str(tmp_path / "absent.pt")) == 2
    assert _segment(case, tmp_path, "--weights", str(corrupt)) == 2
    assert _segment(case, tmp_path, "--method", "seam", "--weights", str(weight_file(tmp_path, "cam"))) == 2
    assert _segment(case, tmp_path, "--method", "nonsense") == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("covidweak segment: error:") for line in errors)
    assert not (tmp_path / "out").exists()


def test_a_radiograph_exits_2(tmp_path, capsys):
    cxr = sitk.GetImageFromArray(np.full((64, 64), -500.0, dtype=np.float32))
    sitk.WriteImage(cxr, str(tmp_path / "cxr.nii.gz"))
    code = main(["segment", str(tmp_path / "cxr.nii.gz"), "--out", str(tmp_path / "out"), "--method", "cam",
                 "--weights", str(weight_file(tmp_path, "cam")), "--device", "cpu"])
    assert code == 2 and "error" in capsys.readouterr().err


def test_bench_segment_reports_times_and_memory(tmp_path, capsys):
    weights = weight_file(tmp_path, "mscam")
    assert main(["bench", "segment", "--size", "64", "--slices", "32", "--method", "mscam", "--weights", str(weights),
                 "--devices", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = report["runs"][0]
    assert run["device"] == "cpu" and run["seconds"] > 0 and run["peak_rss_mib"] > 0
    # the whole `covidweak segment` path, lungs included, split by stage
    assert list(run["stage_seconds"]) == ["read_s", "lungs_s", "network_s", "tables_s", "write_s"]
    assert run["stage_seconds"]["lungs_s"] > 0 and report["spacing_mm"] == [5.6, 5.6, 5.0]
    # the five stages and the total are each rounded to the nearest ms (up to 0.5 ms off apiece)
    assert sum(run["stage_seconds"].values()) <= run["seconds"] + 0.003
    assert report["threshold_ms"] >= 0 and report["input"] == "whole slice 64x64" and report["lung_slices"] > 0
