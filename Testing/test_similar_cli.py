"""``covidweak index build|add|remove`` and ``covidweak similar`` end to end on the test phantom.

The weights are made here: a tiny DuCN trained for a few steps on the phantom (the CLI's
mechanics, not the model's quality, are under test).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.cli import main

TINY = ["epochs=1", "batch_size=4", "params.samples_per_epoch=4", "optim.name=adam", "model.widen_factor=0.25",
        "preprocess.input_size=32"]


def _train_tiny(phantom_dir, tmp_path, seed: int):
    import torch

    from covidweak.datasets import open_dataset
    from covidweak.models.weights import save_weights
    from covidweak.training.checkpoint import load_checkpoint
    from covidweak.training.config import build_config
    from covidweak.training.loop import fit
    from covidweak.training.runs import RunFolder
    from covidweak.training.task import TaskData
    from covidweak.training.tasks import get_task

    task = get_task("ducn")
    config = build_config(task, None, TINY + [f"seed={seed}"])
    records = open_dataset(phantom_dir)
    task.prepare(TaskData(splits={"train": records, "val": records}), config)
    folder = RunFolder(tmp_path / f"run{seed}")
    folder.prepare(resume=False)
    torch.manual_seed(seed)
    fit(task, config, folder, torch.device("cpu"))
    model = task.build_model(config)
    model.load_state_dict(load_checkpoint(folder.last, "ducn")["model"])
    spec = task.export_spec(config)
    path = tmp_path / f"ducn-tiny-{seed}.pt"
    save_weights(path, model, spec.method, spec.arch, spec.preprocess, half=True)
    return path


@pytest.fixture(scope="module")
def tiny_weights(phantom_dir, tmp_path_factory):
    return _train_tiny(phantom_dir, tmp_path_factory.mktemp("ducn"), seed=0)


@pytest.fixture(scope="module")
def built_index(phantom_dir, tiny_weights, tmp_path_factory):
    """An index of the whole phantom, built in two runs: the first cancelled after three studies."""
    from covidweak.errors import CancelledError
    from covidweak.datasets import open_dataset
    from covidweak.models import load_weights
    from covidweak.progress import Progress
    from covidweak.index import CaseIndex
    from covidweak.similar.library import add_records

    folder = tmp_path_factory.mktemp("index") / "library"
    loaded = load_weights(tiny_weights, method="ducn")
    index = CaseIndex.open_or_create(folder, loaded.sha256)
    progress = Progress()

    def stop_after_three(done, total, message):
        if done == 3:
            progress.cancel()

    progress._callback = stop_after_three
    with pytest.raises(CancelledError):
        add_records(index, open_dataset(phantom_dir), loaded, progress=progress)
    return folder, len(index)


@pytest.mark.slow
def test_build_resumes_after_interruption(built_index, phantom_dir, tiny_weights, capsys):
    from covidweak.index import CaseIndex

    folder, interrupted_at = built_index
    assert interrupted_at == 3
    assert main(["index", "build", "--data", str(phantom_dir), "--out", str(folder), "--weights", str(tiny_weights),
                 "--device", "cpu"]) == 0
    assert "(3 were already indexed)" in capsys.readouterr().out
    index = CaseIndex.open(folder)
    assert len(index) == 8 and len(set(index.study_ids())) == 8


@pytest.mark.slow
def test_similar_writes_the_contract(built_index, phantom_dir, tiny_weights, tmp_path):
    from covidweak.datasets import open_dataset

    folder, _ = built_index
    record = open_dataset(phantom_dir)[0]
    out = tmp_path / "similar.json"
    args = ["similar", str(record.ct_path), "--index", str(folder), "--k", "3", "--lungs", str(record.lung_mask_path),
            "--weights", str(tiny_weights), "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    document = json.loads(out.read_text())
    assert document["k"] == 3 and document["index"]["studies"] == 8 and document["query"]["slice"] is None
    assert document["ranking"] == "aggregate"  # a whole study is ranked by the studies' centroids
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(record.lung_mask_path)))
    assert 0 < document["query"]["slices"] <= int((lungs.reshape(lungs.shape[0], -1) > 0).any(axis=1).sum())
    results = document["results"]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert set(results[0]) == {"rank", "study_id", "patient_id", "diagnosis", "lesions", "distance", "source_path",
                               "query_slice", "match_slice"}
    # Why a case was suggested: its lesions in words, from the phantom's lesion table.
    assert all(r["lesions"] == "no lesions" or " mL: " in r["lesions"] for r in results)
    # The query itself is in the library: it is found first, at distance 0 on the same slice.
    assert results[0]["study_id"] == record.study_id and results[0]["distance"] == pytest.approx(0, abs=1e-3)
    assert results[0]["query_slice"] == results[0]["match_slice"]
    assert np.all(np.diff([r["distance"] for r in results]) >= 0)
    assert main(args) == 2  # refuses to overwrite

    one = tmp_path / "one.json"
    k_slice = results[0]["query_slice"]
    assert main(args[:-1] + [str(one), "--slice", str(k_slice)]) == 0
    single = json.loads(one.read_text())
    assert single["query"] == {"path": str(record.ct_path.resolve()), "slices": 1, "slice": k_slice}
    assert single["ranking"] == "slice_pair"  # one slice is matched to the nearest library slice
    assert single["results"][0]["distance"] == pytest.approx(0, abs=1e-3)  # that very slice is in the library
    assert all(r["query_slice"] == k_slice for r in single["results"])


@pytest.mark.slow
def test_add_and_remove(built_index, phantom_dir, tiny_weights, capsys):
    from covidweak.datasets import open_dataset
    from covidweak.index import CaseIndex

    folder, _ = built_index
    record = open_dataset(phantom_dir)[1]
    assert main(["index", "remove", str(folder), record.study_id]) == 0
    assert not CaseIndex.open(folder).has_study(record.study_id)
    assert main(["index", "add", str(folder), str(phantom_dir), "--weights", str(tiny_weights), "--device", "cpu"]) == 2
    assert "already in" in capsys.readouterr().err
    copy = folder.parent / "extra" / "query-ct.nii.gz"
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes(record.ct_path.read_bytes())
    assert main(["index", "add", str(folder), str(copy), "--diagnosis", "covid", "--weights", str(tiny_weights),
                 "--device", "cpu"]) == 0
    added = CaseIndex.open(folder).study("query-ct")
    assert added["patient_id"] == "query-ct" and added["diagnosis"] == "covid"
    assert main(["index", "remove", str(folder), "query-ct"]) == 0


@pytest.mark.slow
def test_bad_inputs(built_index, phantom_dir, tiny_weights, tmp_path, capsys):
    from covidweak.datasets import open_dataset
    from covidweak.index import CaseIndex

    folder, _ = built_index
    record = open_dataset(phantom_dir)[0]
    common = ["--index", str(folder), "--weights", str(tiny_weights), "--device", "cpu"]

    size = len(CaseIndex.open(folder))
    assert main(["similar", str(record.ct_path), "--k", str(size + 1), "--out", str(tmp_path / "a.json"), *common]) == 2
    assert f"larger than the index's {size} studies" in capsys.readouterr().err

    # A solid soft-tissue body in air: a plausible CT in HU, but nothing inside it is lung.
    yy, xx = np.mgrid[:64, :64]
    body = np.where((yy - 32) ** 2 + (xx - 32) ** 2 < 28 ** 2, 40, -1000).astype(np.int16)
    soft_tissue = sitk.GetImageFromArray(np.repeat(body[None], 16, axis=0))
    soft_tissue.SetSpacing((5.0, 5.0, 5.0))
    no_lungs = tmp_path / "no-lungs.nii.gz"
    sitk.WriteImage(soft_tissue, str(no_lungs))
    assert main(["similar", str(no_lungs), "--k", "1", "--out", str(tmp_path / "b.json"), *common]) == 2
    assert "lung" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()

    other = _train_tiny(phantom_dir, tmp_path, seed=1)
    assert main(["similar", str(record.ct_path), "--index", str(folder), "--k", "1", "--weights", str(other),
                 "--device", "cpu", "--out", str(tmp_path / "c.json")]) == 2
    assert "rebuild the index" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_ducn_report(phantom_dir, tiny_weights, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["evaluate", "ducn", "--data", str(phantom_dir), "--weights", str(tiny_weights), "--device", "cpu",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["selection"]["split"] == "all"  # a weight file records no split: every study is used
    assert report["detection"]["studies"] == 8
    assert set(report["detection"]["slice"]) == {"sensitivity", "specificity", "precision", "f1", "accuracy", "auc"}
    same_patient = report["retrieval"]["same_patient"]
    assert same_patient["queries"] == 8 and 0 <= same_patient["map"] <= 1
    assert same_patient["chance_precision"] == pytest.approx(1 / 7)  # one follow-up among 7 other studies
    similarity = report["lesion_similarity"]
    model = "this model, study centroids (the index's default)"
    assert set(similarity) == {model, "this model, best slice pair", "lesion volume only (true volumes)"}
    # every study queries the 6 studies of the 3 other patients
    assert similarity[model]["queries"] == 8 and 0 < similarity[model]["ndcg_at_5"] <= 1
    printed = capsys.readouterr().out
    assert "| same_patient | 8 |" in printed and "| lesion volume only (true volumes) | 8 |" in printed
