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


def test_val_and_test_splits_are_the_registered_runs_patients(phantom_dir):
    """--split val / test re-create the patients of the run that trained the registered weights
    (its seed and fractions from models.json), disjoint from each other."""
    from covidweak.datasets import split_by_patient
    from covidweak.models.weights import read_registry
    from covidweak.severity.cxr_evaluate import select_studies

    records = list(open_dataset(phantom_dir))
    config = next(e for e in read_registry()["models"] if e["name"] == "severity-light")["config"]
    expected = split_by_patient(records, config["data"]["fractions"], seed=int(config["seed"]))
    chosen = {split: select_studies(records, split, "severity-light") for split in ("val", "test")}
    for split, (studies, selection) in chosen.items():
        assert [r.study_id for r in studies] == [r.study_id for r in expected[split]]
        assert selection["split"] == split and selection["studies"] == len(studies)
    assert not {r.patient_id for r in chosen["val"][0]} & {r.patient_id for r in chosen["test"][0]}
