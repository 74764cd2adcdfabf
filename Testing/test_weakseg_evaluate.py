"""Table 1 arithmetic on hand-made masks, and `covidweak evaluate weakseg` on the phantom."""

from __future__ import annotations

import json

import numpy as np
import pytest

from covidweak.cli import main
from covidweak.errors import InputError
from covidweak.weakseg.calibration import MIN_LESION_SWEEP_ML
from covidweak.weakseg.evaluate import SWEEP_T_FG, chosen_t_fg, confusion_counts, patient_metrics, select_records, table
from weakseg_fixtures import weight_file


def test_counts_and_metrics_of_a_positive_patient():
    truth = np.zeros((4, 4), dtype=np.uint8)
    truth[:2, :2] = 1  # 4 lesion pixels
    prob = np.zeros((4, 4), dtype=np.float32)
    prob[0, :3] = 0.6  # 2 true, 1 false positive at T_fg 0.5
    prob[1, 0] = 0.3  # a third true positive at T_fg 0.1 only
    counts = confusion_counts(prob, truth, [0.1, 0.5])[:, 0]
    assert counts.tolist() == [[3, 1, 1], [2, 1, 2]]
    metrics = patient_metrics(*counts[1])
    assert metrics == {"positive": True, "dice": pytest.approx(4 / 7), "recall": 0.5, "precision": pytest.approx(2 / 3)}


def test_counts_with_a_minimum_region_size():
    truth = np.zeros((1, 4, 6), dtype=np.uint8)
    truth[0, :2, :2] = 1  # 4 lesion voxels
    prob = np.zeros((1, 4, 6), dtype=np.float32)
    prob[0, :2, :3] = 0.6  # a 6-voxel region: 4 true, 2 false
    prob[0, 3, 5] = 0.6  # a 1-voxel false region
    # 0.5 mL voxels: the regions are 3 mL and 0.5 mL
    counts = confusion_counts(prob, truth, [0.5], sizes_ml=[0.0, 1.0, 5.0], voxel_ml=0.5)
    assert counts.tolist() == [[[4, 3, 0], [4, 2, 0], [0, 0, 4]]]


def test_negative_patients_follow_the_papers_convention():
    assert patient_metrics(0, 0, 0) == {"positive": False, "dice": 1.0}
    assert patient_metrics(0, 1, 0)["dice"] == 0.0
    assert patient_metrics(0, 0, 5) == {"positive": True, "dice": 0.0, "recall": 0.0, "precision": 0.0}


def test_table_means_each_group():
    patients = [patient_metrics(2, 1, 2), patient_metrics(1, 0, 0), patient_metrics(0, 0, 0), patient_metrics(0, 3, 0)]
    t = table(patients)
    assert (t["positive"]["patients"], t["negative"]["patients"], t["all"]["patients"]) == (2, 2, 4)
    assert t["positive"]["dice"]["mean"] == pytest.approx((4 / 7 + 1.0) / 2)
    assert t["negative"]["dice"]["mean"] == 0.5
    assert t["all"]["dice"]["mean"] == pytest.approx((4 / 7 + 1 + 1 + 0) / 4)


def test_without_a_recorded_seed_all_studies_are_used(phantom_dir):
    from covidweak.datasets import open_dataset

    records = open_dataset(phantom_dir)
    chosen, how = select_records(records, "test", {})
    assert chosen == records and how["split"] == "all"
    chosen, how = select_records(records, "test", {"seed": 3})
    assert 0 < len(chosen) < len(records) and how == {**how, "split": "test", "seed": 3}
    # Thresholds are chosen on the run's validation patients, which are never its test patients.
    val, how = select_records(records, "val", {"seed": 3, "fractions": [0.5, 0.25, 0.25]})
    assert val and how["split"] == "val" and not {r.patient_id for r in val} & {r.patient_id for r in chosen}
    with pytest.raises(InputError, match="no training split"):  # never all patients in place of the validation ones
        select_records(records, "val", {})


def test_t_fg_is_chosen_by_mean_dice_over_all_validation_patients():
    def row(t, dice):
        return {"t_fg": t, "all": {"dice": {"mean": dice}}}

    report = {"methods": {"cam": {"method": "cam", "split": "val", "sweep": [row(0.1, 0.4), row(0.3, 0.7), row(0.5, 0.7)]}}}
    assert chosen_t_fg(report, "cam") == 0.3  # best all-patient Dice; the tie goes to the lower threshold
    with pytest.raises(InputError, match="no T_fg sweep for unet"):
        chosen_t_fg(report, "unet")
    report["methods"]["cam"]["split"] = "test"
    with pytest.raises(InputError, match="validation patients"):
        chosen_t_fg(report, "cam")


def test_evaluate_command_on_the_phantom(phantom_dir, tmp_path, capsys):
    weights = [str(weight_file(tmp_path, m)) for m in ("mscam", "unet")]
    out = tmp_path / "report.json"
    code = main(["evaluate", "weakseg", "--data", str(phantom_dir), "--out", str(out), "--methods", "mscam", "unet",
                 "--weights", *weights, "--split", "all", "--device", "cpu"])
    assert code == 0
    report = json.loads(out.read_text())
    entry = report["methods"]["unet"]
    assert [row["t_fg"] for row in entry["sweep"]] == list(SWEEP_T_FG)
    assert entry["table"]["all"]["patients"] == 4 and entry["table"]["positive"]["patients"] >= 1
    assert all(0.0 <= p["dice"] <= 1.0 for p in entry["patients"])
    # The size sweep sits at the sweep's best threshold; its size-0 row is that threshold's row.
    sizes = entry["size_sweep"]
    best = max(entry["sweep"], key=lambda row: (row["all"]["dice"]["mean"], -row["t_fg"]))
    assert sizes["t_fg"] == best["t_fg"] and [row["min_lesion_ml"] for row in sizes["rows"]] == list(MIN_LESION_SWEEP_ML)
    assert sizes["rows"][0]["all"] == best["all"]
    printed = capsys.readouterr().out
    assert "| mscam |" in printed and "| unet: T_fg | 0.1 | 0.2 |" in printed
    assert f"| unet: min. lesion mL at T_fg {best['t_fg']} | 0 | 0.01 |" in printed
    sweep = tmp_path / "sweep.json"
    assert main(["evaluate", "weakseg", "--data", str(phantom_dir), "--out", str(sweep), "--methods", "unet",
                 "--weights", weights[1], "--split", "all", "--device", "cpu", "--sweep", "0.02", "0.05"]) == 0
    assert [row["t_fg"] for row in json.loads(sweep.read_text())["methods"]["unet"]["sweep"]] == [0.02, 0.05]
    chosen = tmp_path / "chosen.json"
    assert main(["evaluate", "weakseg", "--data", str(phantom_dir), "--out", str(chosen), "--methods", "unet",
                 "--weights", weights[1], "--split", "all", "--device", "cpu", "--t-fg-from", str(sweep)]) == 0
    report = json.loads(chosen.read_text())
    assert report["methods"]["unet"]["t_fg"] in (0.02, 0.05) and report["t_fg_chosen_on"] == str(sweep)
    assert main(["evaluate", "weakseg", "--data", str(phantom_dir), "--out", str(out), "--methods", "unet",
                 "--weights", *weights]) == 2


def test_two_weight_files_of_one_method_get_a_row_each():
    from covidweak.weakseg.evaluate import row_names

    assert row_names(["cam", "mscam"], ["a/cam-gap.pt", "b.pt"]) == ["cam", "mscam"]
    assert row_names(["cam", "cam"], ["a/cam-gap.pt", "b/cam-gmp.pt"]) == ["cam (cam-gap)", "cam (cam-gmp)"]
    assert row_names(["cam", "cam"], ["a/w.pt", "b/w.pt"]) == ["cam (w) #1", "cam (w) #2"]


def test_lesion_truth_outlives_its_image(tmp_path):
    """The ground truth of an image read inline stays valid after the image is freed.

    The first evaluation read it through ``GetArrayViewFromImage`` of a temporary image, so it
    pointed at freed memory, and negative patients were scored as positive.
    """
    import gc

    import SimpleITK as sitk

    from covidweak.weakseg.evaluate import lesion_truth

    labels = np.zeros((6, 40, 40), dtype=np.uint8)
    labels[2, 10:14, 10:14] = 3
    truth = lesion_truth(sitk.GetImageFromArray(labels))
    gc.collect()
    reuse = [sitk.GetImageFromArray(np.full((6, 40, 40), 7, dtype=np.uint8)) for _ in range(4)]
    assert truth.dtype == bool and truth.sum() == 16 and truth[2, 10:14, 10:14].all() and len(reuse) == 4
