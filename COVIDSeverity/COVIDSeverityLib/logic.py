"""COVIDSeverity logic: score a chest X-ray or CT with ``covidweak severity`` and show the results.

Two separate steps, so each can be used and tested alone:

* ``run_commands`` runs ``covidweak severity`` (and, for a CT, ``covidweak
  diagnose``) on an image, where it is told (:class:`~covidweak.slicer.runner.Where`):
  in a child process for the panel (progress, Cancel kills it) or in this process for scripts;
* ``load_outputs`` turns such output folders into MRML nodes.

``process`` does both on a volume node and is what the panel's Apply calls.
No qt here: the panel, the Python console and pytest share these methods.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from covidweak.device import check_module_device
from covidweak.errors import InputError
from covidweak.slicer.parameters import ParameterizedLogic, describe_image
from covidweak.slicer.runner import Where, run_command

from . import display, outputs
from .parameters import COVIDSeverityParameters

MODALITY_NAMES = {"ct": "chest CT", "cxr": "chest X-ray"}
ZONE_LINE_ROLE = "output_zone_line"
TABLE_ROLES = ("output_zone_table", "output_diagnosis_table", "output_slice_table")


@dataclass
class SeverityNodes:
    """The nodes one run created. CXR: probability, zone_lines; CT: diagnosis, slices, slice_chart."""

    modality: str
    score: int
    zone_table: object
    zone_segmentation: object
    probability: object = None
    zone_lines: list = field(default_factory=list)
    diagnosis_table: object = None
    slice_table: object = None
    slice_chart: object = None


class COVIDSeverityLogic(ParameterizedLogic):
    MODULE_NAME = "COVIDSeverity"
    PARAMETERS = COVIDSeverityParameters

    def __init__(self, scene=None, work_dir: Optional[str] = None):
        super().__init__(scene)
        self.work_dir = work_dir  # where commands write; None = the system temp folder
        self.last_report: dict = {}  # severity report (and "diagnosis") behind the current outputs

    # ------------------------------------------------------------ input

    def classify_input(self, volume) -> str:
        """``"cxr"`` for a single-slice radiograph, ``"ct"`` for a chest CT; errors name the fix."""
        return classify_image(self.image_of(volume, "input CT or chest X-ray volume"))

    def describe_input(self, volume) -> str:
        """Status line: the volume's name, modality and geometry."""
        image = self.image_of(volume, "input CT or chest X-ray volume")
        return f"{volume.GetName()}: {MODALITY_NAMES[classify_image(image)]}, {describe_image(image)}"

    # ------------------------------------------------------------ run

    def process(self, volume, device: Optional[str] = None, diagnose: Optional[bool] = None,
                where: Where = Where.IN_PROCESS, progress=None) -> SeverityNodes:
        """Score ``volume`` (CXR or CT) and show the results; returns the created nodes.

        Arguments left at None come from the parameter node; given ones are
        stored there. ``where``: where the commands run.
        """
        import SimpleITK as sitk

        params = self.parameters
        if device is not None:
            params.device = device
        if diagnose is not None:
            params.diagnose = diagnose
        check_module_device(params.device)
        image = self.image_of(volume, "input CT or chest X-ray volume")
        modality = classify_image(image)
        params.input_volume = volume
        folder = Path(tempfile.mkdtemp(prefix="covidweak-severity-", dir=self.work_dir))
        try:
            sitk.WriteImage(image, str(folder / "input.nrrd"))
            severity_dir, diagnosis_dir = self.run_commands(folder / "input.nrrd", folder, modality, where, progress)
            return self.load_outputs(volume, severity_dir, diagnosis_dir)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def run_commands(self, image_path, out_root, modality: str, where: Where = Where.IN_PROCESS, progress=None):
        """Run the commands for ``image_path`` into ``out_root``/severity (and /diagnosis for a CT with
        ``diagnose`` on); returns the two folders (the second None when not run)."""
        params, out_root = self.parameters, Path(out_root)
        run_command(severity_command(image_path, out_root / "severity", params), where, progress, self.work_dir)
        if modality != "ct" or not params.diagnose:
            return out_root / "severity", None
        argv = ["diagnose", image_path, "--out", out_root / "diagnosis", "--device", params.device]
        run_command(argv + weights_option("--weights", params.diagnosis_weights), where, progress, self.work_dir)
        return out_root / "severity", out_root / "diagnosis"

    # ------------------------------------------------------------ outputs -> nodes

    def load_outputs(self, volume, severity_dir, diagnosis_dir=None) -> SeverityNodes:
        """Nodes for a ``covidweak severity`` output folder (and a ``covidweak diagnose`` one) of ``volume``."""
        severity_dir = Path(severity_dir)
        reference = self.image_of(volume, "input CT or chest X-ray volume")
        # Every file is read and checked before any node changes, so a bad folder leaves the scene as it was.
        if (severity_dir / outputs.CXR_JSON).is_file():
            cxr = outputs.read_cxr_severity(severity_dir)
            self._release_previous(volume)
            return self._show_cxr(volume, reference, cxr)
        ct = outputs.read_ct_severity(severity_dir)
        diagnosis = outputs.read_diagnosis(diagnosis_dir) if diagnosis_dir is not None else None
        self._release_previous(volume)
        created = self._show_ct(volume, reference, ct)
        if diagnosis is not None:
            self._show_diagnosis(volume, diagnosis, created)
        return created

    def _release_previous(self, volume) -> None:
        """Forget the previous outputs (removed only when ours and replace_outputs is on)."""
        from covidweak.slicer.outputs import release_output

        params = self.parameters
        params.input_volume = volume
        previous = [getattr(params, name) for name in params.names if name.startswith("output_")]
        previous += [params.node.GetNthNodeReference(ZONE_LINE_ROLE, i)
                     for i in range(params.node.GetNumberOfNodeReferences(ZONE_LINE_ROLE))]
        for name in params.names:
            if name.startswith("output_"):
                setattr(params, name, None)
        params.node.RemoveNodeReferenceIDs(ZONE_LINE_ROLE)
        for node in previous:
            release_output(self.scene, node, self.MODULE_NAME, params.replace_outputs)

    def _record(self, role: str, node):
        from covidweak.slicer.outputs import mark_created

        setattr(self.parameters, role, mark_created(node, self.MODULE_NAME))
        return node

    def _new_table(self, role: str, name: str, columns, rows):
        from covidweak.slicer.outputs import table_node_from_rows

        return self._record(role, table_node_from_rows(self.scene, name, columns, rows))

    def _zone_segmentation(self, labels, values, name: str, volume):
        from covidweak.slicer.mrml import segmentation_node_from_labels

        node = segmentation_node_from_labels(labels, display.zone_names(), display.zone_colors(values),
                                             scene=self.scene, name=name, reference_volume=volume)
        return self._record("output_zone_segmentation", node)

    def _show_cxr(self, volume, reference, result: outputs.CxrSeverity) -> SeverityNodes:
        import SimpleITK as sitk
        from covidweak.slicer.mrml import on_volume_grid, volume_node_from_image
        from covidweak.slicer.outputs import mark_created, ramp_color_table, show_in_slice_views, style_probability_overlay

        params, base, report = self.parameters, volume.GetName(), result.report
        probability_map = on_volume_grid(result.probability_map, reference, outputs.CXR_MAP)
        probability = self._record("output_probability", volume_node_from_image(
            probability_map, scene=self.scene, name=f"{base} severity probability"))
        table = ramp_color_table(self.scene, display.COLOR_TABLE_TAG, display.COLOR_TABLE_NAME, display.RAMP)
        style_probability_overlay(probability, table, display.OVERLAY_LOWER)
        show_in_slice_views(self.scene, volume, probability, params.opacity)

        lungs = sitk.GetArrayFromImage(on_volume_grid(result.lungs, reference, outputs.CXR_LUNGS))
        labels = sitk.GetImageFromArray(outputs.zone_label_map_2d(lungs[0])[None])
        labels.CopyInformation(reference)
        segmentation = self._zone_segmentation(labels, result.probability, f"{base} severity zones", volume)

        rows = [[zone, *map(float, result.probability[r]), *map(int, result.binary[r])]
                for r, zone in enumerate(outputs.ROWS)]
        zone_table = self._new_table("output_zone_table", f"{base} severity zones",
                                     ("zone", "right_probability", "left_probability", "right_finding",
                                      "left_finding"), rows)
        lines = [mark_created(self._zone_line(volume, line), self.MODULE_NAME) for line in report["zone_lines"]]
        for line in lines:
            params.node.AddNodeReferenceID(ZONE_LINE_ROLE, line.GetID())
        self.last_report = report
        return SeverityNodes("cxr", int(report["global_score"]), zone_table, segmentation,
                             probability=probability, zone_lines=lines)

    def _zone_line(self, volume, line: dict):
        """A line node along one zone boundary; zone_lines are (column, row) pixels of the radiograph."""
        from covidweak.slicer.mrml import ras_of_ijk
        from covidweak.slicer.outputs import line_markup_node

        start = ras_of_ijk(volume, (line["col_start"], line["row"], 0))
        end = ras_of_ijk(volume, (line["col_end"], line["row"], 0))
        name = f"{volume.GetName()} {line['lung']} zone line {float(line['fraction']):.3f}"
        return line_markup_node(self.scene, name, start, end, display.ZONE_LINE_COLOR)

    def _show_ct(self, volume, reference, result: outputs.CtSeverity) -> SeverityNodes:
        from covidweak.slicer.mrml import on_volume_grid

        base, report = volume.GetName(), result.report
        zones = on_volume_grid(result.zones, reference, outputs.CT_ZONES)
        scores = display.ct_zone_scores(report)
        segmentation = self._zone_segmentation(zones, scores / display.CT_ZONE_SCORE_MAX,
                                               f"{base} severity zones", volume)
        zone_table = self._new_table("output_zone_table", f"{base} zone involvement", CT_ZONE_COLUMNS,
                                     ct_zone_rows(report))
        self.last_report = report
        return SeverityNodes("ct", int(report["total_score"]), zone_table, segmentation)

    def _show_diagnosis(self, volume, diagnosis: outputs.Diagnosis, created: SeverityNodes) -> None:
        from covidweak.slicer.outputs import plot_chart_node

        base, report = volume.GetName(), diagnosis.report
        created.diagnosis_table = self._new_table(
            "output_diagnosis_table", f"{base} diagnosis", ("class", "probability"),
            [[name, float(report["probabilities"][name])] for name in report["classes"]])
        created.slice_table = self._new_table(
            "output_slice_table", f"{base} slice probabilities", outputs.SLICE_COLUMNS,
            [[row[column] for column in outputs.SLICE_COLUMNS] for row in diagnosis.slices])
        series = [{"table": created.slice_table, "x": "slice", "y": column, "name": f"{base} {legend}",
                   "color": color} for column, legend, color in display.SLICE_SERIES]
        created.slice_chart = self._record("output_slice_chart", plot_chart_node(
            self.scene, f"{base} probability per slice", series, title="Diagnosis probability per slice",
            x_title="slice k", y_title="probability"))
        self.last_report = {**self.last_report, "diagnosis": report}

    # ------------------------------------------------------------ interaction

    def summary_text(self) -> str:
        """The score line the panel shows large, e.g. "Global score 3 / 6" or "CT score 12 / 30"."""
        report = self.last_report
        if not report:
            return ""
        if report.get("modality") == "cxr":
            return f"Global score {int(report['global_score'])} / 6"
        text = f"CT score {int(report['total_score'])} / 30, {float(report['involvement_percent']):.1f}% involved"
        if "diagnosis" in report:
            diagnosis = report["diagnosis"]
            prediction = diagnosis["prediction"]
            text += f"; {prediction} (p {float(diagnosis['probabilities'][prediction]):.2f})"
        return text

    def zone_cells(self) -> list[list[tuple[str, str]]]:
        """(text, "#rrggbb") of each cell of the 3x2 zone array, rows upper..lower, columns right/left.

        CXR: the zone probability, coloured by it; CT: the zone score 0-5, coloured by score / 5.
        """
        report = self.last_report
        if not report:
            raise InputError("no severity result yet: press Apply first")
        if report.get("modality") == "cxr":
            values = np.asarray(report["probability"], dtype=float)
            texts = [[f"{p:.2f}" for p in row] for row in values]
        else:
            scores = display.ct_zone_scores(report)
            values = scores / display.CT_ZONE_SCORE_MAX
            texts = [[f"{int(s)} / {display.CT_ZONE_SCORE_MAX}" for s in row] for row in scores]
        colors = display.cell_colors(values)
        return [list(zip(text_row, color_row)) for text_row, color_row in zip(texts, colors)]

    def set_opacity(self, opacity: Optional[float] = None) -> str:
        """Store the overlay opacity and apply it to the slice views showing the probability map."""
        from covidweak.slicer.outputs import set_foreground_opacity

        params = self.parameters
        if opacity is not None:
            params.opacity = opacity
        if params.output_probability is not None:
            set_foreground_opacity(self.scene, params.output_probability, params.opacity)
        return f"overlay opacity {params.opacity:.2f}"

    def slice_of_point(self, point: int) -> int:
        """The CT slice k of point ``point`` (0-based row) of the per-slice plot."""
        table = self.parameters.output_slice_table
        if table is None:
            raise InputError("no per-slice probabilities yet: press Apply on a CT with Diagnose checked")
        rows = table.GetTable().GetNumberOfRows()
        if not 0 <= point < rows:
            raise InputError(f"plot point {point} does not exist: the plot has {rows} points")
        return int(table.GetTable().GetColumnByName("slice").GetValue(point))

    def jump_to_slice(self, k: int) -> tuple[float, float, float]:
        """Centre every slice view on slice ``k`` of the input CT; returns that RAS position."""
        from covidweak.slicer.outputs import jump_all_slices, slice_centre_ras

        volume = self.parameters.input_volume
        if volume is None or volume.GetImageData() is None:
            raise InputError("no input volume: select the CT and press Apply first")
        depth = volume.GetImageData().GetDimensions()[2]
        if not 0 <= int(k) < depth:
            raise InputError(f"slice {k} is outside the CT (0..{depth - 1}): choose a slice inside it")
        ras = slice_centre_ras(volume, int(k))
        jump_all_slices(self.scene, ras)
        return ras

    def export_csv(self, folder, overwrite: bool = False) -> list[Path]:
        """Write every result table to ``folder`` as ``<volume>_<table>.csv``; returns the paths.

        Existing files are refused unless ``overwrite``: nothing is written then.
        """
        from covidweak.slicer.outputs import write_table_csv

        params = self.parameters
        tables = {role: getattr(params, role) for role in TABLE_ROLES if getattr(params, role) is not None}
        if not tables:
            raise InputError("no result tables yet: press Apply first")
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise InputError(f"export folder '{folder}' does not exist: choose an existing folder")
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", params.input_volume.GetName() if params.input_volume else "severity")
        paths = {role: folder / f"{base}_{role.removeprefix('output_')}.csv" for role in tables}
        existing = [path.name for path in paths.values() if path.exists()]
        if existing and not overwrite:
            raise InputError(f"{', '.join(existing)} already exist in {folder}: choose another folder or allow overwrite")
        for role, path in paths.items():
            write_table_csv(tables[role], path)
        return list(paths.values())


CT_ZONE_COLUMNS = ("region", "lung_volume_ml", "lesion_volume_ml", "involvement_percent", "score")


def ct_zone_rows(report: dict) -> list[list]:
    """Six zone rows, then one per lung and the total (a lung's score is the sum of its zone scores)."""
    rows = [[f"{z['lung']} {z['zone']}", float(z["lung_volume_ml"]), float(z["lesion_volume_ml"]),
             float(z["involvement_percent"]), int(z["score"])] for z in report["zones"]]
    for lung, values in report["lungs"].items():
        score = sum(int(z["score"]) for z in report["zones"] if z["lung"] == lung)
        rows.append([lung, float(values["lung_volume_ml"]), float(values["lesion_volume_ml"]),
                     float(values["involvement_percent"]), score])
    rows.append(["total", sum(r[1] for r in rows[6:]), sum(r[2] for r in rows[6:]),
                 float(report["involvement_percent"]), int(report["total_score"])])
    return rows


def severity_command(image_path, out_dir, params) -> list:
    """``covidweak severity`` arguments; empty weight parameters leave the command's defaults."""
    argv = ["severity", image_path, "--out", out_dir, "--device", params.device, "--seg-method", params.seg_method]
    return (argv + weights_option("--severity-weights", params.severity_weights)
            + weights_option("--lungs-weights", params.lungs_weights))


def weights_option(option: str, value: str) -> list:
    """``[option, value]`` for a chosen weight file or registry name; nothing (the command's default) when empty."""
    return [option, value.strip()] if value.strip() else []


def classify_image(image) -> str:
    """Slicer loads a radiograph as a volume one slice thick, so the slice count decides which checks apply."""
    from covidweak.validate import check_ct, check_cxr

    if image.GetDimension() == 2 or image.GetSize()[2] == 1:
        check_cxr(image)
        return "cxr"
    check_ct(image)
    return "ct"

