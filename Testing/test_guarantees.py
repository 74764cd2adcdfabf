"""Guarantees a user relies on without reading the code (issue #7).

* No user node is modified or deleted: each module Logic runs end to end on a
  real MRML scene that also holds a user's volume, segmentation and table, and
  every node that was there before is still there with the same modification
  time and content.
* Outputs are written atomically: a write interrupted half-way leaves nothing
  under the final name (deterministic, by failing the writer), and a
  ``covidweak segment`` child killed while writing leaves only complete files.
* A cancelled run leaves no half-written files: cancelling through
  :class:`covidweak.progress.Progress` during ``segment`` writes nothing, and
  during an index build keeps exactly the studies committed before the cancel.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak import cli
from covidweak.errors import CancelledError, CovidWeakError
from covidweak.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
for module in ("COVIDWeakSeg", "COVIDSeverity", "COVIDSimilarCase"):
    if str(ROOT / module) not in sys.path:
        sys.path.insert(0, str(ROOT / module))

from COVIDSeverityLib import COVIDSeverityLogic  # noqa: E402
from COVIDSimilarCaseLib import COVIDSimilarCaseLogic  # noqa: E402
from COVIDWeakSegLib import COVIDWeakSegLogic  # noqa: E402


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """Two covid phantom studies at 64x64x24: enough for a segment, a CXR score and a 2-study index."""
    from covidweak.phantom import PhantomConfig, generate_dataset

    out = tmp_path_factory.mktemp("phantom")
    generate_dataset(out, config=PhantomConfig(size=64, slices=24), mix={"covid": 1.0}, patients=2,
                     studies_per_patient=1, seed=8)
    return out


@pytest.fixture(scope="module")
def index_dir(small_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("index") / "index"
    assert cli.main(["index", "build", "--data", str(small_data), "--out", str(folder), "--device", "cpu"]) == 0
    return folder


def first_ct(small_data: Path) -> Path:
    return sorted(small_data.glob("*/ct.nii.gz"))[0]


# ---------------------------------------------------------------- user nodes


def add_user_nodes(scene, small_data: Path) -> dict:
    """The user's own nodes: the CT they will run on, another volume, a segmentation and a table."""
    import vtk
    from covidweak.slicer.mrml import volume_node_from_image

    ct = volume_node_from_image(sitk.ReadImage(str(first_ct(small_data)), sitk.sitkFloat32), scene=scene,
                                name="user CT")
    other = volume_node_from_image(sitk.ReadImage(str(first_ct(small_data).parent / "lungs.nii.gz")), scene=scene,
                                   name="user lungs")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "user segmentation")
    segmentation.GetSegmentation().AddEmptySegment("user", "user tumour")
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", "user table")
    column = vtk.vtkStringArray()
    column.SetName("note")
    column.InsertNextValue("keep me")
    table.AddColumn(column)
    cxr = volume_node_from_image(sitk.ReadImage(str(first_ct(small_data).parent / "cxr.nii.gz"), sitk.sitkFloat32),
                                 scene=scene, name="user CXR")
    return {"ct": ct, "cxr": cxr, "other": other, "segmentation": segmentation, "table": table}


def content(node) -> str:
    """A digest of what the user sees in ``node``: voxels and geometry, segments, or table cells."""
    digest = hashlib.sha256(node.GetName().encode())
    if node.IsA("vtkMRMLScalarVolumeNode"):
        from vtk.util.numpy_support import vtk_to_numpy

        digest.update(vtk_to_numpy(node.GetImageData().GetPointData().GetScalars()).tobytes())
        digest.update(repr((node.GetSpacing(), node.GetOrigin())).encode())
    elif node.IsA("vtkMRMLSegmentationNode"):
        segmentation = node.GetSegmentation()
        digest.update(repr([segmentation.GetNthSegment(i).GetName()
                            for i in range(segmentation.GetNumberOfSegments())]).encode())
    elif node.IsA("vtkMRMLTableNode"):
        table = node.GetTable()
        digest.update(repr([[table.GetValue(r, c).ToString() for c in range(table.GetNumberOfColumns())]
                            for r in range(table.GetNumberOfRows())]).encode())
    return digest.hexdigest()


def snapshot(nodes: dict) -> dict:
    return {role: (node.GetID(), node.GetMTime(), content(node)) for role, node in nodes.items()}


def assert_untouched(scene, nodes: dict, before: dict) -> None:
    for role, (node_id, mtime, digest) in before.items():
        node = scene.GetNodeByID(node_id)
        assert node is nodes[role], f"user node '{role}' was removed or replaced"
        assert node.GetMTime() == mtime, f"user node '{role}' was modified"
        assert content(node) == digest, f"content of user node '{role}' changed"


@pytest.fixture(scope="module")
def cam_weights(tmp_path_factory) -> str:
    """Random-init light CAM weights: the Logic's bookkeeping is what is tested, not the lesions."""
    import torch
    from covidweak.models import build_model, save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "cam-random.pt"
    save_weights(path, build_model("cam", {"backbone": "light"}), "cam", {"backbone": "light"}, {"input_size": 64})
    return str(path)


@pytest.mark.slow
def test_weakseg_process_leaves_user_nodes_alone(mrml_scene, small_data, cam_weights, tmp_path):
    nodes = add_user_nodes(mrml_scene, small_data)
    before = snapshot(nodes)
    created = COVIDWeakSegLogic(mrml_scene, work_dir=str(tmp_path)).process(
        nodes["ct"], method="cam", weights=cam_weights, device="cpu", t_fg=0.52, t_bg=0.5)
    assert created.probability is not None
    assert_untouched(mrml_scene, nodes, before)


@pytest.mark.slow
def test_severity_process_leaves_user_nodes_alone(mrml_scene, small_data, tmp_path):
    nodes = add_user_nodes(mrml_scene, small_data)
    before = snapshot(nodes)
    created = COVIDSeverityLogic(mrml_scene, work_dir=str(tmp_path)).process(nodes["cxr"], device="cpu")
    assert created.modality == "cxr"
    assert_untouched(mrml_scene, nodes, before)


@pytest.mark.slow
def test_similar_search_leaves_user_nodes_alone(mrml_scene, small_data, index_dir, tmp_path):
    nodes = add_user_nodes(mrml_scene, small_data)
    before = snapshot(nodes)
    table = COVIDSimilarCaseLogic(mrml_scene, work_dir=str(tmp_path)).search(nodes["ct"], index_dir=str(index_dir), k=1)
    assert table.GetNumberOfRows() == 1
    assert_untouched(mrml_scene, nodes, before)


# ---------------------------------------------------------------- atomic writes


def test_interrupted_image_write_leaves_no_file(tmp_path, monkeypatch):
    """SimpleITK dies half-way through the file: neither the final name nor a temporary file remains."""
    from covidweak.io import write_image

    def half_then_fail(image, name, *args, **kwargs):
        Path(name).write_bytes(b"\x5c\x01\x00\x00 half a header")
        raise KeyboardInterrupt

    monkeypatch.setattr(sitk, "WriteImage", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_image(sitk.Image(4, 4, 4, sitk.sitkUInt8), tmp_path / "labels.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_text_write_keeps_the_old_file(tmp_path, monkeypatch):
    from covidweak.io.atomic import write_text

    target = tmp_path / "summary.json"
    target.write_text("old")

    def fail_at_rename(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail_at_rename)
    with pytest.raises(KeyboardInterrupt):
        write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def complete_outputs(out_dir: Path) -> list[str]:
    """The final-name files of a segment output folder, each checked to read completely."""
    from covidweak.io import read_image
    from covidweak.weakseg.outputs import OUTPUT_FILES

    found = []
    for name in OUTPUT_FILES.values():
        path = out_dir / name
        if not path.exists():
            continue
        if name.endswith(".nii.gz"):
            read_image(path)  # raises InputError for a truncated file
        else:
            assert path.read_text(encoding="utf-8").strip(), f"{name} is empty"
        found.append(name)
    return found


@pytest.mark.slow
def test_killed_segment_child_leaves_only_complete_files(small_data, tmp_path):
    """SIGKILL as soon as the output folder appears (the writes have just begun)."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "covidweak", "segment", str(first_ct(small_data)), "--out", str(out),
               "--method", "cam", "--weights", "cam-light", "--device", "cpu"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        while child.poll() is None and not out.exists():
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    if out.exists():
        complete_outputs(out)


# ---------------------------------------------------------------- cancellation


def cancelling_progress(when) -> Progress:
    """A Progress whose user presses Cancel at the first update for which ``when(done)`` is true."""
    def callback(done, total, message):
        if when(done):
            progress.cancel()

    progress = Progress(callback)
    return progress


def test_cancelled_segment_writes_nothing(small_data, tmp_path, monkeypatch):
    from covidweak.commands import segment

    monkeypatch.setattr("covidweak.progress.tqdm_progress", lambda desc="": cancelling_progress(lambda done: done >= 1))
    out = tmp_path / "out"
    with pytest.raises(CancelledError):
        segment.run(cli.build_parser().parse_args(
            ["segment", str(first_ct(small_data)), "--out", str(out), "--method", "cam", "--device", "cpu"]))
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.slow
def test_cancelled_index_build_keeps_only_whole_studies(small_data, tmp_path):
    from covidweak.datasets import open_dataset
    from covidweak.index import CaseIndex
    from covidweak.index.storage import TEMP_FILE
    from covidweak.similar.library import add_records, load_ducn

    records = open_dataset(small_data)
    loaded, device = load_ducn("ducn-light", "cpu")
    index = CaseIndex.open_or_create(tmp_path / "index", loaded.sha256)
    # Cancel once the index holds one study, i.e. between the first and the second commit.
    progress = cancelling_progress(lambda done: len(index) >= 1)
    with pytest.raises(CancelledError):
        add_records(index, records, loaded, device, progress=progress)
    assert not [p.name for p in (tmp_path / "index").iterdir() if TEMP_FILE.match(p.name)]
    reopened = CaseIndex.open(tmp_path / "index")
    assert reopened.study_ids() == [records[0].study_id]
    assert reopened.num_slices == reopened.study(records[0].study_id)["num_slices"]


def test_cancel_before_start_is_a_covidweak_error():
    progress = Progress()
    progress.cancel()
    with pytest.raises(CovidWeakError, match="cancelled"):
        progress.check()
