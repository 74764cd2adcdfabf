"""COVIDSeverity end to end: the real ``covidweak severity`` and ``covidweak diagnose`` commands, in this
process and in a child process, on a phantom radiograph and CT.

The radiograph severity and diagnosis networks are random-initialised light
networks (their scores mean nothing); the CT lesion network is the shipped
mseamnam-light. What is checked is that the module turns the commands' real
output folders into consistent nodes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "COVIDSeverity") not in sys.path:
    sys.path.insert(0, str(ROOT / "COVIDSeverity"))

from COVIDSeverityLib import COVIDSeverityLogic  # noqa: E402
from covidweak.progress import Progress  # noqa: E402
from covidweak.slicer.runner import Where  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random-initialised radiograph severity and CT diagnosis weight files."""
    import torch
    from covidweak.diagnosis.model import METHOD, build_diagnosis_model
    from covidweak.models import build_model, save_weights

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    save_weights(folder / "severity.pt", build_model("severity", {"size": "light"}), "severity", {"size": "light"},
                 {"input_size": 128})
    arch = {"classes": ["covid", "cap", "normal"], "width": 0.125, "top_k": 2, "contrast_augmentation": True,
            "split": {"seed": 0, "fractions": [0.5, 0.25, 0.25]}}
    save_weights(folder / "diagnosis.pt", build_diagnosis_model(METHOD, arch), METHOD, arch, {"input_size": 32})
    return str(folder / "severity.pt"), str(folder / "diagnosis.pt")


@pytest.fixture(scope="module")
def study():
    from covidweak.phantom import PhantomConfig, generate_study

    return generate_study(2, 0, "covid", config=PhantomConfig(size=128, slices=32))


@pytest.fixture
def logic(mrml_scene, tmp_path, weights):
    logic = COVIDSeverityLogic(mrml_scene, work_dir=str(tmp_path))
    logic.parameters.severity_weights, logic.parameters.diagnosis_weights = weights
    return logic


def volume(study_image, scene, name):
    from covidweak.slicer.mrml import volume_node_from_image

    return volume_node_from_image(study_image, scene=scene, name=name)


def test_real_commands_on_a_radiograph_and_a_ct(logic, study, mrml_scene, tmp_path):
    import slicer
    from covidweak.slicer.outputs import table_node_rows

    cxr = volume(study.cxr, mrml_scene, "phantom CXR")
    created = logic.process(cxr, device="cpu")
    assert created.modality == "cxr" and 0 <= created.score <= 6
    columns, rows = table_node_rows(created.zone_table)
    findings = [row[columns.index(f"{side}_finding")] for row in rows for side in ("right", "left")]
    assert created.score == sum(findings), "the large score is the sum of the 3x2 array"
    assert slicer.util.arrayFromVolume(created.probability).shape == slicer.util.arrayFromVolume(cxr).shape
    assert len(created.zone_lines) == 4 and created.zone_segmentation.GetSegmentation().GetNumberOfSegments() == 6
    height = cxr.GetImageData().GetDimensions()[1] * cxr.GetSpacing()[1]
    for line in created.zone_lines:
        for point in range(2):
            assert -height <= line.GetNthControlPointPosition(point)[1] <= 0, "zone lines lie on the radiograph"

    ct = volume(study.ct, mrml_scene, "phantom CT")
    created = logic.process(ct, device="cpu", diagnose=True)
    assert created.modality == "ct" and 0 <= created.score <= 30
    assert created.zone_table.GetNumberOfRows() == 9 and created.diagnosis_table.GetNumberOfRows() == 3
    _, slices = table_node_rows(created.slice_table)
    assert slices and all(0 <= row[0] < 32 for row in slices)
    probabilities = np.array([row[1:] for row in slices])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    k = logic.slice_of_point(len(slices) // 2)
    assert len(logic.jump_to_slice(k)) == 3
    assert len(logic.export_csv(tmp_path)) == 3


def test_child_process_run_reports_progress_and_cleans_up(logic, study, mrml_scene, tmp_path):
    cxr = volume(study.cxr, mrml_scene, "phantom CXR")
    messages = []
    created = logic.process(cxr, device="cpu", where=Where.CHILD_PROCESS,
                            progress=Progress(lambda d, t, m: messages.append(m)))
    assert created.modality == "cxr" and len(created.zone_lines) == 4
    assert "lungs" in messages
    assert list(tmp_path.iterdir()) == [], "the temporary input and output folders are removed"


def test_command_errors_reach_the_user_as_one_line(logic, study, mrml_scene, tmp_path):
    from covidweak.errors import CovidWeakError

    cxr = volume(study.cxr, mrml_scene, "phantom CXR")
    logic.parameters.severity_weights = str(tmp_path / "missing.pt")
    before = mrml_scene.GetNumberOfNodes()
    with pytest.raises(CovidWeakError, match="missing.pt"):
        logic.process(cxr, device="cpu", where=Where.CHILD_PROCESS)
    assert mrml_scene.GetNumberOfNodes() == before
    assert json.dumps(logic.last_report) == "{}"
