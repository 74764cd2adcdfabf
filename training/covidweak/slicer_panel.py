"""GUI glue shared by the three Slicer module panels, written without importing qt.

Widgets are driven only through the methods and properties PythonQt exposes
(``setCurrentNode``, ``value``, ``text``, ``show``...), so this module imports
outside Slicer and the three Widgets stay thin instead of repeating the same
status-line, dependency and progress handling.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional, TypeVar

from .errors import CancelledError, CovidWeakError, InputError
from .progress import Progress

T = TypeVar("T")

class WidgetBinding:
    """Keep GUI widgets and a module's parameters in step, in both directions.

    Widgets are driven through duck typing so this stays free of qt imports:
    node selectors (``currentNode``/``setCurrentNode``), path edits
    (``currentPath``), combo boxes (``currentText``), check boxes (``checked``),
    sliders and spin boxes (``value``) and line edits (``text``).
    ``on_error`` receives the message of a rejected value (e.g. out of bounds).
    """

    _SIGNALS = {
        "node": "currentNodeChanged(vtkMRMLNode*)",
        "value": "valueChanged(double)",
        "path": "currentPathChanged(QString)",
        "choice": "currentTextChanged(QString)",
        "check": "toggled(bool)",
        "text": "textChanged(QString)",
    }
    # Property each kind reads and writes (node selectors use methods instead).
    _PROPERTIES = {"path": "currentPath", "choice": "currentText", "check": "checked", "value": "value", "text": "text"}

    def __init__(self, get_parameters: Callable[[], TypedParameters], widgets: dict[str, Any],
                 on_error: Optional[Callable[[str], None]] = None):
        self._get_parameters = get_parameters
        self._widgets = dict(widgets)
        self._on_error = on_error
        self._updating = False

    @staticmethod
    def kind_of(widget) -> str:
        # Order matters: a check box also has setText, a combo box has no setValue.
        for kind, method in (("node", "setCurrentNode"), ("path", "setCurrentPath"), ("choice", "addItem"),
                             ("check", "setChecked"), ("value", "setValue"), ("text", "setText")):
            if hasattr(widget, method):
                return kind
        raise TypeError(f"cannot bind a {type(widget).__name__}")

    def signal_of(self, widget) -> str:
        kind = self.kind_of(widget)
        if kind == "value" and not hasattr(widget, "decimals"):
            return "valueChanged(int)"  # QSpinBox: integers only
        return self._SIGNALS[kind]

    def connect(self) -> None:
        """Connect each widget's change signal to the matching parameter."""
        for name, widget in self._widgets.items():
            widget.connect(self.signal_of(widget), lambda *args, name=name: self.widget_changed(name))

    def widget_changed(self, name: str) -> None:
        if self._updating:
            return
        widget = self._widgets[name]
        kind = self.kind_of(widget)
        value = widget.currentNode() if kind == "node" else getattr(widget, self._PROPERTIES[kind])
        try:
            setattr(self._get_parameters(), name, value)
        except InputError as error:
            if self._on_error is None:
                raise
            self._on_error(str(error))
            self.update_widgets()

    def update_widgets(self) -> None:
        """Show the parameter node's values in the widgets without echoing them back."""
        params = self._get_parameters()
        self._updating = True
        try:
            for name, widget in self._widgets.items():
                value = getattr(params, name)
                kind = self.kind_of(widget)
                if kind == "node":
                    widget.setCurrentNode(value)
                else:
                    setattr(widget, self._PROPERTIES[kind], value)
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
            from .slicer_deps import ensure_dependencies
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
