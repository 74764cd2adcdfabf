"""Fixtures and helpers shared by the COVIDWeakSeg Logic tests.

A small phantom CT and random-initialised light networks (input 64) stand in
for a patient and trained weights: the probabilities mean nothing, but every
node, geometry and bookkeeping rule is the real one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "COVIDWeakSeg") not in sys.path:
    sys.path.insert(0, str(ROOT / "COVIDWeakSeg"))

from COVIDWeakSegLib import COVIDWeakSegLogic  # noqa: E402


@pytest.fixture(scope="module")
def study():
    from covidweak.phantom import PhantomConfig, generate_study

    return generate_study(5, 0, "covid", config=PhantomConfig(size=128, slices=32))


@pytest.fixture(scope="module")
def cam_weights(tmp_path_factory):
    import torch
    from covidweak.models import build_model, save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "cam-random.pt"
    save_weights(path, build_model("cam", {"backbone": "light"}), "cam", {"backbone": "light"}, {"input_size": 64})
    return str(path)


@pytest.fixture
def ct_volume(study, mrml_scene):
    from covidweak.slicer.mrml import volume_node_from_image

    return volume_node_from_image(study.ct, scene=mrml_scene, name="phantom CT")


@pytest.fixture
def logic(mrml_scene, tmp_path):
    return COVIDWeakSegLogic(mrml_scene, work_dir=str(tmp_path))


@pytest.fixture
def processed(logic, ct_volume, cam_weights):
    """The in-process run at a T_fg inside the random network's probability range (about 0.45-0.6)."""
    return logic.process(ct_volume, method="cam", weights=cam_weights, device="cpu", t_fg=0.52, t_bg=0.5)


def ijk_to_ras(node) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def segment_voxels(segmentation_node, name: str) -> int:
    """Voxels of one segment, counted in an export of all segments (they share one labelmap layer)."""
    import SimpleITK as sitk
    from covidweak.slicer.mrml import labels_from_segmentation_node

    labels = sitk.GetArrayViewFromImage(labels_from_segmentation_node(segmentation_node))
    segmentation = segmentation_node.GetSegmentation()
    value = segmentation.GetSegmentIndex(segmentation.GetSegmentIdBySegmentName(name)) + 1
    return int(np.count_nonzero(labels == value))


def terminology(segmentation_node, name: str) -> str:
    import vtk

    segmentation = segmentation_node.GetSegmentation()
    entry = vtk.reference("")
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(name)).GetTag("TerminologyEntry", entry)
    return str(entry)
