"""Diagnosis (covidweak.diagnosis): aggregation, metrics and bootstrap intervals on known cases, the
``diagnose`` contract, bad input, and a CPU smoke run of the ``diagnosis`` training task."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.cli import main
from covidweak.diagnosis.aggregate import choose_top_k, describe, patient_probability, top_slices
from covidweak.metrics import roc_auc
from covidweak.diagnosis.metrics import (binary_metrics, bootstrap_intervals, class_metrics, confusion_matrix,
                                         plain_accuracy)
from covidweak.diagnosis.model import CLASSES, METHOD, build_diagnosis_model
from covidweak.errors import InputError, ModelError
from weakseg_fixtures import synthetic_ct, weight_file

INPUT_SIZE = 32


def test_aggregation_takes_the_least_normal_slices():
    probs = np.array([[0.05, 0.05, 0.9], [0.6, 0.2, 0.2], [0.3, 0.2, 0.5], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8]])
    assert top_slices(probs, CLASSES, 2).tolist() == [3, 1]
    assert patient_probability(probs, CLASSES, 2) == pytest.approx([0.45, 0.4, 0.15])
    assert patient_probability(probs, CLASSES, 99) == pytest.approx(probs.mean(axis=0))
    assert "2 lung slices with the lowest normal probability" in describe(CLASSES, 2)


def test_aggregation_without_a_normal_class_takes_the_most_confident_slices():
    probs = np.array([[0.5, 0.5], [0.1, 0.9], [0.7, 0.3]])
    assert patient_probability(probs, ("cap", "covid"), 2) == pytest.approx([0.4, 0.6])


def test_aggregation_of_no_slice_is_refused():
    with pytest.raises(InputError, match="no lung slice"):
        patient_probability(np.zeros((0, 3)), CLASSES, 3)


def test_top_k_is_chosen_on_patient_accuracy_with_ties_to_the_smaller_k():
    one_lesion_slice = np.array([[0.7, 0.1, 0.2]] + [[0.1, 0.1, 0.8]] * 4)  # covid, one slice shows it
    normal = np.array([[0.1, 0.1, 0.8]] * 5)
    cap = np.array([[0.1, 0.6, 0.3]] * 5)
    # k=1: all three right; k=3: the covid patient averages to [0.3, 0.1, 0.6] -> normal, 2/3 right.
    k, accuracy = choose_top_k([one_lesion_slice, normal, cap], np.array([0, 2, 1]), CLASSES, candidates=(3, 1, 5))
    assert k == 1 and accuracy == pytest.approx({1: 1.0, 3: 2 / 3, 5: 2 / 3})
    k, _ = choose_top_k([normal, cap], np.array([2, 1]), CLASSES, candidates=(5, 3))
    assert k == 3  # every k is right: the smaller one
    with pytest.raises(ValueError, match="one label per patient"):
        choose_top_k([normal], np.array([2, 1]), CLASSES)


def test_plain_accuracy_and_confusion_matrix_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .8, .1], [.1, .6, .3], [.1, .1, .8], [.5, .2, .3]])
    assert plain_accuracy(labels, probs) == pytest.approx(4 / 6)
    # row = true class, column = predicted: covid 1 right + 1 as cap, cap 2 right, normal 1 right + 1 as covid
    assert confusion_matrix(labels, probs, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # The paper's class mean of one-vs-rest accuracies is higher than the share of right answers.
    assert class_metrics(labels, probs, CLASSES)["overall"]["accuracy"] == pytest.approx((4 / 6 + 5 / 6 + 5 / 6) / 3)


def test_binary_metrics_and_auc_by_hand():
    truth = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    predicted = np.array([1, 1, 0, 1, 0, 0, 0], bool)
    m = binary_metrics(truth, predicted, predicted.astype(float))
    assert m["accuracy"] == pytest.approx(5 / 7) and m["precision"] == pytest.approx(2 / 3)
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == pytest.approx(3 / 4)
    # pairs (positive, negative): 0.9 beats both, 0.4 beats 0.1 and loses to 0.6 -> 3/4; a tie counts 1/2
    assert roc_auc(np.array([1, 1, 0, 0], bool), np.array([0.9, 0.4, 0.6, 0.1])) == pytest.approx(0.75)
    assert roc_auc(np.array([1, 0], bool), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(roc_auc(np.array([1, 1], bool), np.array([0.2, 0.3])))


def test_three_way_overall_is_the_class_mean_and_binary_the_positive_class():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .8, .1], [.1, .6, .3], [.1, .1, .8], [.5, .2, .3]])
    table = class_metrics(labels, probs, CLASSES)
    for metric in ("accuracy", "sensitivity", "auc"):
        assert table["overall"][metric] == pytest.approx(np.mean([table[c][metric] for c in CLASSES]))
    assert table["covid"]["sensitivity"] == pytest.approx(0.5) and table["cap"]["precision"] == pytest.approx(2 / 3)
    binary = class_metrics(np.array([0, 1, 1]), np.array([[.9, .1], [.2, .8], [.6, .4]]), ("normal", "covid"))
    assert binary["overall"] == binary["covid"] and binary["covid"]["sensitivity"] == pytest.approx(0.5)


def test_bootstrap_of_a_perfect_classifier_is_a_point():
    labels = np.array([0, 1, 2] * 4)
    probs = np.eye(3)[labels]
    ci = bootstrap_intervals(lambda idx: class_metrics(labels[idx], probs[idx], CLASSES),
                             [f"p{i}" for i in range(12)], resamples=200)
    assert ci["overall"]["accuracy"] == [1.0, 1.0] and ci["covid"]["auc"] == [1.0, 1.0]


def test_bootstrap_matches_the_binomial_interval():
    values = np.array([1.0, 0.0] * 200)  # 400 patients, half right: 0.5 +- 1.96 * sqrt(0.25 / 400) = +-0.049
    ci = bootstrap_intervals(lambda idx: {"mean": float(values[idx].mean())}, np.arange(400), resamples=2000)
    assert ci["mean"][0] == pytest.approx(0.451, abs=0.01) and ci["mean"][1] == pytest.approx(0.549, abs=0.01)


def test_bootstrap_resamples_patients_not_rows():
    # Patient A: 99 right rows, patient B: 1 wrong row. Drawing B twice (chance 1/4) gives 0, so the
    # 2.5th percentile is 0; a row bootstrap would give about [0.97, 1].
    values = np.array([1.0] * 99 + [0.0])
    groups = ["A"] * 99 + ["B"]
    ci = bootstrap_intervals(lambda idx: {"mean": float(values[idx].mean())}, groups, resamples=1000)
    assert ci["mean"] == [0.0, 1.0]


def diagnosis_weights(folder, classes=CLASSES, name="diagnosis.pt"):
    import torch

    from covidweak.models import save_weights

    torch.manual_seed(0)
    arch = {"classes": list(classes), "width": 0.125, "top_k": 2, "contrast_augmentation": True,
            "split": {"seed": 0, "fractions": [0.5, 0.25, 0.25]}}
    path = folder / name
    save_weights(path, build_diagnosis_model(METHOD, arch), METHOD, arch, {"input_size": INPUT_SIZE})
    return path


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A synthetic CT whose slice axis is reversed (direction z = -1), so canonical and file order differ."""
    folder = tmp_path_factory.mktemp("diagnose")
    ct, lungs = synthetic_ct()
    for image in (ct, lungs):
        image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    sitk.WriteImage(ct, str(folder / "ct.nii.gz"))
    sitk.WriteImage(lungs, str(folder / "lungs.nii.gz"))
    return folder


def test_build_model_finds_the_diagnosis_network():
    from covidweak.models.factory import build_model

    net = build_model(METHOD, {"classes": ["normal", "cap"], "width": 0.125})
    assert net.heads[0].out_channels == 2
    with pytest.raises(ValueError, match="diagnosis tasks"):
        build_diagnosis_model(METHOD, {"classes": ["covid", "flu"]})


def test_diagnose_writes_the_contract_files(case, tmp_path):
    weights = diagnosis_weights(tmp_path)
    out = tmp_path / "out"
    argv = ["diagnose", str(case / "ct.nii.gz"), "--out", str(out), "--weights", str(weights),
            "--lungs", str(case / "lungs.nii.gz"), "--device", "cpu"]
    assert main(argv) == 0
    report = json.loads((out / "diagnosis.json").read_text())
    assert report["classes"] == ["covid", "cap", "normal"]
    assert sum(report["probabilities"].values()) == pytest.approx(1.0)
    assert report["prediction"] == max(report["probabilities"], key=report["probabilities"].get)
    assert report["slices_used"] == 12 and "lowest normal probability" in report["aggregation"]
    assert set(report["model"]) == {"name", "sha256"} and report["runtime_s"] >= 0
    with open(out / "slices.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["slice", "p_covid", "p_cap", "p_normal"]
    # Lung occupies array slices 4-15; with the flipped direction these are still file slices k = 4..15.
    assert [int(r["slice"]) for r in rows] == list(range(4, 16))
    assert main(argv) == 2  # existing output without --overwrite
    assert main(argv + ["--overwrite"]) == 0


def test_a_radiograph_is_refused(tmp_path, capsys):
    path = tmp_path / "cxr.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((64, 64), -500.0, np.float32)), str(path))
    assert main(["diagnose", str(path), "--out", str(tmp_path / "o"), "--weights",
                 str(diagnosis_weights(tmp_path)), "--device", "cpu"]) == 2
    assert "3-D" in capsys.readouterr().err


def test_wrong_weight_file_and_empty_lungs_are_refused(case, tmp_path):
    from covidweak.diagnosis.predict import diagnose_ct
    from covidweak.models import load_weights

    with pytest.raises(ModelError, match="not 'diagnosis'"):
        load_weights(weight_file(tmp_path, "mscam"), method=METHOD)
    model = load_weights(diagnosis_weights(tmp_path), method=METHOD)
    ct = sitk.ReadImage(str(case / "ct.nii.gz"), sitk.sitkFloat32)
    empty = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(ct)
    with pytest.raises(InputError, match="lung mask is empty"):
        diagnose_ct(ct, model, lungs=empty, device="cpu")


SMOKE_CONFIG = {"seed": 0, "batch_size": 8, "data": {"fractions": [0.5, 0.25, 0.25]},
                "model": {"classes": "3-way", "width": 0.125, "top_k": 2},
                "params": {"augment": False, "contrast_augmentation": True, "gamma": 1.0, "val_batch_size": 8},
                "preprocess": {"input_size": INPUT_SIZE}}


@pytest.mark.slow
def test_cpu_smoke_run_lowers_the_loss(phantom_dir):
    import torch

    from covidweak.datasets import open_dataset
    from covidweak.training.task import TaskData
    from covidweak.training.tasks import get_task

    records = open_dataset(phantom_dir)
    task = get_task("diagnosis")
    task.prepare(TaskData(splits={"train": records, "val": records[:2]}), SMOKE_CONFIG)
    batch = task.train_batches(SMOKE_CONFIG, epoch=0, seed=0)[0]
    torch.manual_seed(0)
    model = task.build_model(SMOKE_CONFIG)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    losses = []
    for _ in range(15):
        loss = task.training_step(model, batch, SMOKE_CONFIG, torch.device("cpu"))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        metrics = task.validate(model, SMOKE_CONFIG, torch.device("cpu"))
    assert 0.0 <= metrics["val_slice_accuracy"] <= 1.0 and metrics["val_studies"] == 2.0
    spec = task.export_spec(SMOKE_CONFIG)
    assert spec.method == METHOD and spec.arch["classes"] == list(CLASSES) and spec.arch["split"]["seed"] == 0


@pytest.mark.slow
def test_evaluate_diagnosis_reports_tables_3_and_4(phantom_dir, tmp_path, capsys):
    weights = diagnosis_weights(tmp_path)
    out = tmp_path / "report.json"
    assert main(["evaluate", "diagnosis", "--data", str(phantom_dir), "--weights", str(weights), "--split", "all",
                 "--resamples", "100", "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads(out.read_text())
    entry = report["models"]["Joint classifier (NP/CAP/COVID-19) (CA)"]
    assert entry["studies"] == 8 and entry["patients"] == 4
    assert set(entry["metrics"]) == {"covid", "cap", "normal", "overall"}
    assert set(entry["metrics"]["overall"]["accuracy"]) == {"value", "ci95"}
    tables = capsys.readouterr().out
    assert "| Task | Accuracy (%)" in tables and "| normal (CA) |" in tables


def test_balanced_draw_gives_every_class_the_same_share():
    from covidweak.training.tasks.diagnosis import balanced_draw

    samples = [(0, (k,), 0) for k in range(50)] + [(1, (k,), 1) for k in range(5)] + [(2, (k,), 2) for k in range(20)]
    drawn = balanced_draw(samples, 61, np.random.default_rng(0))
    labels = [label for _, _, label in drawn]
    assert len(drawn) == 60 and np.bincount(labels).tolist() == [20, 20, 20]
    # the rare class repeats its 5 slices; the others are drawn without replacement
    assert len({k for _, (k,), label in drawn if label == 1}) == 5
    assert len({k for _, (k,), label in drawn if label == 0}) == 20 and len({k for _, (k,), label in drawn if label == 2}) == 20


def test_box_diagnosis_does_not_depend_on_the_field_of_view_or_pixel_size(phantom_dir):
    """The shared lung box reads the lungs at 1.4 mm whatever the CT's matrix: padding the field of view
    gives the same probabilities, and halving the pixel size nearly the same."""
    import torch

    from covidweak.datasets.phantom import read_phantom
    from covidweak.diagnosis.predict import diagnose_ct
    from covidweak.io import read_ct, read_image
    from covidweak.models.weights import LoadedModel

    record = next(r for r in read_phantom(phantom_dir) if r.diagnosis == "covid")
    ct, lungs = read_ct(record.ct_path), read_image(record.lung_mask_path)
    arch = {"classes": list(CLASSES), "width": 0.125, "top_k": 2}
    torch.manual_seed(0)
    model = LoadedModel(model=build_diagnosis_model(METHOD, arch).eval(), method=METHOD, arch=arch, path=None, sha256="",
                        preprocess={"geometry": "lung_box", "box_shape": [48, 64], "hu_window": [-1200.0, 600.0],
                                    "stack_depth": 3, "input_size": 224})

    def padded(image, value):
        return sitk.ConstantPad(image, (24, 16, 0), (24, 16, 0), value)

    def finer(image, interpolator):
        size = [2 * n for n in image.GetSize()[:2]] + [image.GetSize()[2]]
        spacing = [s / 2 for s in image.GetSpacing()[:2]] + [image.GetSpacing()[2]]
        # the same field of view: the first pixel centre moves half a new pixel towards the corner
        origin = np.array(image.GetOrigin()) - np.array(image.GetDirection()).reshape(3, 3) @ [spacing[0] / 2, spacing[1] / 2, 0]
        return sitk.Resample(image, size, sitk.Transform(), interpolator, origin.tolist(), spacing, image.GetDirection())

    base = diagnose_ct(ct, model, lungs=lungs, device="cpu")
    wide = diagnose_ct(padded(ct, -1000.0), model, lungs=padded(lungs, 0), device="cpu")
    fine = diagnose_ct(finer(ct, sitk.sitkLinear), model, lungs=finer(lungs, sitk.sitkNearestNeighbor), device="cpu")
    assert wide.slice_probs == pytest.approx(base.slice_probs, abs=1e-5)
    assert fine.slice_probs.shape == base.slice_probs.shape
    assert np.abs(fine.probability - base.probability).max() < 0.02


def test_an_unknown_class_balance_is_refused_with_the_config():
    from covidweak.training.config import build_config
    from covidweak.training.tasks import get_task

    with pytest.raises(InputError, match="'params.balance' is 'weights', choose one of loss, sampling"):
        build_config(get_task("diagnosis"), "diagnosis.box", ["params.balance=weights"])
