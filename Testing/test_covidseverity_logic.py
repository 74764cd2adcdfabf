"""COVIDSeverity Logic on a real MRML scene: output folders -> nodes, interaction, export, child runs.

The ``covidweak severity`` / ``diagnose`` commands are written in parallel
with this module, so the output folders here are written by the functions
below from a phantom study's real arrays (its lungs, Kim et al.'s zones from
covidweak.zones, its lesion volumes), exactly in the documented file contract.
When the commands are installed, ``test_real_commands_end_to_end`` runs them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "COVIDSeverity") not in sys.path:
    sys.path.insert(0, str(ROOT / "COVIDSeverity"))

from COVIDSeverityLib import COVIDSeverityLogic  # noqa: E402
from COVIDSeverityLib import display, outputs  # noqa: E402
from covidweak.errors import CovidWeakError, InputError  # noqa: E402
from covidweak.zones import ZONE_FRACTIONS, zone_map_3d  # noqa: E402


# ---------------------------------------------------------------- contract folders from real arrays


def write_cxr_folder(reference: sitk.Image, lungs2d: np.ndarray, severity_array, folder: Path) -> dict:
    """severity.json, severity_map.nii.gz, cxr_lungs.nii.gz for a one-slice radiograph ``reference``."""
    folder.mkdir(parents=True)
    probability = 0.15 + 0.7 * np.asarray(severity_array, dtype=float)  # 0.15 clear zone, 0.85 finding
    labels = outputs.zone_label_map_2d(lungs2d)
    painted = np.zeros(lungs2d.shape, np.float32)
    for label in range(1, 7):
        painted[labels == label] = probability[(label - 1) % 3, (label - 1) // 3]
    lines = []
    for lung, value in (("right", 1), ("left", 2)):
        rows, cols = np.nonzero(lungs2d == value)
        for fraction in ZONE_FRACTIONS:
            row = rows.min() + fraction * (rows.max() - rows.min())
            lines.append({"lung": lung, "fraction": fraction, "row": float(row),
                          "col_start": int(cols.min()), "col_end": int(cols.max())})
    binary = (probability >= 0.5).astype(int)
    report = {"modality": "cxr", "rows": list(outputs.ROWS), "columns": list(outputs.COLUMNS),
              "probability": probability.tolist(), "binary": binary.tolist(), "threshold": 0.5,
              "global_score": int(binary.sum()), "zone_lines": lines, "models": {}, "runtime_s": 0.1}
    (folder / outputs.CXR_JSON).write_text(json.dumps(report))
    for array, name in ((painted, outputs.CXR_MAP), (lungs2d.astype(np.uint8), outputs.CXR_LUNGS)):
        image = sitk.GetImageFromArray(array[None])
        image.CopyInformation(reference)
        sitk.WriteImage(image, str(folder / name))
    return report


def ct_score(percent: float) -> int:
    """The usual 0-5 banding of percent involvement (0, <5, 5-25, 25-50, 50-75, >75)."""
    return 0 if percent == 0 else 1 + int(np.searchsorted([5, 25, 50, 75], percent, side="right"))


def write_ct_folders(lungs: sitk.Image, lesions: sitk.Image, root: Path) -> tuple[Path, Path, np.ndarray]:
    """A severity folder (ct_severity.json, zones.nii.gz) and a diagnosis folder (diagnosis.json, slices.csv)."""
    lung = sitk.GetArrayFromImage(lungs)
    lesion = sitk.GetArrayFromImage(lesions) > 0
    zones = np.where(lung > 0, (lung.astype(np.uint8) - 1) * 3 + zone_map_3d(lungs), 0).astype(np.uint8)
    voxel_ml = float(np.prod(lungs.GetSpacing())) / 1000
    entries = []
    for label in range(1, 7):
        inside = zones == label
        lung_ml, lesion_ml = inside.sum() * voxel_ml, (inside & lesion).sum() * voxel_ml
        percent = 100 * lesion_ml / lung_ml
        entries.append({"lung": ("right", "left")[(label - 1) // 3], "zone": outputs.ROWS[(label - 1) % 3],
                        "label": label, "lung_volume_ml": lung_ml, "lesion_volume_ml": lesion_ml,
                        "involvement_percent": percent, "score": ct_score(percent)})
    lungs_summary = {}
    for side in ("right", "left"):
        mine = [e for e in entries if e["lung"] == side]
        lung_ml, lesion_ml = sum(e["lung_volume_ml"] for e in mine), sum(e["lesion_volume_ml"] for e in mine)
        lungs_summary[side] = {"lung_volume_ml": lung_ml, "lesion_volume_ml": lesion_ml,
                               "involvement_percent": 100 * lesion_ml / lung_ml}
    total_lung = sum(v["lung_volume_ml"] for v in lungs_summary.values())
    report = {"modality": "ct", "score_name": "6-zone CT involvement score (0-30)", "zones": entries,
              "lungs": lungs_summary, "total_score": sum(e["score"] for e in entries),
              "involvement_percent": 100 * sum(v["lesion_volume_ml"] for v in lungs_summary.values()) / total_lung,
              "lesion_types_ml": None, "segmentation": {}, "runtime_s": 0.1}
    severity_dir, diagnosis_dir = root / "severity", root / "diagnosis"
    severity_dir.mkdir(parents=True)
    diagnosis_dir.mkdir()
    (severity_dir / outputs.CT_JSON).write_text(json.dumps(report))
    image = sitk.GetImageFromArray(zones)
    image.CopyInformation(lungs)
    sitk.WriteImage(image, str(severity_dir / outputs.CT_ZONES))
    slices = [k for k in range(lung.shape[0]) if lung[k].any()]
    fraction = np.array([lesion[k].sum() / max(lung[k].sum(), 1) for k in slices])
    p_covid = np.clip(0.1 + 4 * fraction, 0, 0.9)
    rows = ["slice,p_covid,p_cap,p_normal"] + [f"{k},{p:.4f},{0.05:.4f},{0.95 - p:.4f}" for k, p in zip(slices, p_covid)]
    (diagnosis_dir / outputs.SLICES_CSV).write_text("\n".join(rows) + "\n")
    (diagnosis_dir / outputs.DIAGNOSIS_JSON).write_text(json.dumps({
        "classes": ["covid", "cap", "normal"], "probabilities": {"covid": 0.7, "cap": 0.1, "normal": 0.2},
        "prediction": "covid", "aggregation": "mean of lung slices", "slices_used": len(slices),
        "model": {}, "runtime_s": 0.1}))
    return severity_dir, diagnosis_dir, zones


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def study():
    from covidweak.phantom import PhantomConfig, generate_study

    return generate_study(5, 0, "covid", config=PhantomConfig(size=128, slices=32))


@pytest.fixture
def logic(mrml_scene, tmp_path):
    return COVIDSeverityLogic(mrml_scene, work_dir=str(tmp_path))


@pytest.fixture
def ct_volume(study, mrml_scene):
    from covidweak.slicer.mrml import volume_node_from_image

    return volume_node_from_image(study.ct, scene=mrml_scene, name="phantom CT")


@pytest.fixture
def cxr_volume(study, mrml_scene):
    from covidweak.slicer.mrml import volume_node_from_image

    return volume_node_from_image(study.cxr, scene=mrml_scene, name="phantom CXR")


BOTH_LOWER_ZONES = [[0, 0], [0, 0], [1, 1]]
"""The severity array the CXR contract folders report: findings in both lower zones (score 2)."""


@pytest.fixture
def cxr_folder(study, logic, cxr_volume, tmp_path):
    reference = logic.image_of(cxr_volume, "cxr")
    report = write_cxr_folder(reference, sitk.GetArrayFromImage(study.cxr_lungs), BOTH_LOWER_ZONES, tmp_path / "cxr")
    return tmp_path / "cxr", report


@pytest.fixture
def ct_folders(study, tmp_path):
    return write_ct_folders(study.lungs, study.lesions, tmp_path / "ct")


def segment_voxels(node) -> dict[str, int]:
    from covidweak.slicer.mrml import labels_from_segmentation_node

    labels = sitk.GetArrayFromImage(labels_from_segmentation_node(node))
    segmentation = node.GetSegmentation()
    return {segmentation.GetNthSegment(i).GetName(): int((labels == i + 1).sum())
            for i in range(segmentation.GetNumberOfSegments())}


def column(table, name):
    from covidweak.slicer.outputs import table_node_rows

    columns, rows = table_node_rows(table)
    return [row[columns.index(name)] for row in rows]


# ---------------------------------------------------------------- chest X-ray folder -> nodes


def test_cxr_probability_overlay_on_the_radiograph_grid(logic, cxr_volume, cxr_folder, mrml_scene):
    import slicer
    from covidweak.slicer.mrml import ijk_to_ras_matrix

    composite = mrml_scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    created = logic.load_outputs(cxr_volume, cxr_folder[0])
    assert created.modality == "cxr" and created.score == cxr_folder[1]["global_score"] == 2
    painted = sitk.GetArrayFromImage(sitk.ReadImage(str(cxr_folder[0] / outputs.CXR_MAP)))
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(created.probability), painted)
    reference = logic.image_of(cxr_volume, "cxr")
    np.testing.assert_array_equal(ijk_to_ras_matrix(logic.image_of(created.probability, "map")),
                                  ijk_to_ras_matrix(reference))
    assert composite.GetBackgroundVolumeID() == cxr_volume.GetID()
    assert composite.GetForegroundVolumeID() == created.probability.GetID()
    assert composite.GetForegroundOpacity() == pytest.approx(0.5)
    assert logic.set_opacity(0.8) == "overlay opacity 0.80" and composite.GetForegroundOpacity() == pytest.approx(0.8)
    shown = created.probability.GetDisplayNode()
    assert shown.GetColorNode().GetName() == display.COLOR_TABLE_NAME
    assert shown.GetLowerThreshold() == display.OVERLAY_LOWER
    assert logic.summary_text() == "Global score 2 / 6"


def test_cxr_zone_lines_are_line_markups_at_the_reported_pixels(logic, cxr_volume, cxr_folder):
    created = logic.load_outputs(cxr_volume, cxr_folder[0])
    lines = cxr_folder[1]["zone_lines"]
    assert len(created.zone_lines) == len(lines) == 4
    assert cxr_volume.GetSpacing()[:2] == (1.4, 1.4) and cxr_volume.GetOrigin() == (0.0, 0.0, 0.0)
    for node, line in zip(created.zone_lines, lines):
        assert node.IsA("vtkMRMLMarkupsLineNode") and node.GetNumberOfControlPoints() == 2
        # The phantom radiograph: origin 0, 1.4 mm pixels, identity LPS direction, so RAS = (-1.4 col, -1.4 row, 0).
        np.testing.assert_allclose(node.GetNthControlPointPosition(0), (-1.4 * line["col_start"], -1.4 * line["row"], 0))
        np.testing.assert_allclose(node.GetNthControlPointPosition(1), (-1.4 * line["col_end"], -1.4 * line["row"], 0))
        assert line["lung"] in node.GetName()
    assert logic.parameters.node.GetNumberOfNodeReferences("output_zone_line") == 4


def test_cxr_zone_array_table_and_segments_coloured_by_probability(logic, cxr_volume, cxr_folder, study):
    from covidweak.slicer.outputs import ramp_color

    created = logic.load_outputs(cxr_volume, cxr_folder[0])
    report = cxr_folder[1]
    assert column(created.zone_table, "zone") == ["upper", "middle", "lower"]
    assert column(created.zone_table, "right_probability") == pytest.approx([0.15, 0.15, 0.85])
    assert column(created.zone_table, "left_finding") == [0, 0, 1]
    expected = outputs.zone_label_map_2d(sitk.GetArrayFromImage(study.cxr_lungs))
    counts = segment_voxels(created.zone_segmentation)
    names = display.zone_names()
    assert list(counts) == [names[label] for label in sorted(names)]
    for label, name in names.items():
        assert counts[name] == np.count_nonzero(expected == label) > 0
    segmentation = created.zone_segmentation.GetSegmentation()
    lower_right = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Right lower zone"))
    assert lower_right.GetColor() == pytest.approx(ramp_color(0.85, display.RAMP))
    cells = logic.zone_cells()
    assert [[text for text, _ in row] for row in cells] == [["0.15", "0.15"], ["0.15", "0.15"], ["0.85", "0.85"]]
    assert cells[0][0][1] == cells[1][1][1] != cells[2][0][1] == "#" + "".join(
        f"{round(255 * c):02x}" for c in ramp_color(0.85, display.RAMP))
    assert report["probability"][2] == [0.85, 0.85]


# ---------------------------------------------------------------- CT folders -> nodes


def test_ct_zone_table_and_zone_segments(logic, ct_volume, ct_folders):
    severity_dir, diagnosis_dir, zones = ct_folders
    created = logic.load_outputs(ct_volume, severity_dir, diagnosis_dir)
    report = json.loads((severity_dir / outputs.CT_JSON).read_text())
    assert created.modality == "ct" and created.score == report["total_score"]
    regions = column(created.zone_table, "region")
    assert regions[:6] == ["right upper", "right middle", "right lower", "left upper", "left middle", "left lower"]
    assert regions[6:] == ["right", "left", "total"]
    assert column(created.zone_table, "score")[-1] == report["total_score"]
    assert column(created.zone_table, "lesion_volume_ml")[:6] == pytest.approx(
        [z["lesion_volume_ml"] for z in report["zones"]])
    counts = segment_voxels(created.zone_segmentation)
    for label, name in display.zone_names().items():
        assert counts[name] == np.count_nonzero(zones == label)
    scores = {(z["zone"], z["lung"]): z["score"] for z in report["zones"]}
    assert [[text for text, _ in row] for row in logic.zone_cells()] == [
        [f"{scores[(zone, lung)]} / 5" for lung in ("right", "left")] for zone in ("upper", "middle", "lower")]
    assert logic.summary_text().startswith(f"CT score {report['total_score']} / 30")
    assert logic.summary_text().endswith("covid (p 0.70)")


def test_ct_diagnosis_table_and_per_slice_plot(logic, ct_volume, ct_folders):
    from covidweak.slicer.outputs import plot_series_nodes

    created = logic.load_outputs(ct_volume, *ct_folders[:2])
    assert column(created.diagnosis_table, "class") == ["covid", "cap", "normal"]
    assert column(created.diagnosis_table, "probability") == pytest.approx([0.7, 0.1, 0.2])
    slices = column(created.slice_table, "slice")
    lung_slices = [k for k in range(32) if (ct_folders[2][k] > 0).any()]
    assert slices == lung_slices
    chart = created.slice_chart
    assert chart.IsA("vtkMRMLPlotChartNode") and logic.parameters.output_slice_chart is chart
    series = plot_series_nodes(chart)
    assert [s.GetYColumnName() for s in series] == ["p_covid", "p_cap", "p_normal"]
    assert all(s.GetXColumnName() == "slice" and s.GetTableNode() is created.slice_table for s in series)


def test_clicking_a_plot_point_jumps_to_that_slice(logic, ct_volume, ct_folders, mrml_scene):
    import vtk

    logic.load_outputs(ct_volume, *ct_folders[:2])
    slice_node = mrml_scene.AddNewNodeByClass("vtkMRMLSliceNode")
    k = logic.slice_of_point(3)
    assert k == column(logic.parameters.output_slice_table, "slice")[3]
    ras = logic.jump_to_slice(k)
    ras_to_ijk = vtk.vtkMatrix4x4()
    ct_volume.GetRASToIJKMatrix(ras_to_ijk)
    ijk = ras_to_ijk.MultiplyPoint((*ras, 1.0))
    assert ijk[2] == pytest.approx(k) and ijk[0] == pytest.approx(63.5)
    assert slice_node.GetSliceToRAS().GetElement(2, 3) == pytest.approx(ras[2])
    with pytest.raises(InputError, match="outside the CT"):
        logic.jump_to_slice(32)
    with pytest.raises(InputError, match="does not exist"):
        logic.slice_of_point(999)


def test_ct_without_diagnosis_has_no_plot(logic, ct_volume, ct_folders):
    created = logic.load_outputs(ct_volume, ct_folders[0])
    assert created.slice_chart is None and logic.parameters.output_slice_chart is None
    with pytest.raises(InputError, match="Diagnose checked"):
        logic.slice_of_point(0)


# ---------------------------------------------------------------- ownership, errors, export


def test_outputs_never_replace_user_nodes_and_replace_only_ours(logic, ct_volume, ct_folders, mrml_scene):
    from covidweak.slicer.outputs import plot_series_nodes

    user_table = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "phantom CT zone involvement")
    first = logic.load_outputs(ct_volume, *ct_folders[:2])
    assert first.zone_table is not user_table and first.zone_table.GetName() != user_table.GetName()
    second = logic.load_outputs(ct_volume, *ct_folders[:2])
    assert mrml_scene.IsNodePresent(first.zone_table), "replace_outputs is off: earlier results stay"
    logic.parameters.replace_outputs = True
    logic.parameters.output_zone_table = user_table  # the user pointed the module at their own node
    third = logic.load_outputs(ct_volume, *ct_folders[:2])
    assert mrml_scene.IsNodePresent(user_table), "a node the module did not create is never removed"
    assert not mrml_scene.IsNodePresent(second.slice_chart) and not mrml_scene.IsNodePresent(second.zone_segmentation)
    assert mrml_scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode") == 6, "the removed chart's series went with it"
    assert all(mrml_scene.IsNodePresent(s) for s in plot_series_nodes(third.slice_chart))
    assert mrml_scene.IsNodePresent(third.zone_table) and mrml_scene.IsNodePresent(ct_volume)


def test_bad_folders_fail_clearly_and_change_nothing(logic, ct_volume, cxr_volume, cxr_folder, ct_folders,
                                                     mrml_scene, tmp_path):
    before = mrml_scene.GetNumberOfNodes()
    with pytest.raises(CovidWeakError, match="ct_severity.json is missing"):
        logic.load_outputs(ct_volume, tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / outputs.CT_JSON).write_text("{not json")
    with pytest.raises(CovidWeakError, match="not valid JSON"):
        logic.load_outputs(ct_volume, tmp_path / "broken")
    (ct_folders[1] / outputs.SLICES_CSV).unlink()
    with pytest.raises(CovidWeakError, match="slices.csv is missing"):
        logic.load_outputs(ct_volume, *ct_folders[:2])
    assert mrml_scene.GetNumberOfNodes() == before
    with pytest.raises(CovidWeakError, match="not on the input's grid"):
        logic.load_outputs(ct_volume, cxr_folder[0])


def test_export_writes_every_table_and_refuses_to_overwrite(logic, ct_volume, ct_folders, tmp_path):
    import csv

    with pytest.raises(InputError, match="press Apply first"):
        logic.export_csv(tmp_path)
    logic.load_outputs(ct_volume, *ct_folders[:2])
    out = tmp_path / "export"
    out.mkdir()
    paths = logic.export_csv(out)
    assert sorted(p.name for p in paths) == ["phantom_CT_diagnosis_table.csv", "phantom_CT_slice_table.csv",
                                             "phantom_CT_zone_table.csv"]
    with (out / "phantom_CT_zone_table.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [r["region"] for r in rows][-1] == "total" and float(rows[-1]["score"]) == logic.last_report["total_score"]
    with pytest.raises(InputError, match="already exist"):
        logic.export_csv(out)
    assert len(logic.export_csv(out, overwrite=True)) == 3


def test_in_process_runs_name_bad_commands_and_hand_progress_over_explicitly(tmp_path):
    import covidweak.progress as progress_module
    from covidweak.progress import Progress
    from covidweak.slicer.runner import Where, run_command

    factory = progress_module.tqdm_progress
    with pytest.raises(InputError, match="has no 'nosuch' command"):
        run_command(["nosuch"], Where.IN_PROCESS)
    with pytest.raises(InputError, match="refused the arguments --no-such-option"):
        run_command(["diagnose", "--no-such-option"], Where.IN_PROCESS)
    with pytest.raises(CovidWeakError, match="missing.nii.gz"):
        run_command(["lungs", tmp_path / "missing.nii.gz", "--out", tmp_path / "lungs.nii.gz"], Where.IN_PROCESS,
                    progress=Progress(lambda d, t, m: None))
    assert progress_module.tqdm_progress is factory, "nothing module-wide is rebound"
    with pytest.raises(TypeError, match="where must be a Where"):
        run_command(["lungs"], True)  # the old sync flag
