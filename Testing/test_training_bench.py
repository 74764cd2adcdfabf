"""``covidweak bench train``: one process times fp32, bf16 and bf16 + compile on a generated phantom."""

from __future__ import annotations

import json

from covidweak.cli import main


def test_bench_train_prints_three_variants(capsys):
    # A 1 s compile limit keeps the test fast: on 2 CPU cores inductor needs minutes, so that row is skipped.
    status = main(["bench", "train", "cxr-lungs", "--steps", "2", "--warmup", "1", "--input-size", "64",
                   "--device", "cpu", "--compile-limit", "1"])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    rows = {row["variant"]: row for row in report["variants"]}
    assert list(rows) == ["fp32 eager", "bf16", "bf16 + compile"]
    assert report["input_size"] == 64 and report["memory"] == "peak RSS rise"
    for name in ("fp32 eager", "bf16"):
        assert rows[name]["slices_per_s"] > 0
    assert rows["fp32 eager"]["x_fp32_eager"] == 1.0
    compiled = rows["bf16 + compile"]
    assert compiled.get("slices_per_s", 0) > 0 or compiled["skipped"].strip()
    table = [line for line in lines if line.startswith("| ")]
    assert table[0].startswith("| variant | slices/s")
    assert [line.split("|")[1].strip() for line in table[1:]] == ["fp32 eager", "bf16", "bf16 + compile"]
    assert "skipped: " in table[3] or "slices_per_s" in compiled


def test_bench_train_unknown_task_is_one_line_error(capsys):
    assert main(["bench", "train", "no-such-task", "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown task 'no-such-task'" in err and len(err.splitlines()) == 1
