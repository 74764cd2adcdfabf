"""GUI glue shared by the three Slicer module panels, written without importing qt.

Widgets are driven only through the methods and properties PythonQt exposes
(``setCurrentNode``, ``value``, ``text``, ``show``...), so this module imports
outside Slicer and the three Widgets stay thin instead of repeating the same
status-line, dependency and progress handling.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional, TypeVar

from ..errors import CancelledError, CovidWeakError, InputError
from ..progress import Progress

T = TypeVar("T")

BINDABLE = {
    # Qt class: (the Qt property holding the value, the signal it changes with). A node selector's
    # value is read and written with currentNode() / setCurrentNode(): it has no node property.
    "qMRMLNodeComboBox": (None, "currentNodeChanged(vtkMRMLNode*)"),
    "ctkPathLineEdit": ("currentPath", "currentPathChanged(QString)"),
    "QComboBox": ("currentText", "currentTextChanged(QString)"),
    "ctkComboBox": ("currentText", "currentTextChanged(QString)"),
    "QCheckBox": ("checked", "toggled(bool)"),
    "ctkCheckBox": ("checked", "toggled(bool)"),
    "ctkSliderWidget": ("value", "valueChanged(double)"),
    "ctkDoubleSpinBox": ("value", "valueChanged(double)"),
    "QDoubleSpinBox": ("value", "valueChanged(double)"),
    "QSpinBox": ("value", "valueChanged(int)"),
    "QLineEdit": ("text", "textChanged(QString)"),
}
"""The widget classes a parameter can be bound to, by Qt class name."""


def qt_class_name(widget) -> str:
    """The Qt class of ``widget``: ``className()`` in Slicer's PythonQt, the meta-object's in PySide6."""
    if hasattr(widget, "className"):
        return widget.className()
    if hasattr(widget, "metaObject"):
        return widget.metaObject().className()
    return type(widget).__name__


def connect_signal(widget, signature: str, slot: Callable[..., Any]) -> None:
    """Connect ``widget``'s signal ``signature`` (e.g. ``"valueChanged(double)"``) to ``slot``.

    PythonQt takes the signature itself; PySide6 wants it marked by ``QtCore.SIGNAL``.
    """
    try:
        widget.connect(signature, slot)
    except TypeError:
        from PySide6.QtCore import SIGNAL

        widget.connect(SIGNAL(signature), slot)


class WidgetBinding:
    """Keep GUI widgets and a module's parameter node in step, in both directions.

    A widget's change is written to its parameter at once. After :meth:`observe`, every change of
    the parameter node, a script's or a scene load's included, shows in the widgets. How a widget
    is read, written and observed follows from its Qt class (:data:`BINDABLE`), through Qt's
    property system, so the same code drives Slicer's PythonQt widgets and PySide6 ones (tests).
    ``on_error`` receives the message of a rejected value (e.g. out of bounds).
    """

    def __init__(self, get_parameters: Callable[[], TypedParameters], widgets: dict[str, Any],
                 on_error: Optional[Callable[[str], None]] = None):
        self._get_parameters = get_parameters
        self._widgets = dict(widgets)
        for widget in self._widgets.values():
            self.property_of(widget)  # an unbindable widget fails here, not at the first change
        self._on_error = on_error
        self._updating = False
        self._observed = None
        self._observer_tag = None

    @staticmethod
    def property_of(widget) -> tuple[Optional[str], str]:
        """(value property, change signal) of ``widget``; TypeError naming the class when it cannot be bound."""
        name = qt_class_name(widget)
        if name not in BINDABLE:
            raise TypeError(f"cannot bind a {name}: bindable widgets are {', '.join(sorted(BINDABLE))}")
        return BINDABLE[name]

    def connect(self) -> None:
        """Connect each widget's change signal to the matching parameter."""
        for name, widget in self._widgets.items():
            connect_signal(widget, self.property_of(widget)[1], lambda *args, name=name: self.widget_changed(name))

    def observe(self) -> None:
        """Show the parameter node's values now, and each later change of the node, in the widgets.

        Call it again after the scene was closed or imported: the parameters may live on another
        node then, and the node observed before is released.
        """
        node = self._get_parameters().node
        if node is not self._observed:
            self.release()
            self._observer_tag = node.AddObserver("ModifiedEvent", lambda caller, event: self.update_widgets())
            self._observed = node
        self.update_widgets()

    def release(self) -> None:
        """Stop observing the parameter node (the module panel's cleanup)."""
        if self._observed is not None:
            self._observed.RemoveObserver(self._observer_tag)
        self._observed = self._observer_tag = None

    @staticmethod
    def read(widget):
        prop = BINDABLE[qt_class_name(widget)][0]
        return widget.currentNode() if prop is None else widget.property(prop)

    def widget_changed(self, name: str) -> None:
        if self._updating:
            return
        try:
            setattr(self._get_parameters(), name, self.read(self._widgets[name]))
        except InputError as error:
            if self._on_error is None:
                raise
            self._on_error(str(error))
            self.update_widgets()

    def update_widgets(self) -> None:
        """Show the parameter node's values in the widgets without echoing them back.

        A widget that already shows its value is left alone, so a line edit being typed in keeps
        its cursor when the node changes for another reason.
        """
        params = self._get_parameters()
        self._updating = True
        try:
            for name, widget in self._widgets.items():
                value = getattr(params, name)
                if self.read(widget) == value:
                    continue
                prop = BINDABLE[qt_class_name(widget)][0]
                if prop is None:
                    widget.setCurrentNode(value)
                else:
                    widget.setProperty(prop, value)
        finally:
            self._updating = False


class PanelController:
    """Status line, dependency check and cancellable work for one module panel.

    Work runs on the GUI thread because it creates MRML nodes, which must not
    happen on another thread; ``process_events`` is called on each progress
    update so the Cancel button stays clickable.
    """

    ERROR_STYLE = "color: #c62828;"

    def __init__(self, status_label, progress_bar=None, cancel_button=None,
                 process_events: Callable[[], None] = lambda: None,
                 ensure_dependencies: Optional[Callable[..., Any]] = None):
        self.status_label = status_label
        self.progress_bar = progress_bar
        self.cancel_button = cancel_button
        self.process_events = process_events
        if ensure_dependencies is None:
            from .deps import ensure_dependencies
        self._ensure_dependencies = ensure_dependencies
        self._dependencies_ready = False
        self._progress: Optional[Progress] = None
        self._set_busy(False)

    def show_status(self, text: str, error: bool = False) -> None:
        self.status_label.text = text
        self.status_label.styleSheet = self.ERROR_STYLE if error else ""
        self.process_events()

    def dependencies_ready(self) -> bool:
        """Install missing dependencies once per session; False (with the reason shown) on failure."""
        if self._dependencies_ready:
            return True
        try:
            self._ensure_dependencies(log=self.show_status)
        except CovidWeakError as error:
            self.show_status(str(error), error=True)
            return False
        self._dependencies_ready = True
        return True

    def attempt(self, action: Callable[[], str]) -> bool:
        """Run a quick check whose result (or error) becomes the status line."""
        if not self.dependencies_ready():
            return False
        return self._guarded(lambda: self.show_status(action()))

    def run(self, work: Callable[[Progress], T], busy_text: str, done_text: Callable[[T], str]) -> Optional[T]:
        """Run cancellable work with the progress bar shown; returns its result, or None on failure."""
        if not self.dependencies_ready():
            return None
        self._progress = Progress(self._on_progress)
        result = []
        self._set_busy(True)
        self.show_status(busy_text)
        try:
            self._guarded(lambda: result.append(work(self._progress)))
        finally:
            self._progress = None
            self._set_busy(False)
        if result:
            self.show_status(done_text(result[0]))
            return result[0]
        return None

    def cancel(self) -> None:
        if self._progress is not None:
            self._progress.cancel()
            self.show_status("Cancelling...")

    @property
    def busy(self) -> bool:
        return self._progress is not None

    def _guarded(self, action: Callable[[], Any]) -> bool:
        try:
            action()
            return True
        except CancelledError as error:
            self.show_status(str(error).capitalize())
        except CovidWeakError as error:
            self.show_status(str(error), error=True)
        except Exception as error:  # a bug, not a user error: keep the traceback for the report
            logging.exception("covidweak: unexpected error")
            self.show_status(f"unexpected error ({type(error).__name__}: {error}): "
                             f"see the Python console and report it", error=True)
        return False

    def _on_progress(self, done: int, total: int, message: str) -> None:
        if self.progress_bar is not None:
            self.progress_bar.maximum = max(total, 1)
            self.progress_bar.value = done
        if message:
            self.status_label.text = message
        self.process_events()

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.progress_bar, self.cancel_button):
            if widget is not None:
                widget.visible = busy
        if self.progress_bar is not None and busy:
            self.progress_bar.value = 0


def setup_module_panel(widget, module_name: str, logic, bound_widgets: dict[str, str]) -> None:
    """The part of ``setup()`` every COVID module panel shares.

    Loads ``UI/<module_name>.ui`` into ``widget`` (a ScriptedLoadableModuleWidget with
    VTKObservationMixin), gives it the status line, progress bar and Cancel button of a
    :class:`PanelController`, binds ``bound_widgets`` ({parameter: widget name}) to the Logic's
    parameter node both ways, and calls ``widget.onSceneChanged`` after a scene is closed or
    imported. Sets ``widget.ui``, ``widget.logic``, ``widget.panel`` and ``widget.binding``.
    """
    import slicer

    panel = slicer.util.loadUI(widget.resourcePath(f"UI/{module_name}.ui"))
    widget.layout.addWidget(panel)
    widget.ui = slicer.util.childWidgetVariables(panel)
    panel.setMRMLScene(slicer.mrmlScene)
    widget.logic = logic
    widget.panel = PanelController(widget.ui.statusLabel, widget.ui.progressBar, widget.ui.cancelButton,
                                   process_events=slicer.app.processEvents)
    widget.binding = WidgetBinding(lambda: widget.logic.parameters,
                                   {name: getattr(widget.ui, child) for name, child in bound_widgets.items()},
                                   on_error=lambda message: widget.panel.show_status(message, error=True))
    widget.binding.connect()
    widget.ui.cancelButton.connect("clicked(bool)", widget.panel.cancel)
    for event in (slicer.mrmlScene.EndCloseEvent, slicer.mrmlScene.EndImportEvent):
        widget.addObserver(slicer.mrmlScene, event, widget.onSceneChanged)
