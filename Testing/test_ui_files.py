"""The modules' Qt Designer files load, hold the widgets the Widgets use, and render a sane panel.

QUiLoader knows none of Slicer's ctk/qMRML classes, so each custom class is
rewritten to the base its ``<customwidgets>`` entry declares before loading.
Those bases are plain QWidgets that draw nothing, so for the picture the
custom classes are replaced by look-alike Qt widgets instead (a group box
for a collapsible button, a combo box for a node selector...).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from covidweakseg_fixtures import logic  # noqa: F401  (COVIDWeakSeg's Logic on a slicer-core scene)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
QtCore = pytest.importorskip("PySide6.QtCore")
QtWidgets = pytest.importorskip("PySide6.QtWidgets")
QtUiTools = pytest.importorskip("PySide6.QtUiTools")

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("COVIDWeakSeg", "COVIDSeverity", "COVIDSimilarCase")

COMMON = {"inputsCollapsibleButton": "ctkCollapsibleButton", "progressBar": "QProgressBar",
          "cancelButton": "QPushButton", "statusLabel": "QLabel"}
EXPECTED = {
    "COVIDWeakSeg": {**COMMON, "inputVolumeSelector": "qMRMLNodeComboBox",
                     "foregroundThresholdSlider": "ctkSliderWidget", "backgroundThresholdSlider": "ctkSliderWidget",
                     "outputSegmentationSelector": "qMRMLNodeComboBox", "segmentLungsButton": "QPushButton",
                     "methodComboBox": "QComboBox", "weightsLineEdit": "QLineEdit", "deviceComboBox": "QComboBox",
                     "opacitySlider": "ctkSliderWidget", "uncertainCheckBox": "QCheckBox",
                     "lesionBoxesCheckBox": "QCheckBox", "replaceOutputsCheckBox": "QCheckBox",
                     "applyButton": "QPushButton", "createSegmentationButton": "QPushButton",
                     "lesionTableView": "qMRMLTableView", "summaryLabel": "QLabel"},
    "COVIDSeverity": {**COMMON, "inputVolumeSelector": "qMRMLNodeComboBox"},
    "COVIDSimilarCase": {**COMMON, "queryVolumeSelector": "qMRMLNodeComboBox",
                         "indexDirectoryPathLineEdit": "ctkPathLineEdit", "neighborCountSpinBox": "QSpinBox"},
}
"""objectName -> class, as the module's Widget code and Slicer expect them."""

STAND_INS = {"ctkCollapsibleButton": "QGroupBox", "qMRMLNodeComboBox": "QComboBox",
             "ctkSliderWidget": "QDoubleSpinBox", "ctkPathLineEdit": "QLineEdit", "qMRMLWidget": "QWidget",
             "qMRMLTableView": "QTableWidget"}
RENAMED_PROPERTIES = {"QGroupBox": {"text": "title"}}


def ui_path(module: str) -> Path:
    return ROOT / module / "Resources" / "UI" / f"{module}.ui"


def widget_classes(tree: ET.ElementTree) -> dict[str, str]:
    return {w.get("name"): w.get("class") for w in tree.iter("widget")}


def declared_bases(tree: ET.ElementTree) -> dict[str, str]:
    return {c.findtext("class"): c.findtext("extends") for c in tree.iter("customwidget")}


def loadable_xml(path: Path, stand_ins: dict[str, str] | None = None) -> bytes:
    """The .ui text with every custom class replaced by its declared base (or by a stand-in)."""
    tree = ET.parse(path)
    root = tree.getroot()
    bases = declared_bases(tree)
    for widget in root.iter("widget"):
        cls = widget.get("class")
        if cls not in bases:
            continue
        replacement = (stand_ins or {}).get(cls, bases[cls])
        widget.set("class", replacement)
        for prop in widget.findall("property"):
            renamed = RENAMED_PROPERTIES.get(replacement, {}).get(prop.get("name"))
            if renamed:
                prop.set("name", renamed)
    # Signals like mrmlSceneChanged do not exist on the fallbacks; QUiLoader would warn about them.
    for section in ("customwidgets", "connections"):
        for element in root.findall(section):
            root.remove(element)
    return ET.tostring(root, encoding="utf-8")


@pytest.fixture(scope="module")
def qt_app():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def load(xml: bytes):
    buffer = QtCore.QBuffer()
    buffer.setData(QtCore.QByteArray(xml))
    buffer.open(QtCore.QIODevice.ReadOnly)
    loader = QtUiTools.QUiLoader()
    widget = loader.load(buffer)
    assert widget is not None, loader.errorString()
    return widget


def render(widget, path: Path) -> "QtGui.QImage":
    widget.resize(380, widget.sizeHint().height() + 40)
    widget.show()
    QtWidgets.QApplication.processEvents()
    assert widget.grab().save(str(path))
    from PySide6.QtGui import QImage

    return QImage(str(path))


def distinct_colors(image, step: int = 3) -> int:
    return len({image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)})


@pytest.mark.parametrize("module", MODULES)
def test_ui_declares_what_the_widget_uses(module):
    tree = ET.parse(ui_path(module))
    assert tree.getroot().findtext("class") == module
    classes = widget_classes(tree)
    for name, cls in EXPECTED[module].items():
        assert classes.get(name) == cls, f"{module}.ui: {name} should be a {cls}"
    bases = declared_bases(tree)
    custom = {cls for cls in classes.values() if not cls.startswith("Q")}
    assert custom <= set(bases), f"undeclared custom classes: {custom - set(bases)}"
    assert all(base == "QWidget" for base in bases.values())


@pytest.mark.parametrize("module", MODULES)
def test_node_selectors_are_typed_and_get_the_scene(module):
    root = ET.parse(ui_path(module)).getroot()
    selectors = [w for w in root.iter("widget") if w.get("class") == "qMRMLNodeComboBox"]
    assert selectors
    scene_receivers = {c.findtext("receiver") for c in root.iter("connection")
                       if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"}
    for selector in selectors:
        types = [s.text for p in selector.findall("property") if p.get("name") == "nodeTypes" for s in p.iter("string")]
        assert types and all(t.startswith("vtkMRML") for t in types)
        assert selector.get("name") in scene_receivers


@pytest.mark.parametrize("module", MODULES)
def test_ui_loads_with_base_classes(module, qt_app, tmp_path):
    panel = load(loadable_xml(ui_path(module)))
    for name in EXPECTED[module]:
        assert panel.findChild(QtCore.QObject, name) is not None, f"{name} missing after loading {module}.ui"
    # Progress and Cancel appear only while work runs.
    assert panel.findChild(QtWidgets.QProgressBar, "progressBar").isHidden()
    assert panel.findChild(QtWidgets.QPushButton, "cancelButton").isHidden()
    assert panel.findChild(QtWidgets.QLabel, "statusLabel").wordWrap()


@pytest.mark.parametrize("module", MODULES)
def test_ui_renders_a_non_blank_panel(module, qt_app, tmp_path):
    panel = load(loadable_xml(ui_path(module), STAND_INS))
    image = render(panel, tmp_path / f"{module}.png")
    assert image.width() >= 300 and image.height() >= 100
    assert distinct_colors(image) > 8, "the rendered panel is blank"
    inputs = panel.findChild(QtWidgets.QGroupBox, "inputsCollapsibleButton")
    assert inputs.title() == "Inputs"


def test_threshold_sliders_start_at_the_paper_defaults(qt_app):
    panel = load(loadable_xml(ui_path("COVIDWeakSeg"), STAND_INS))
    t_fg = panel.findChild(QtWidgets.QDoubleSpinBox, "foregroundThresholdSlider")
    t_bg = panel.findChild(QtWidgets.QDoubleSpinBox, "backgroundThresholdSlider")
    assert (t_fg.value(), t_bg.value()) == (pytest.approx(0.1), pytest.approx(0.01))
    assert (t_fg.minimum(), t_fg.maximum(), t_bg.minimum(), t_bg.maximum()) == (0.0, 1.0, 0.0, 1.0)
    button = panel.findChild(QtWidgets.QPushButton, "segmentLungsButton")
    assert button.text() == "Segment lungs" and not button.isEnabled()


def test_method_and_device_choices_match_the_package(qt_app):
    from covidweak.models import METHODS

    panel = load(loadable_xml(ui_path("COVIDWeakSeg"), STAND_INS))

    def items(name):
        combo = panel.findChild(QtWidgets.QComboBox, name)
        return [combo.itemText(i) for i in range(combo.count())]

    assert tuple(items("methodComboBox")) == METHODS
    assert items("deviceComboBox") == ["auto", "cpu", "cuda"]
    assert not panel.findChild(QtWidgets.QPushButton, "applyButton").isEnabled()


def bound_widget_names(module: str) -> dict[str, str]:
    """The module Widget's BOUND_WIDGETS ({parameter: widget name}), read without importing Slicer."""
    import ast

    tree = ast.parse((ROOT / module / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "BOUND_WIDGETS":
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module}.py has no BOUND_WIDGETS")


def test_the_panel_follows_its_parameter_node_both_ways(qt_app, logic):
    """COVIDWeakSeg's own .ui (PySide6 look-alikes for the ctk widgets) bound to its Logic's parameter
    node on a slicer-core scene, as the module's setup does: a script's change shows in the panel,
    and a change in the panel reaches the node. Node selectors need Slicer and stay out."""
    from covidweak.slicer.panel import WidgetBinding

    panel = load(loadable_xml(ui_path("COVIDWeakSeg"), STAND_INS))
    widgets = {name: panel.findChild(QtWidgets.QWidget, child)
               for name, child in bound_widget_names("COVIDWeakSeg").items() if not logic.parameters.is_node_reference(name)}
    assert {"t_fg", "t_bg", "method", "weights", "uncertain_segment"} <= set(widgets)
    binding = WidgetBinding(lambda: logic.parameters, widgets)
    binding.connect()
    binding.observe()

    logic.parameters.t_fg = 0.25  # a script in the Python console
    logic.parameters.method = "cam"
    logic.parameters.weights = "/models/mine.pt"
    logic.parameters.uncertain_segment = True
    assert widgets["t_fg"].value() == pytest.approx(0.25) and widgets["method"].currentText() == "cam"
    assert widgets["weights"].text() == "/models/mine.pt" and widgets["uncertain_segment"].isChecked()

    widgets["t_bg"].setValue(0.05)  # the user, in the panel
    widgets["device"].setCurrentText("cpu")
    widgets["lesion_boxes"].setChecked(True)
    assert (logic.parameters.t_bg, logic.parameters.device, logic.parameters.lesion_boxes) == (0.05, "cpu", True)
    binding.release()
