"""The panel glue shared by the three Widgets, driven with small widget stand-ins and a real scene.

The stand-ins expose the same methods and properties PythonQt gives the real
ctk/qMRML widgets, which do not exist outside the Slicer application.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from covidweak.errors import InputError
from covidweak.slicer.parameters import ParameterizedLogic, node_reference, parameter
from covidweak.slicer.panel import PanelController, WidgetBinding


class StandIn:
    """What PythonQt gives a Qt widget in Slicer: ``className()``, string-signature ``connect``,
    ``property``/``setProperty``, and the setter slot that emits the change signal."""

    QT_CLASS = ""
    PROPERTY, SIGNAL = "", ""

    def __init__(self, value=None):
        self.slots = {}
        self._value = value

    def className(self):
        return self.QT_CLASS

    def connect(self, signal, slot):
        self.slots.setdefault(signal, []).append(slot)
        return True

    def emit(self, signal, *args):
        for slot in self.slots.get(signal, []):
            slot(*args)

    def property(self, name):
        assert name == self.PROPERTY
        return self._value

    def setProperty(self, name, value):
        assert name == self.PROPERTY
        self._value = value
        self.emit(self.SIGNAL, value)
        return True


class NodeSelector(StandIn):
    QT_CLASS, SIGNAL = "qMRMLNodeComboBox", "currentNodeChanged(vtkMRMLNode*)"

    def currentNode(self):
        return self._value

    def setCurrentNode(self, node):
        self._value = node
        self.emit(self.SIGNAL, node)


class Slider(StandIn):
    QT_CLASS, PROPERTY, SIGNAL = "ctkSliderWidget", "value", "valueChanged(double)"


class SpinBox(StandIn):
    QT_CLASS, PROPERTY, SIGNAL = "QSpinBox", "value", "valueChanged(int)"


class PathEdit(StandIn):
    QT_CLASS, PROPERTY, SIGNAL = "ctkPathLineEdit", "currentPath", "currentPathChanged(QString)"


class Label:
    text = ""
    styleSheet = ""


class Bar:
    value = 0
    maximum = 100
    visible = True


class Button:
    visible = True


@dataclass
class DemoParameters:
    volume: object = node_reference("vtkMRMLScalarVolumeNode")
    threshold: float = parameter(0.1, minimum=0.0, maximum=1.0)
    count: int = parameter(5, minimum=1, maximum=50)
    folder: str = parameter("")


class DemoLogic(ParameterizedLogic):
    MODULE_NAME = "Demo"
    PARAMETERS = DemoParameters


@pytest.fixture
def bound(mrml_scene):
    logic = DemoLogic(mrml_scene)
    widgets = {"volume": NodeSelector(), "threshold": Slider(0.0), "count": SpinBox(0), "folder": PathEdit("")}
    errors = []
    binding = WidgetBinding(lambda: logic.parameters, widgets, on_error=errors.append)
    binding.connect()
    return logic, widgets, binding, errors


def test_widgets_write_parameters(bound, mrml_scene):
    logic, widgets, _, _ = bound
    volume = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
    widgets["volume"].setCurrentNode(volume)
    widgets["threshold"].setProperty("value", 0.4)
    widgets["count"].setProperty("value", 12)
    widgets["folder"].setProperty("currentPath", "/data/index")
    assert logic.parameters.values() == DemoParameters(volume, 0.4, 12, "/data/index")


def test_parameters_show_in_widgets_without_echo(bound, mrml_scene):
    logic, widgets, binding, _ = bound
    params = logic.parameters
    params.threshold, params.count, params.folder = 0.7, 3, "/x"
    node = mrml_scene.GetSingletonNode("Demo", "vtkMRMLScriptedModuleNode")
    modified_before = node.GetMTime()
    binding.update_widgets()
    assert [WidgetBinding.read(widgets[name]) for name in ("threshold", "count", "folder")] == [0.7, 3, "/x"]
    assert node.GetMTime() == modified_before


def test_rejected_value_is_reported_and_widget_restored(bound):
    logic, widgets, _, errors = bound
    widgets["threshold"].setProperty("value", 3.0)
    assert errors and "outside [0.0, 1.0]" in errors[0]
    assert logic.parameters.threshold == 0.1
    assert WidgetBinding.read(widgets["threshold"]) == 0.1


def test_unbindable_widget_is_refused_when_bound_not_when_first_changed(mrml_scene):
    class Dial(StandIn):
        QT_CLASS = "QDial"

    with pytest.raises(TypeError, match="cannot bind a QDial"):
        WidgetBinding(lambda: DemoLogic(mrml_scene).parameters, {"count": Dial()})


def test_a_scripts_change_of_the_parameter_node_shows_in_the_widgets(bound, mrml_scene):
    logic, widgets, binding, _ = bound
    binding.observe()
    volume = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
    logic.parameters.threshold = 0.35  # as a script in the Python console would
    logic.parameters.volume = volume
    assert WidgetBinding.read(widgets["threshold"]) == 0.35 and widgets["volume"].currentNode() is volume
    binding.release()
    logic.parameters.threshold = 0.9
    assert WidgetBinding.read(widgets["threshold"]) == 0.35, "a released binding no longer follows the node"


@pytest.mark.parametrize("remove_singletons", [0, 1], ids=["node reset", "node replaced"])
def test_after_a_scene_close_the_binding_follows_the_parameter_node(bound, mrml_scene, remove_singletons):
    logic, widgets, binding, _ = bound
    logic.parameters.count = 7
    binding.observe()
    mrml_scene.Clear(remove_singletons)
    binding.observe()  # what the panels do on EndCloseEvent
    assert WidgetBinding.read(widgets["count"]) == 5  # the default again
    logic.parameters.count = 9
    assert WidgetBinding.read(widgets["count"]) == 9


def panel(ensure=lambda log: None):
    label, bar, cancel = Label(), Bar(), Button()
    return PanelController(label, bar, cancel, ensure_dependencies=ensure), label, bar, cancel


def test_progress_widgets_hidden_until_work_runs():
    controller, label, bar, cancel = panel()
    assert not bar.visible and not cancel.visible
    seen = []

    def work(progress):
        progress.update(2, 4, "half way")
        seen.append((bar.visible, cancel.visible, bar.value, bar.maximum, label.text))
        return 42

    assert controller.run(work, "Working...", lambda result: f"done {result}") == 42
    assert seen == [(True, True, 2, 4, "half way")]
    assert label.text == "done 42" and not bar.visible and not cancel.visible


def test_cancel_stops_work_and_says_so():
    controller, label, bar, _ = panel()

    def work(progress):
        controller.cancel()
        progress.update(1, 10)
        raise AssertionError("work went on after cancel")

    assert controller.run(work, "Working...", str) is None
    assert label.text.startswith("Cancelled by the user") and not bar.visible
    assert not controller.busy


def test_user_errors_become_the_status_line():
    controller, label, _, _ = panel()

    def fail():
        raise InputError("no lung found: check the CT")

    assert controller.attempt(fail) is False
    assert label.text == "no lung found: check the CT" and label.styleSheet == PanelController.ERROR_STYLE
    assert controller.attempt(lambda: "fine") is True
    assert label.text == "fine" and label.styleSheet == ""


def test_bugs_are_reported_without_crashing_the_panel():
    controller, label, _, _ = panel()
    assert controller.attempt(lambda: 1 / 0) is False
    assert label.text.startswith("unexpected error (ZeroDivisionError")


def test_missing_dependencies_block_work_once_reported():
    from covidweak.slicer.deps import DependencyError

    calls = []

    def ensure(log):
        calls.append(log)
        raise DependencyError("installing covidweak's dependencies was declined: accept to continue")

    controller, label, _, _ = panel(ensure)
    assert controller.run(lambda progress: 1, "Working...", str) is None
    assert "declined" in label.text and len(calls) == 1

    ok_calls = []
    ok_controller, _, _, _ = panel(lambda log: ok_calls.append(log))
    assert ok_controller.attempt(lambda: "a") and ok_controller.attempt(lambda: "b")
    assert len(ok_calls) == 1, "dependencies are checked once per session, not on every action"
