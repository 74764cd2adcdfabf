"""Dataset readers on tiny fixtures in each dataset's on-disk layout, auto-detection, and patient splits."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import TINY_SHAPE, make_cc_ccii, make_covid19_ct_seg, make_mosmeddata, write_volume

from covidweak.datasets import (
    detect_kind,
    load_cc_ccii_volume,
    open_dataset,
    read_cc_ccii,
    read_covid19_ct_seg,
    read_manifest,
    read_mosmeddata,
    read_phantom,
    read_split,
    split_by_patient,
    write_split,
)
from covidweak.errors import InputError
from covidweak.records import StudyRecord


# --- COVID-19-CT-Seg (Ma et al.) --------------------------------------------

def test_covid19_ct_seg_pairs_masks_and_patients(tmp_path):
    records = read_covid19_ct_seg(make_covid19_ct_seg(tmp_path))
    by_id = {r.study_id: r for r in records}
    assert set(by_id) == {"coronacases_001", "coronacases_002", "radiopaedia_10_85902_1", "radiopaedia_10_85902_3"}
    case = by_id["radiopaedia_10_85902_3"]
    assert case.ct_path.name == "radiopaedia_org_covid-19-pneumonia-10_85902_3-dcm.nii.gz"
    assert case.lung_mask_path == tmp_path / "Lung_Mask" / "radiopaedia_10_85902_3.nii.gz"
    assert case.lesion_mask_path == tmp_path / "Infection_Mask" / "radiopaedia_10_85902_3.nii.gz"
    assert case.extra["lung_label_map"] == {1: 2, 2: 1}
    # Two series of radiopaedia case 10 are one patient, numbered in series order.
    assert case.patient_id == by_id["radiopaedia_10_85902_1"].patient_id == "radiopaedia_10"
    assert (by_id["radiopaedia_10_85902_1"].study_index, case.study_index) == (0, 1)
    assert {r.diagnosis for r in records} == {"covid"} and {r.source for r in records} == {"covid19-ct-seg"}


def test_covid19_ct_seg_kaggle_names_and_ct_only(tmp_path):
    write_volume(tmp_path / "ct_scans" / "coronacases_org_003.nii")
    # Kaggle's zip unpacks some files into a same-named folder: x.nii/x.nii
    nested = write_volume(tmp_path / "ct_scans" / "coronacases_org_004.nii" / "coronacases_org_004.nii")
    records = read_covid19_ct_seg(tmp_path)
    assert [r.study_id for r in records] == ["coronacases_003", "coronacases_004"]
    assert records[1].ct_path == nested
    assert all(r.lung_mask_path is None and r.lesion_mask_path is None for r in records)


def test_covid19_ct_seg_missing_mask_is_reported(tmp_path):
    make_covid19_ct_seg(tmp_path)
    (tmp_path / "Infection_Mask" / "coronacases_002.nii.gz").unlink()
    with pytest.raises(InputError, match="coronacases_002"):
        read_covid19_ct_seg(tmp_path)


# --- MosMedData ----------------------------------------------------------------

def test_mosmeddata_categories_and_masks(tmp_path):
    records = read_mosmeddata(make_mosmeddata(tmp_path))
    by_id = {r.study_id: r for r in records}
    assert len(records) == 6
    assert by_id["study_0001"].diagnosis == "normal" and by_id["study_0001"].extra["severity_category"] == 0
    assert by_id["study_1100"].diagnosis == "covid" and by_id["study_1100"].extra["severity_category"] == 4
    assert by_id["study_0255"].lesion_mask_path == tmp_path / "masks" / "study_0255_mask.nii.gz"
    assert by_id["study_0256"].lesion_mask_path is None
    assert all(r.patient_id == r.study_id for r in records)


def test_mosmeddata_without_studies_folder(tmp_path):
    with pytest.raises(InputError, match="studies/"):
        read_mosmeddata(tmp_path)


# --- CC-CCII ---------------------------------------------------------------------

def test_cc_ccii_records_per_scan(tmp_path):
    records = read_cc_ccii(make_cc_ccii(tmp_path))
    by_id = {r.study_id: r for r in records}
    assert len(records) == 5
    assert Counter(r.diagnosis for r in records) == {"covid": 3, "cap": 1, "normal": 1}
    follow_up = by_id["NCP-1-1002"]
    assert follow_up.patient_id == "NCP-1" and follow_up.study_index == 1 and follow_up.ct_path.is_dir()
    assert by_id["CP-1-2001"].patient_id == "CP-1"  # same number, other class: another patient
    assert follow_up.extra["n_slices"] == 4


def test_cc_ccii_volume_sorted_by_slice_number(tmp_path):
    make_cc_ccii(tmp_path, slices=12)  # 0.png .. 11.png: "10" sorts before "2" as text
    image = load_cc_ccii_volume(tmp_path / "NCP" / "1" / "1001", spacing=(0.7, 0.7, 5.0))
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(image)
    assert array.shape == (12, 12, 10) and array.dtype == np.uint8
    np.testing.assert_array_equal(array[:, 0, 0], 10 * np.arange(12))
    assert image.GetSpacing() == pytest.approx((0.7, 0.7, 5.0))


def test_cc_ccii_mismatched_slice_size(tmp_path):
    from PIL import Image

    make_cc_ccii(tmp_path)
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(tmp_path / "CP" / "1" / "2001" / "9.png")
    with pytest.raises(InputError, match="share one size"):
        load_cc_ccii_volume(tmp_path / "CP" / "1" / "2001")


def test_cc_ccii_empty_scan_folder(tmp_path):
    make_cc_ccii(tmp_path)
    (tmp_path / "Normal" / "7" / "3002").mkdir()
    with pytest.raises(InputError, match="3002"):
        read_cc_ccii(tmp_path)


# --- generic manifest -----------------------------------------------------------------

def _write_csv(path: Path, header, rows) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_manifest_reads_relative_paths_and_aliases(tmp_path):
    write_volume(tmp_path / "a.nii.gz")
    write_volume(tmp_path / "b.nii.gz")
    write_volume(tmp_path / "b_mask.nii.gz", 1, np.uint8)
    manifest = _write_csv(tmp_path / "list.csv", ["path", "label", "patient_id", "mask", "site"],
                          [["a.nii.gz", "COVID-19", "p1", "", "x"], ["b.nii.gz", "Normal", "p1", "b_mask.nii.gz", ""]])
    records = read_manifest(manifest)
    assert [r.study_id for r in records] == ["a", "b"]
    assert [r.diagnosis for r in records] == ["covid", "normal"]
    assert [r.study_index for r in records] == [0, 1]
    assert records[0].lesion_mask_path is None and records[1].lesion_mask_path == tmp_path / "b_mask.nii.gz"
    assert records[0].extra == {"site": "x"}


@pytest.mark.parametrize(
    "header, row, message",
    [
        (["path", "label"], ["a.nii.gz", "covid"], "patient_id"),
        (["path", "label", "patient_id"], ["missing.nii.gz", "covid", "p"], "not found"),
        (["path", "label", "patient_id"], ["a.nii.gz", "flu", "p"], "unknown label 'flu'"),
        (["path", "label", "patient_id"], ["a.nii.gz", "covid", ""], "patient_id is empty"),
    ],
)
def test_manifest_errors_name_the_problem(tmp_path, header, row, message):
    write_volume(tmp_path / "a.nii.gz")
    with pytest.raises(InputError, match=message):
        read_manifest(_write_csv(tmp_path / "m.csv", header, [row]))


def test_manifest_duplicate_study_ids(tmp_path):
    write_volume(tmp_path / "a.nii.gz")
    manifest = _write_csv(tmp_path / "m.csv", ["path", "label", "patient_id"],
                          [["a.nii.gz", "covid", "p"], ["a.nii.gz", "covid", "q"]])
    with pytest.raises(InputError, match="occurs twice"):
        read_manifest(manifest)


# --- phantom manifest -------------------------------------------------------------------

PHANTOM_COLUMNS = ["study_id", "patient_id", "study_index", "diagnosis", "ct", "lungs", "lesions",
                   "cxr", "cxr_lungs", "meta", "n_lesions", "severity_global"]


def _hand_phantom(root: Path, slice_labels) -> Path:
    study = root / "P000_S0"
    for name in ("ct", "lungs", "lesions"):
        write_volume(study / f"{name}.nii.gz")
    meta = {"study_id": "P000_S0", "patient_id": "P000", "study_index": 0, "diagnosis": "covid", "seed": 3,
            "size": 16, "slices": TINY_SHAPE[0], "spacing": [0.8, 0.8, 2.5], "slice_labels": slice_labels,
            "severity_array": [0, 1, 0, 0, 1, 0], "severity_global": 2, "lesions": [], "generator_version": "1"}
    (study / "meta.json").write_text(json.dumps(meta))
    _write_csv(root / "manifest.csv", PHANTOM_COLUMNS,
               [["P000_S0", "P000", "0", "covid", "P000_S0/ct.nii.gz", "P000_S0/lungs.nii.gz",
                 "P000_S0/lesions.nii.gz", "", "", "P000_S0/meta.json", "2", "2"]])
    return root


def test_phantom_reader_on_hand_written_folder(tmp_path):
    labels = ["negative", "unknown", "positive", "positive", "unknown", "negative", "negative", "negative"]
    records = read_phantom(_hand_phantom(tmp_path, labels))
    (record,) = records
    assert record.slice_labels == labels and record.diagnosis == "covid" and record.source == "phantom"
    assert record.ct_path == tmp_path / "P000_S0" / "ct.nii.gz"
    assert record.extra["severity_global"] == 2 and "cxr_path" not in record.extra
    assert detect_kind(tmp_path) == "phantom" and detect_kind(tmp_path / "manifest.csv") == "phantom"


def test_phantom_reader_rejects_bad_slice_labels(tmp_path):
    with pytest.raises(InputError, match="slice_labels"):
        read_phantom(_hand_phantom(tmp_path, ["positive"] * 3))
    with pytest.raises(InputError, match="maybe"):
        read_phantom(_hand_phantom(tmp_path, ["maybe"] * TINY_SHAPE[0]))


def test_phantom_reader_on_generated_phantom(phantom_dir):
    records = open_dataset(phantom_dir)
    assert records and all(r.source == "phantom" for r in records)
    for record in records:
        assert record.ct_path.is_file() and record.lung_mask_path.is_file()
        assert len(record.slice_labels) == record.extra["slices"]
    splits = split_by_patient(records)
    assert sum(len(v) for v in splits.values()) == len(records)


# --- detection ------------------------------------------------------------------------------

def test_open_dataset_detects_each_layout(tmp_path):
    make_covid19_ct_seg(tmp_path / "ma")
    make_mosmeddata(tmp_path / "mosmed")
    make_cc_ccii(tmp_path / "ccii")
    assert detect_kind(tmp_path / "ma") == "covid19-ct-seg"
    assert detect_kind(tmp_path / "mosmed") == "mosmeddata"
    assert detect_kind(tmp_path / "ccii") == "cc-ccii"
    assert len(open_dataset(tmp_path / "ccii")) == 5
    assert len(open_dataset(tmp_path / "mosmed", kind="mosmeddata")) == 6


def test_open_dataset_unknown_layout_lists_supported(tmp_path):
    (tmp_path / "random").mkdir()
    with pytest.raises(InputError, match="covid19-ct-seg.*mosmeddata.*cc-ccii"):
        open_dataset(tmp_path / "random")
    with pytest.raises(InputError, match="unknown dataset kind"):
        open_dataset(tmp_path / "random", kind="luna")


def test_datasets_package_does_not_import_torch():
    import subprocess

    code = "import sys, covidweak.datasets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- patient splits ------------------------------------------------------------------------------

def _records(n_patients: int, studies_per_patient: int = 2, diagnoses=("covid", "cap", "normal")):
    return [
        StudyRecord(study_id=f"p{p}_s{s}", patient_id=f"p{p}", diagnosis=diagnoses[p % len(diagnoses)],
                    ct_path=Path(f"p{p}_s{s}.nii.gz"), source="manifest", study_index=s)
        for p in range(n_patients) for s in range(studies_per_patient)
    ]


def _patients(split):
    return {r.patient_id for r in split}


def test_split_keeps_patients_together_and_is_deterministic():
    records = _records(40)
    splits = split_by_patient(records, seed=3)
    assert [len(_patients(splits[k])) for k in ("train", "val", "test")] == [28, 6, 6]
    assert not (_patients(splits["train"]) & _patients(splits["val"]))
    assert not (_patients(splits["train"]) & _patients(splits["test"]))
    assert not (_patients(splits["val"]) & _patients(splits["test"]))
    assert sum(len(v) for v in splits.values()) == len(records)
    again = split_by_patient(list(reversed(records)), seed=3)
    assert {k: _patients(v) for k, v in again.items()} == {k: _patients(v) for k, v in splits.items()}
    other = split_by_patient(records, seed=4)
    assert {k: _patients(v) for k, v in other.items()} != {k: _patients(v) for k, v in splits.items()}


def test_split_stratifies_each_diagnosis():
    splits = split_by_patient(_records(60, 1), seed=0)
    for name, expected in (("train", 14), ("val", 3), ("test", 3)):
        assert Counter(r.diagnosis for r in splits[name]) == {"covid": expected, "cap": expected, "normal": expected}


def test_split_small_dataset_still_has_test_patient():
    splits = split_by_patient(_records(4), seed=0)
    assert [len(_patients(splits[k])) for k in ("train", "val", "test")] == [2, 1, 1]


def test_split_rejects_bad_fractions():
    with pytest.raises(InputError, match="fractions"):
        split_by_patient(_records(5), fractions=(0.5, 0.5, 0.5))


def test_split_file_round_trip_and_mismatch(tmp_path):
    records = _records(10)
    splits = split_by_patient(records, seed=1)
    path = write_split(tmp_path / "run" / "split.json", splits, seed=1, fractions=(0.7, 0.15, 0.15))
    document = json.loads(path.read_text())
    assert document["seed"] == 1 and set(document["patients"]) == {"train", "val", "test"}
    restored = read_split(path, list(reversed(records)))
    assert {k: [r.study_id for r in v] for k, v in restored.items()} == {k: [r.study_id for r in v] for k, v in splits.items()}
    with pytest.raises(InputError, match="missing from the dataset"):
        read_split(path, records[:-2])
    grown = records + _records(11)[-2:]
    with pytest.raises(InputError, match="not in split file"):
        read_split(path, grown)
    assert sum(len(v) for v in read_split(path, grown, allow_new=True).values()) == len(records)


def test_split_file_with_leaking_patient_is_rejected(tmp_path):
    records = _records(6)
    splits = split_by_patient(records, seed=0)
    path = write_split(tmp_path / "split.json", splits)
    document = json.loads(path.read_text())
    moved = document["studies"]["train"].pop()
    document["studies"]["test"].append(moved)
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match="in both"):
        read_split(path, records)
