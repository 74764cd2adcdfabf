"""``covidweak evaluate severity``: Table 3's columns plus the constant-guess floor, on a phantom."""

from __future__ import annotations

import json

import numpy as np

from covidweak.cli import main
from covidweak.datasets import open_dataset
from covidweak.severity.cxr_evaluate import markdown_table


def test_report_rows_hold_the_metrics_and_the_constant_guess(phantom_dir, tmp_path, capsys):
    out = tmp_path / "severity.json"
    code = main(["evaluate", "severity", "--data", str(phantom_dir), "--split", "all", "--weights", "severity-light",
                 "--labels", "shipped", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    row = report["rows"]["shipped"]
    assert {"mse", "mae", "cc", "r2", "mean_auc", "constant_mse"} <= set(row)
    scored = [r for r in open_dataset(phantom_dir) if r.study_id not in {x["study_id"] for x in row["refused"]}]
    scores = [int(np.sum(r.extra["severity_array"])) for r in scored]
    assert row["studies"] == len(list(open_dataset(phantom_dir)))
    assert np.isclose(row["constant_mse"], np.var(scores))
    table = markdown_table(report)
    assert "MSE of a constant" in table and f"{row['constant_mse']:.3f}" in table
