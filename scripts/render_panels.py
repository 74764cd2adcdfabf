"""Render the three module panels to PNG for the README, without Slicer.

Usage (after ``bash scripts/demo.sh``, which writes ``demo_out``):

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/render_panels.py [--demo demo_out] \
        [--out Resources/Screenshots] [--width 420]

Writes ``<Module>_panel.png`` for COVIDWeakSeg, COVIDSeverity and COVIDSimilarCase. Each
panel is the module's own Qt Designer file (``<Module>/Resources/UI/<Module>.ui``) loaded
with PySide6 (``pip install PySide6-Essentials``). Slicer's CTK and MRML widgets do not
exist outside Slicer, so their class names are rewritten in memory to plain Qt widgets
that look alike: ctkCollapsibleButton -> QGroupBox, qMRMLNodeComboBox -> QComboBox,
qMRMLTableView -> QTableWidget, ctkSliderWidget -> QSlider + QDoubleSpinBox,
ctkPathLineEdit -> editable QComboBox + browse button. The layout is the .ui file's.

The panels are filled with the figures of a demo run, read from its output folder: the
first COVID-19 study's lesion table, involvement, CT score, zone scores and diagnosis,
and the similar-case search and lesion clusters of the demo's query study. The tables
show a subset of the real columns (the real table views scroll sideways). The pictures
are a rendering of the panel files with those values, not screenshots of a running Slicer.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

try:
    from PySide6 import QtWidgets as qt
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPixmap
    from PySide6.QtUiTools import QUiLoader
except ImportError:
    sys.exit("PySide6 is missing: pip install PySide6-Essentials (the test extra of training/ has it)")

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("COVIDWeakSeg", "COVIDSeverity", "COVIDSimilarCase")

# Slicer class -> the plain Qt class that stands in for it.
REPLACEMENTS = {
    "qMRMLWidget": "QWidget",
    "ctkCollapsibleButton": "QGroupBox",
    "qMRMLNodeComboBox": "QComboBox",
    "qMRMLTableView": "QTableWidget",
    "ctkSliderWidget": "QWidget",  # filled with a slider and a spin box after loading
    "ctkPathLineEdit": "QWidget",  # filled with an editable combo box and a browse button
}
KEPT_PROPERTIES = {"toolTip", "minimumSize", "maximumSize", "enabled", "text", "title"}


# ----------------------------------------------------------------------------- demo figures

def read_table(path: Path, delimiter: str = "\t") -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def demo_figures(demo: Path) -> dict:
    """Everything the three panels show, from a ``covidweak demo`` output folder."""
    manifest = read_table(demo / "phantom" / "manifest.csv", ",")
    case = next(row["study_id"] for row in manifest if row["diagnosis"] == "covid")
    folder = demo / "batch" / "cases" / case
    similar = json.loads((demo / "similar.json").read_text())
    query = Path(similar["query"]["path"]).parent.name
    clusters = [row for row in read_table(demo / "cluster_model" / "lesions.csv", ",") if row["study_id"] == query]
    first = similar["results"][0]
    match_ct = Path(first["source_path"])
    if not match_ct.is_file():  # the demo folder was moved: the same study inside it
        match_ct = demo / "phantom" / first["study_id"] / "ct.nii.gz"
    return {
        "case": case,
        "lesions": read_table(folder / "lesions.tsv"),
        "involvement": {row["region"]: float(row["percent"]) for row in read_table(folder / "involvement.tsv")},
        "severity": json.loads((folder / "ct_severity.json").read_text()),
        "zone_rows": read_table(folder / "severity_zones.tsv"),
        "diagnosis": json.loads((folder / "diagnosis.json").read_text()),
        "query": query,
        "similar": similar["results"],
        "match_ct": match_ct,
        "clusters": clusters,
        "demo": demo,
    }


def involvement_text(percent: dict) -> str:
    """The COVIDWeakSeg summary line, as COVIDWeakSegLib.results.summary_text writes it."""
    parts = [f"Total {percent.get('total', 0.0):.1f}%"]
    for lung in ("right", "left"):
        zones = [(region.split("_", 1)[1], value) for region, value in percent.items() if region.startswith(f"{lung}_")]
        detail = ", ".join(f"{zone} {value:.1f}" for zone, value in zones)
        parts.append(f"{lung} {percent[lung]:.1f}%" + (f" ({detail})" if detail else ""))
    return "Involvement: " + " | ".join(parts)


def number(value, digits: int = 3) -> str:
    """A float as a table view shows it: up to ``digits`` significant decimals, no trailing zeros."""
    text = f"{float(value):.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# ----------------------------------------------------------------------------- loading a .ui

def plain_ui(path: Path) -> tuple[bytes, dict, set]:
    """The .ui file with Slicer's classes replaced; returns (xml, slider settings, collapsed sections)."""
    tree = ET.parse(path)
    root = tree.getroot()
    sliders, collapsed = {}, set()
    for widget in root.iter("widget"):
        slicer_class = widget.get("class")
        if slicer_class not in REPLACEMENTS:
            continue
        widget.set("class", REPLACEMENTS[slicer_class])
        name = widget.get("name")
        for prop in list(widget.findall("property")):
            key = prop.get("name")
            if slicer_class == "ctkSliderWidget" and key not in KEPT_PROPERTIES:
                sliders.setdefault(name, {})[key] = float(prop[0].text)
            if slicer_class == "ctkCollapsibleButton" and key == "collapsed" and prop[0].text == "true":
                collapsed.add(name)
            if slicer_class == "ctkCollapsibleButton" and key == "text":
                prop.set("name", "title")
            elif key not in KEPT_PROPERTIES:
                widget.remove(prop)
    for tag in ("customwidgets", "connections"):
        for element in root.findall(tag):
            root.remove(element)
    return ET.tostring(root), sliders, collapsed


def load_panel(module: str):
    data, sliders, collapsed = plain_ui(ROOT / module / "Resources" / "UI" / f"{module}.ui")
    contents = QByteArray(data)  # kept alive while the buffer reads it
    buffer = QBuffer(contents)
    buffer.open(QIODevice.ReadOnly)
    loader = QUiLoader()
    panel = loader.load(buffer)
    if panel is None:
        raise SystemExit(f"could not load the panel of {module}")
    for i in range(panel.layout().count()):  # the bottom spacer: no blank band in the picture
        spacer = panel.layout().itemAt(i).spacerItem()
        if spacer is not None:
            spacer.changeSize(0, 0)
    for name, settings in sliders.items():
        add_slider(child(panel, name), settings)
    for group in panel.findChildren(qt.QGroupBox):
        collapse(group, group.objectName() in collapsed)
    return panel


def child(panel, name: str):
    widget = panel.findChild(QObject, name)
    if widget is None:
        raise SystemExit(f"the panel has no widget '{name}': scripts/render_panels.py needs updating")
    return widget


def add_slider(holder, settings: dict) -> None:
    """ctkSliderWidget: a slider with a spin box beside it."""
    low, high, step = settings.get("minimum", 0.0), settings.get("maximum", 1.0), settings.get("singleStep", 0.01)
    layout = qt.QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    holder.setSizePolicy(qt.QSizePolicy.Preferred, qt.QSizePolicy.Fixed)
    slider = qt.QSlider(Qt.Horizontal)
    slider.setRange(0, round((high - low) / step))
    spin = qt.QDoubleSpinBox()
    spin.setDecimals(int(settings.get("decimals", 2)))
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.valueChanged.connect(lambda value: slider.setValue(round((value - low) / step)))
    layout.addWidget(slider, 1)
    layout.addWidget(spin)
    spin.setValue(settings.get("value", low))
    holder.setProperty("spin", spin)


def set_slider(holder, value: float) -> None:
    holder.property("spin").setValue(value)


def set_path(holder, text: str) -> None:
    """ctkPathLineEdit: an editable combo box with the path, and a browse button."""
    layout = qt.QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    combo = qt.QComboBox()
    combo.setEditable(True)
    combo.setEditText(text)
    combo.setSizePolicy(qt.QSizePolicy.Ignored, qt.QSizePolicy.Fixed)
    button = qt.QToolButton()
    button.setText("...")
    holder.setSizePolicy(qt.QSizePolicy.Preferred, qt.QSizePolicy.Fixed)
    layout.addWidget(combo, 1)
    layout.addWidget(button)


def collapse(group, collapsed: bool) -> None:
    """ctkCollapsibleButton: an arrow before the title; a collapsed section shows only its title."""
    group.setTitle(("\u25b8 " if collapsed else "\u25be ") + group.title())
    if collapsed:
        for widget in group.findChildren(qt.QWidget):
            widget.hide()
        group.layout().setContentsMargins(0, 0, 0, 0)
        group.setFlat(True)
        group.setFixedHeight(group.fontMetrics().height() + 4)


def fill_table(table, columns: list[str], rows: list[list[str]], visible_rows: int | None = None) -> None:
    """A qMRMLTableView stand-in: column names as headers, compact rows, as tall as ``visible_rows`` rows.

    Columns fit their contents; the last one takes the width that is left and elides its text.
    """
    font = table.font()
    font.setPointSizeF(8)  # narrower columns: the panel is narrow
    table.setFont(font)
    table.horizontalHeader().setFont(font)
    table.setColumnCount(len(columns))
    table.setRowCount(len(rows))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = qt.QTableWidgetItem(text)
            item.setTextAlignment(Qt.AlignLeft | Qt.AlignVCenter)
            table.setItem(r, c, item)
    header = table.horizontalHeader()
    header.setSectionResizeMode(qt.QHeaderView.ResizeToContents)
    header.setSectionResizeMode(len(columns) - 1, qt.QHeaderView.Stretch)
    table.setTextElideMode(Qt.ElideRight)
    shown = len(rows) if visible_rows is None else min(visible_rows, len(rows))
    height = header.sizeHint().height() + shown * table.verticalHeader().defaultSectionSize() + 2 * table.frameWidth()
    table.setFixedHeight(max(table.minimumHeight(), height))


def show_progress(panel, done: int, total: int, message: str) -> None:
    """A run in progress: the bar and Cancel are shown, the status line carries the step's message."""
    bar = child(panel, "progressBar")
    bar.setMaximum(total)
    bar.setValue(done)
    bar.setVisible(True)
    child(panel, "cancelButton").setVisible(True)
    child(panel, "statusLabel").setText(message)


# ----------------------------------------------------------------------------- the three panels

def weakseg_panel(figures: dict):
    panel = load_panel("COVIDWeakSeg")
    child(panel, "inputVolumeSelector").addItem(f"{figures['case']} CT")
    child(panel, "methodComboBox").setCurrentText("mseamnam")
    set_slider(child(panel, "foregroundThresholdSlider"), 0.10)
    set_slider(child(panel, "backgroundThresholdSlider"), 0.05)
    set_slider(child(panel, "opacitySlider"), 0.5)
    child(panel, "uncertainCheckBox").setChecked(True)
    for name in ("applyButton", "createSegmentationButton", "segmentLungsButton"):
        child(panel, name).setEnabled(True)
    child(panel, "summaryLabel").setText(involvement_text(figures["involvement"]))
    columns = ["id", "volume_ml", "lung", "zone", "mean_hu", "max_probability"]
    rows = [[row["id"], number(row["volume_ml"], 2), row["lung"], row["zone"], number(row["mean_hu"], 0),
             number(row["max_probability"], 4)] for row in figures["lesions"]]
    fill_table(child(panel, "lesionTableView"), columns, rows)
    child(panel, "outputSegmentationSelector").addItem("None")
    # After Apply, Segment lungs is running (step 4 of 6 of covidweak.lungs.segment_lungs).
    show_progress(panel, 4, 6, "refining at full resolution")
    return panel


def severity_panel(figures: dict):
    sys.path.insert(0, str(ROOT / "COVIDSeverity"))
    from COVIDSeverityLib.display import cell_colors  # the module's own green-amber-red ramp

    panel = load_panel("COVIDSeverity")
    severity, diagnosis = figures["severity"], figures["diagnosis"]
    child(panel, "inputVolumeSelector").addItem(f"{figures['case']} CT")
    child(panel, "diagnoseCheckBox").setChecked(True)
    child(panel, "applyButton").setEnabled(True)
    child(panel, "exportButton").setEnabled(True)
    prediction = diagnosis["prediction"]  # the score line as COVIDSeverityLogic.summary_text writes it
    text = (f"CT score {int(severity['total_score'])} / 30, {float(severity['involvement_percent']):.1f}% involved; "
            f"{prediction} (p {float(diagnosis['probabilities'][prediction]):.2f})")
    child(panel, "statusLabel").setText(text)
    child(panel, "scoreLabel").setText(text)

    # The 3x2 array: zone score 0-5 per zone, coloured by score / 5 (COVIDSeverityLib.logic.zone_cells).
    zones = {(zone["zone"], zone["lung"]): int(zone["score"]) for zone in severity["zones"]}
    grid = [[zones[(row, lung)] for lung in ("right", "left")] for row in ("upper", "middle", "lower")]
    colors = cell_colors([[value / 5 for value in row] for row in grid])
    table = child(panel, "zoneTableWidget")
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            item = qt.QTableWidgetItem(f"{value} / 5")
            item.setTextAlignment(Qt.AlignCenter)
            item.setBackground(QColor(colors[r][c]))
            table.setItem(r, c, item)
    table.horizontalHeader().setSectionResizeMode(qt.QHeaderView.Stretch)
    table.verticalHeader().setSectionResizeMode(qt.QHeaderView.Stretch)

    columns = ["region", "lesion_volume_ml", "involvement_percent", "score"]
    rows = [[row["region"], number(row["lesion_volume_ml"], 1), number(row["involvement_percent"], 1), row["score"]]
            for row in figures["zone_rows"]]
    fill_table(child(panel, "zoneTableView"), columns, rows)
    rows = [[name, number(diagnosis["probabilities"][name], 3)] for name in diagnosis["classes"]]
    fill_table(child(panel, "diagnosisTableView"), ["class", "probability"], rows)
    set_path(child(panel, "exportDirectoryPathLineEdit"), str(Path("demo_out") / "severity_csv"))
    return panel


def thumbnail(ct_path: Path, k: int):
    """The matching slice in the lung window, as COVIDSimilarCaseLogic.match_thumbnail draws it."""
    import numpy as np
    import SimpleITK as sitk
    from covidweak.io import read_ct
    from covidweak.viz import LUNG_WINDOW, window

    grey = np.ascontiguousarray(window(sitk.GetArrayViewFromImage(read_ct(ct_path))[k], *LUNG_WINDOW), dtype=np.uint8)
    image = QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0], QImage.Format_Grayscale8).copy()
    pixmap = QPixmap.fromImage(image)
    return pixmap.scaledToWidth(min(pixmap.width(), 200))


def similar_panel(figures: dict):
    panel = load_panel("COVIDSimilarCase")
    demo = Path("demo_out")
    child(panel, "queryVolumeSelector").addItem(f"{figures['query']} CT")
    set_path(child(panel, "indexDirectoryPathLineEdit"), str(demo / "case_index"))
    set_path(child(panel, "dataDirectoryPathLineEdit"), str(demo / "phantom"))
    set_path(child(panel, "clusterModelPathLineEdit"), str(demo / "cluster_model"))
    child(panel, "neighborCountSpinBox").setValue(len(figures["similar"]))
    for name in ("searchButton", "clustersButton"):
        child(panel, name).setEnabled(True)
    columns = ["rank", "distance", "study_id", "diagnosis", "lesions"]
    rows = [[str(row["rank"]), number(row["distance"], 4), row["study_id"], row["diagnosis"], row["lesions"]]
            for row in figures["similar"]]
    fill_table(child(panel, "resultsTableView"), columns, rows)
    label = child(panel, "thumbnailLabel")
    label.setWordWrap(False)  # a word-wrapped label sizes itself by its text, not by the picture
    label.setPixmap(thumbnail(figures["match_ct"], int(figures["similar"][0]["match_slice"])))
    columns = ["lesion_id", "cluster", "score", "type"]
    rows = [[row["lesion_id"], row["cluster"], number(row["score"], 3), row["type"]] for row in figures["clusters"]]
    fill_table(child(panel, "lesionTableView"), columns, rows, visible_rows=6)
    child(panel, "statusLabel").setText(f"{len(rows)} lesions; click a row to jump to one")
    return panel


# ----------------------------------------------------------------------------- rendering

def render(panel, path: Path, width: int) -> None:
    panel.setMinimumWidth(width)
    panel.setMaximumWidth(width)
    panel.adjustSize()
    layout = panel.layout()
    height = layout.heightForWidth(width) if layout.hasHeightForWidth() else layout.sizeHint().height()
    panel.resize(width, max(height, layout.minimumSize().height()) + 4)
    panel.show()
    qt.QApplication.processEvents()
    image = panel.grab()
    image.save(str(path), "PNG")
    panel.close()
    print(f"{path}  {image.width()}x{image.height()}  {path.stat().st_size // 1024} kB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, default=ROOT / "demo_out",
                        help="output folder of `covidweak demo` (default: demo_out, as bash scripts/demo.sh writes)")
    parser.add_argument("--out", type=Path, default=ROOT / "Resources" / "Screenshots")
    parser.add_argument("--width", type=int, default=420, help="panel width in pixels")
    args = parser.parse_args(argv)
    if not (args.demo / "demo_summary.json").is_file():
        parser.error(f"{args.demo} is not a demo output folder: run `bash scripts/demo.sh` "
                     "(or covidweak demo --out DIR and pass --demo DIR)")
    app = qt.QApplication.instance() or qt.QApplication([])
    app.setStyle("Fusion")
    app.setFont(QFont("DejaVu Sans", 9))
    figures = demo_figures(args.demo)
    args.out.mkdir(parents=True, exist_ok=True)
    for module, build in zip(MODULES, (weakseg_panel, severity_panel, similar_panel)):
        render(build(figures), args.out / f"{module}_panel.png", args.width)
    return 0


if __name__ == "__main__":
    sys.exit(main())
