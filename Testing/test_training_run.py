"""covidweak train on the phantom's radiographs: run folder, exact resume, splits, export."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from covidweak.cli import main
from covidweak.errors import InputError
from covidweak.models import load_weights
from covidweak.training.checkpoint import load_checkpoint
from covidweak.training.export import export_run
from covidweak.training.runs import read_metrics
from covidweak.training.session import train

TINY = ["model.channels=[4, 8]", "model.num_res_units=1", "preprocess.size=32", "batch_size=2", "log_every=1"]


def _train(phantom_dir, out, epochs, resume=False, extra=()):
    return train("cxr-lungs", phantom_dir, out, overrides=[*TINY, f"epochs={epochs}", *extra], device="cpu",
                 resume=resume)


@pytest.mark.slow
def test_resume_continues_bit_for_bit(phantom_dir, tmp_path):
    _train(phantom_dir, tmp_path / "straight", 2, extra=["accumulate=2"])
    _train(phantom_dir, tmp_path / "resumed", 1, extra=["accumulate=2"])
    _train(phantom_dir, tmp_path / "resumed", 2, resume=True)
    straight = load_checkpoint(tmp_path / "straight/checkpoints/last.pt", "cxr-lungs")
    resumed = load_checkpoint(tmp_path / "resumed/checkpoints/last.pt", "cxr-lungs")
    assert straight["position"] == resumed["position"]
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    rows = read_metrics(tmp_path / "resumed/metrics.csv")
    assert [r["epoch"] for r in rows if r["metric"] == "dice"] == [1, 2]


def test_run_folder_holds_config_split_metrics_and_checkpoints(phantom_dir, tmp_path):
    run = tmp_path / "run"
    _train(phantom_dir, run, 1)
    for name in ("config.yaml", "run.json", "split.json", "metrics.csv", "checkpoints/last.pt",
                 "checkpoints/best.pt", "checkpoints/epoch-001.pt"):
        assert (run / name).is_file(), name
    assert any((run / "tb").iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["data_manifest_hash"].startswith("sha256:") and info["torch"] == torch.__version__
    split = json.loads((run / "split.json").read_text())
    patients = [set(split["patients"][name]) for name in ("train", "val", "test")]
    assert all(patients) and not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    with pytest.raises(InputError, match="not empty"):
        _train(phantom_dir, run, 1)
    with pytest.raises(InputError, match="trained for task 'cxr-lungs'"):
        load_checkpoint(run / "checkpoints/last.pt", "seam")


def test_export_reloads_with_its_registry_entry(phantom_dir, tmp_path):
    run, models = tmp_path / "run", tmp_path / "models"
    _train(phantom_dir, run, 1)
    assert main(["export", str(run), "--name", "lungs-tiny", "--models-dir", str(models), "--half"]) == 0
    entry = json.loads((models / "models.json").read_text())["models"][0]
    assert entry["task"] == "cxr-lungs" and entry["dtype"] == "float16" and entry["epoch"] == 1
    assert set(entry["metrics"]) >= {"dice", "dice_left", "dice_right"}
    loaded = load_weights("lungs-tiny", folder=models)
    trained = load_checkpoint(run / "checkpoints/best.pt", "cxr-lungs")["model"]
    for name, tensor in loaded.model.state_dict().items():
        assert torch.allclose(tensor, trained[name].float(), atol=1e-2, rtol=1e-3), name
    assert loaded.sha256 == entry["sha256"] and loaded.preprocess["input_size"] == 32
    config = yaml.safe_load((run / "config.yaml").read_text())
    # The split travels with the weights, so evaluation can re-create the run's val and test patients.
    assert (loaded.info["seed"], loaded.info["fractions"]) == (config["seed"], config["data"]["fractions"])
    with pytest.raises(InputError, match="already exists"):
        export_run(run, "lungs-tiny", folder=models)
    export_run(run, "lungs-tiny", folder=models, checkpoint="last", overwrite=True)
    assert len(json.loads((models / "models.json").read_text())["models"]) == 1
    # The attenuation gate is a lesion-map setting: a lung-mask network refuses it, and nothing is written.
    assert main(["export", str(run), "--name", "gated", "--models-dir", str(models), "--hu-floor", "-700"]) == 2
    assert not (models / "gated.pt").exists()


@pytest.mark.slow
def test_demo_config_lowers_the_loss(phantom_dir, tmp_path):
    train("cxr-lungs", phantom_dir, tmp_path / "demo", config_file="cxr-lungs.demo", overrides=["epochs=4"],
          device="cpu")
    losses = [r["value"] for r in read_metrics(tmp_path / "demo/metrics.csv") if r["metric"] == "loss"]
    assert len(losses) >= 8 and sum(losses[-2:]) < sum(losses[:2])


def test_an_empty_manifest_is_a_clear_error(phantom_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.csv").write_text((phantom_dir / "manifest.csv").read_text().splitlines()[0] + "\n")
    assert main(["train", "cxr-lungs", "--data", str(empty), "--out", str(tmp_path / "run")]) == 2
    assert "no rows" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_weak_training_without_a_normal_patient_is_a_clear_error(phantom_dir, tmp_path, capsys):
    # Only the COVID-19 patient's studies: positive slices but no negative patient to learn from.
    rows = (phantom_dir / "manifest.csv").read_text().splitlines()
    covid_only = tmp_path / "covid_only" / "manifest.csv"
    covid_only.parent.mkdir()
    covid_only.write_text("\n".join([rows[0], *[r for r in rows[1:] if ",covid," in r]]) + "\n")
    for row in rows[1:]:
        if ",covid," in row:
            study = row.split(",")[0]
            (covid_only.parent / study).symlink_to(phantom_dir / study)
    status = main(["train", "cam-pretrain", "--data", str(covid_only), "--out", str(tmp_path / "run"),
                   "--config", "cam-pretrain.demo", "--set", "data.fractions=[1.0, 0.0, 0.0]"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err and "needs training samples of both kinds" in err and "normal patient" in err
