"""The README's demo command on a small phantom: outputs, scores, and what it refuses to delete."""

from __future__ import annotations

import csv
import json

import pytest

from covidweak.cli import main


@pytest.mark.slow
def test_demo_writes_scored_results_and_reruns_only_over_its_own_output(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--patients", "3", "--studies-per-patient", "1",
            "--size", "128", "--slices", "32", "--seed", "3"]
    assert main(args) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {row["diagnosis"] for row in rows} == {"covid", "cap", "normal"}
    assert all(float(row["dice_right"]) > 0.9 and float(row["dice_left"]) > 0.9 for row in rows)
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["studies"] == 3 and summary["min_dice_left"] == min(float(r["dice_left"]) for r in rows)
    assert (out / "montage.png").stat().st_size > 10_000
    assert main(args) == 2, "a second run must not silently replace the first"
    assert main(args + ["--overwrite"]) == 0


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("a user's file")
    assert main(["demo", "--out", str(tmp_path), "--overwrite"]) == 2
    assert "not a demo output" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "a user's file"
