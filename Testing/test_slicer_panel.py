"""The panel glue shared by the three Widgets, driven with small widget stand-ins and a real scene.

The stand-ins expose the same methods and properties PythonQt gives the real
ctk/qMRML widgets, which do not exist outside the Slicer application.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from covidweak.errors import InputError
from covidweak.mrml_params import ParameterizedLogic, node_reference, parameter
from covidweak.slicer_panel import PanelController, WidgetBinding


class Signals:
    def __init__(self):
        self.slots = {}

    def connect(self, signal, slot):
        self.slots.setdefault(signal, []).append(slot)
        return True

    def emit(self, signal, *args):
        for slot in self.slots.get(signal, []):
            slot(*args)


class NodeSelector(Signals):
    def __init__(self):
        super().__init__()
        self._node = None

    def currentNode(self):
        return self._node

    def setCurrentNode(self, node):
        self._node = node
        self.emit("currentNodeChanged(vtkMRMLNode*)", node)


class Slider(Signals):
    decimals = 2

    def __init__(self):
        super().__init__()
        self.value = 0.0

    def setValue(self, value):
        self.value = value
        self.emit("valueChanged(double)", value)


class SpinBox(Signals):
    def __init__(self):
        super().__init__()
        self.value = 0

    def setValue(self, value):
        self.value = value
        self.emit("valueChanged(int)", value)


class PathEdit(Signals):
    def __init__(self):
        super().__init__()
        self.currentPath = ""

    def setCurrentPath(self, path):
        self.currentPath = path
        self.emit("currentPathChanged(QString)", path)


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
    widgets = {"volume": NodeSelector(), "threshold": Slider(), "count": SpinBox(), "folder": PathEdit()}
    errors = []
    binding = WidgetBinding(lambda: logic.parameters, widgets, on_error=errors.append)
    binding.connect()
    return logic, widgets, binding, errors


def test_widgets_write_parameters(bound, mrml_scene):
    logic, widgets, _, _ = bound
    volume = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
    widgets["volume"].setCurrentNode(volume)
    widgets["threshold"].setValue(0.4)
    widgets["count"].setValue(12)
    widgets["folder"].setCurrentPath("/data/index")
    assert logic.parameters.values() == DemoParameters(volume, 0.4, 12, "/data/index")


def test_parameters_show_in_widgets_without_echo(bound, mrml_scene):
    logic, widgets, binding, _ = bound
    params = logic.parameters
    params.threshold, params.count, params.folder = 0.7, 3, "/x"
    node = mrml_scene.GetSingletonNode("Demo", "vtkMRMLScriptedModuleNode")
    modified_before = node.GetMTime()
    binding.update_widgets()
    assert (widgets["threshold"].value, widgets["count"].value, widgets["folder"].currentPath) == (0.7, 3, "/x")
    assert node.GetMTime() == modified_before


def test_rejected_value_is_reported_and_widget_restored(bound):
    logic, widgets, _, errors = bound
    widgets["threshold"].setValue(3.0)
    assert errors and "outside [0.0, 1.0]" in errors[0]
    assert logic.parameters.threshold == 0.1
    assert widgets["threshold"].value == 0.1


def test_unbindable_widget_is_refused():
    with pytest.raises(TypeError):
        WidgetBinding.kind_of(object())


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
    from covidweak.slicer_deps import DependencyError

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
