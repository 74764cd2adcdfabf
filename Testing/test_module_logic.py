"""The three module Logics and their shared parameter helpers, on a real MRML scene.

The Slicer self-tests (``<Module>Test`` classes) call these same Logic methods.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for _module in ("COVIDWeakSeg", "COVIDSeverity", "COVIDSimilarCase"):
    if str(ROOT / _module) not in sys.path:
        sys.path.insert(0, str(ROOT / _module))

from COVIDSeverityLib import COVIDSeverityLogic  # noqa: E402
from COVIDSimilarCaseLib import COVIDSimilarCaseLogic  # noqa: E402
from COVIDWeakSegLib import COVIDWeakSegLogic  # noqa: E402
from COVIDWeakSegLib.logic import lung_volumes_ml  # noqa: E402

from covidweak.errors import CancelledError, InputError  # noqa: E402
from covidweak.slicer.parameters import TypedParameters, get_parameter_node  # noqa: E402
from covidweak.progress import Progress  # noqa: E402


@pytest.fixture(scope="module")
def study():
    from covidweak.phantom import PhantomConfig, generate_study

    return generate_study(5, 0, "covid", config=PhantomConfig(size=128, slices=32))


@pytest.fixture
def ct_volume(study, mrml_scene):
    from covidweak.slicer.mrml import volume_node_from_image

    return volume_node_from_image(study.ct, scene=mrml_scene, name="phantom CT")


@pytest.fixture
def cxr_volume(study, mrml_scene):
    from covidweak.slicer.mrml import volume_node_from_image

    return volume_node_from_image(study.cxr, scene=mrml_scene, name="phantom CXR")


def segmentation_nodes(scene) -> list:
    return [scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
            for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"))]


def segment_names(node) -> list[str]:
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]


# ---------------------------------------------------------------- parameters


def test_parameter_node_is_a_singleton_per_module(mrml_scene):
    first = get_parameter_node(mrml_scene, "COVIDWeakSeg")
    assert get_parameter_node(mrml_scene, "COVIDWeakSeg") is first
    assert get_parameter_node(mrml_scene, "COVIDSeverity") is not first
    assert first.GetAttribute("ModuleName") == "COVIDWeakSeg"
    assert mrml_scene.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode") == 2


def test_defaults_types_and_bounds(mrml_scene):
    params = COVIDWeakSegLogic(mrml_scene).parameters
    assert (params.t_fg, params.t_bg, params.input_volume) == (0.1, 0.01, None)
    params.t_fg = "0.3"
    assert params.t_fg == 0.3 and isinstance(params.t_fg, float)
    with pytest.raises(InputError, match=r"t_fg=1.5 is outside \[0.0, 1.0\]"):
        params.t_fg = 1.5
    assert params.t_fg == 0.3
    similar = COVIDSimilarCaseLogic(mrml_scene).parameters
    similar.k = 7.0
    assert similar.k == 7 and isinstance(similar.k, int)
    with pytest.raises(InputError, match="not a valid int"):
        similar.k = 2.5


def test_node_references_check_the_node_class(mrml_scene):
    params = COVIDWeakSegLogic(mrml_scene).parameters
    volume = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
    params.input_volume = volume
    assert params.input_volume is volume
    model = mrml_scene.AddNewNodeByClass("vtkMRMLModelNode", "model")
    with pytest.raises(InputError, match="must be a vtkMRMLScalarVolumeNode"):
        params.input_volume = model
    params.input_volume = None
    assert params.input_volume is None


def test_unparsable_saved_value_is_an_error_not_a_default(mrml_scene):
    logic = COVIDWeakSegLogic(mrml_scene)
    get_parameter_node(mrml_scene, "COVIDWeakSeg").SetParameter("t_fg", "high")
    with pytest.raises(InputError, match="COVIDWeakSegParameters.t_fg='high'"):
        logic.parameters.t_fg


def test_unknown_parameter_names_fail_loudly(mrml_scene):
    params = COVIDSeverityLogic(mrml_scene).parameters
    with pytest.raises(AttributeError, match="no parameter 't_fg'"):
        params.t_fg = 0.2


def reload_scene(scene, via: str, tmp_path):
    import slicer

    new = slicer.vtkMRMLScene()
    if via == "xml":
        scene.SetSaveToXMLString(1)
        scene.Commit()
        new.SetLoadFromXMLString(1)
        new.SetSceneXMLString(scene.GetSceneXMLString())
        new.Import()
    else:
        path = str(tmp_path / "scene.mrml")
        scene.SetURL(path)
        scene.Commit()
        new.SetURL(path)
        new.Connect()
    return new


@pytest.mark.parametrize("via", ["xml", "file"])
def test_parameters_survive_scene_save_and_reload(mrml_scene, tmp_path, via):
    volume = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "saved CT")
    seg = COVIDWeakSegLogic(mrml_scene).parameters
    seg.t_fg, seg.t_bg, seg.input_volume = 0.123456789, 0.005, volume
    similar = COVIDSimilarCaseLogic(mrml_scene).parameters
    similar.index_dir, similar.k = str(tmp_path / "index"), 9

    reloaded = reload_scene(mrml_scene, via, tmp_path)
    try:
        seg2 = COVIDWeakSegLogic(reloaded).parameters
        assert (seg2.t_fg, seg2.t_bg) == (0.123456789, 0.005)
        assert seg2.input_volume.GetName() == "saved CT"
        assert seg2.output_segmentation is None
        assert COVIDSimilarCaseLogic(reloaded).parameters.values().k == 9
        assert COVIDSimilarCaseLogic(reloaded).parameters.index_dir == str(tmp_path / "index")
        assert reloaded.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode") == 2
    finally:
        reloaded.Clear(True)


def test_typed_parameters_need_a_dataclass(mrml_scene):
    with pytest.raises(TypeError):
        TypedParameters(get_parameter_node(mrml_scene, "X"), dict)


def test_logic_defaults_to_the_global_scene(mrml_scene):
    assert COVIDSeverityLogic().scene is mrml_scene


# ---------------------------------------------------------------- COVIDWeakSeg


def test_validate_input_describes_a_usable_ct(ct_volume, mrml_scene):
    status = COVIDWeakSegLogic(mrml_scene).validate_input(ct_volume)
    assert status.startswith("phantom CT: CT, 128x128x32 voxels")
    assert "\n" not in status


def test_validate_input_errors_name_the_fix(cxr_volume, mrml_scene):
    logic = COVIDWeakSegLogic(mrml_scene)
    with pytest.raises(InputError, match="no input CT volume selected"):
        logic.validate_input(None)
    with pytest.raises(InputError, match="radiograph|slice"):
        logic.validate_input(cxr_volume)


def test_thresholds_must_keep_background_below_foreground(mrml_scene):
    logic = COVIDWeakSegLogic(mrml_scene)
    assert logic.check_thresholds(0.1, 0.01) == "T_fg=0.10, T_bg=0.010"
    assert logic.check_thresholds(0.1, 0.1) == "T_fg=0.10, T_bg=0.100"  # an empty uncertain band, as the CLI allows
    with pytest.raises(InputError, match="0 <= T_bg <= T_fg < 1, got T_bg=0.2, T_fg=0.1"):
        logic.check_thresholds(0.1, 0.2)


@pytest.mark.slow
def test_segment_lungs_creates_a_new_node_and_never_touches_existing_ones(ct_volume, study, mrml_scene):
    logic = COVIDWeakSegLogic(mrml_scene)
    from covidweak.slicer.mrml import segmentation_node_from_labels

    # The user's own segmentation, named exactly as the new one would be.
    existing = segmentation_node_from_labels(study.lesions > 0, {1: "mine"}, {1: (1.0, 0.0, 0.0)},
                                             scene=mrml_scene, name="phantom CT lungs")
    assert existing.GetName() == "phantom CT lungs"
    mine_before = existing.GetSegmentation().GetNthSegment(0).GetRepresentation("Binary labelmap").GetMTime()
    reports = []
    first = logic.segment_lungs(ct_volume, progress=Progress(lambda d, t, m: reports.append((d, t))))
    second = logic.segment_lungs(ct_volume)

    assert len({existing.GetID(), first.GetID(), second.GetID()}) == 3
    assert len({existing.GetName(), first.GetName(), second.GetName()}) == 3
    assert segment_names(existing) == ["mine"]
    assert existing.GetSegmentation().GetNthSegment(0).GetRepresentation("Binary labelmap").GetMTime() == mine_before
    assert segment_names(first) == ["Right lung", "Left lung"]
    assert reports and reports[-1][0] == reports[-1][1], "progress reaches its total"
    assert logic.parameters.output_segmentation is second
    volumes = logic.last_lung_volumes_ml
    expected = lung_volumes_ml(study.lungs)
    for name in ("Right lung", "Left lung"):
        assert volumes[name] > 0
        assert volumes[name] == pytest.approx(expected[name], rel=0.25)
    status = logic.lungs_status(first, volumes)
    assert status.startswith("Created 'phantom CT lungs") and "Right lung" in status and "mL" in status


@pytest.mark.slow
def test_cancelled_segmentation_leaves_no_node(ct_volume, mrml_scene):
    logic = COVIDWeakSegLogic(mrml_scene)
    progress = Progress()
    progress.cancel()
    with pytest.raises(CancelledError):
        logic.segment_lungs(ct_volume, progress=progress)
    assert segmentation_nodes(mrml_scene) == []
    assert logic.parameters.output_segmentation is None


def test_lung_volumes_use_voxel_spacing():
    import numpy as np
    import SimpleITK as sitk

    labels = sitk.GetImageFromArray(np.array([[[1, 1, 2, 0]]], dtype=np.uint8))
    labels.SetSpacing((10.0, 10.0, 5.0))  # 0.5 mL per voxel
    assert lung_volumes_ml(labels) == {"Right lung": 1.0, "Left lung": 0.5}


@pytest.mark.slow
def test_self_test_workflow_on_random_weights(ct_volume, mrml_scene, tmp_path):
    """The COVIDWeakSegTest sequence (in process here; the self-test uses the child process)."""
    import torch
    from covidweak.models import build_model, save_weights

    torch.manual_seed(0)
    weights = str(tmp_path / "cam.pt")
    save_weights(weights, build_model("cam", {"backbone": "light"}), "cam", {"backbone": "light"}, {"input_size": 64})
    logic = COVIDWeakSegLogic(mrml_scene, work_dir=str(tmp_path))
    created = logic.process(ct_volume, method="cam", weights=weights, t_fg=0.5, device="cpu")
    logic.set_thresholds(t_fg=0.3)
    assert created.probability.GetDisplayNode().GetLowerThreshold() == 0.3
    assert logic.create_segmentation(uncertain=True).GetSegmentation().GetNumberOfSegments() == 2
    if created.lesion_table.GetNumberOfRows():
        assert len(logic.jump_to_lesion(0)) == 3


# ---------------------------------------------------------------- COVIDSeverity


def test_classify_input_tells_ct_from_cxr(ct_volume, cxr_volume, mrml_scene):
    logic = COVIDSeverityLogic(mrml_scene)
    assert logic.classify_input(ct_volume) == "ct"
    assert logic.classify_input(cxr_volume) == "cxr"
    assert "chest X-ray" in logic.describe_input(cxr_volume)


def test_classify_input_errors(mrml_scene):
    import numpy as np
    import SimpleITK as sitk
    from covidweak.slicer.mrml import volume_node_from_image

    logic = COVIDSeverityLogic(mrml_scene)
    with pytest.raises(InputError, match="no input CT or chest X-ray volume selected"):
        logic.classify_input(None)
    flat = volume_node_from_image(sitk.GetImageFromArray(np.zeros((1, 64, 64), np.int16)), scene=mrml_scene)
    with pytest.raises(InputError):
        logic.classify_input(flat)
    empty = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="holds no image data"):
        logic.classify_input(empty)


# ---------------------------------------------------------------- COVIDSimilarCase


def test_validate_inputs_accepts_a_ct_and_an_index_folder(ct_volume, mrml_scene, tmp_path):
    (tmp_path / "index.faiss").write_bytes(b"\0")
    status = COVIDSimilarCaseLogic(mrml_scene).validate_inputs(ct_volume, str(tmp_path))
    assert status.startswith("phantom CT: CT") and str(tmp_path) in status


def test_validate_inputs_errors_name_the_fix(ct_volume, mrml_scene, tmp_path):
    logic = COVIDSimilarCaseLogic(mrml_scene)
    a_file = tmp_path / "cases.csv"
    a_file.write_text("x")
    (tmp_path / "empty").mkdir()
    cases = [
        ("", "no case index folder selected"),
        (None, "no case index folder selected"),
        (str(tmp_path / "missing"), "does not exist"),
        (str(a_file), "is a file, not a folder"),
        (str(tmp_path / "empty"), "is empty"),
    ]
    for folder, message in cases:
        with pytest.raises(InputError, match=message):
            logic.validate_inputs(ct_volume, folder)
    with pytest.raises(InputError, match="no query CT volume selected"):
        logic.validate_inputs(None, str(tmp_path))
