"""Typed module parameters stored on a ``vtkMRMLScriptedModuleNode``.

Slicer saves a scripted module's GUI state by saving its parameter node with
the scene, but that node only holds strings and node references. A module
declares its parameters once as a dataclass (defaults, bounds, node classes);
:class:`TypedParameters` converts on every read and write, so a saved and
reloaded scene restores the same thresholds and selections, and a value that
does not parse raises :class:`InputError` instead of silently becoming a
default.

The three COVID modules share :class:`ParameterizedLogic` (scene injection plus
the parameter node) and :class:`WidgetBinding` (keeping selectors and the
parameter node in step). Nothing here imports qt: widgets are used only through
their methods, so the Logics stay importable outside the Slicer application.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable, Optional

from .errors import InputError

NODE_CLASS_KEY = "covidweak.node_class"
BOUNDS_KEY = "covidweak.bounds"


def parameter(default, *, minimum=None, maximum=None):
    """A dataclass field for a float/int/str/bool parameter, optionally bounded."""
    return dataclasses.field(default=default, metadata={BOUNDS_KEY: (minimum, maximum)})


def node_reference(node_class: str = "vtkMRMLNode"):
    """A dataclass field holding a reference to a node of ``node_class`` (None when unset)."""
    return dataclasses.field(default=None, metadata={NODE_CLASS_KEY: node_class})


def get_parameter_node(scene, module_name: str):
    """Return the scene's singleton parameter node of ``module_name``, creating it when absent.

    The singleton tag makes the scene keep a single node per module across
    save and reload, which is how the Slicer application finds it again.
    """
    import slicer

    node = scene.GetSingletonNode(module_name, "vtkMRMLScriptedModuleNode")
    if node is not None:
        return node
    node = slicer.vtkMRMLScriptedModuleNode()
    node.SetSingletonTag(module_name)
    node.SetName(scene.GenerateUniqueName(module_name))
    node.SetAttribute("ModuleName", module_name)
    return scene.AddNode(node)


class TypedParameters:
    """Attribute access to a parameter node through a dataclass schema.

    ``params.t_fg`` reads a float, ``params.input_volume = node`` stores a node
    reference. Unset parameters read as the schema's default.
    """

    def __init__(self, node, schema: type):
        if not dataclasses.is_dataclass(schema):
            raise TypeError(f"{schema!r} is not a dataclass")
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "schema", schema)
        hints = typing.get_type_hints(schema)
        object.__setattr__(self, "_fields", {f.name: (f, hints[f.name]) for f in dataclasses.fields(schema)})

    @property
    def names(self) -> list[str]:
        return list(self._fields)

    def is_node_reference(self, name: str) -> bool:
        return NODE_CLASS_KEY in self._field(name)[0].metadata

    def _field(self, name: str):
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"{self.schema.__name__} has no parameter '{name}'") from None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        field, kind = self._field(name)
        if NODE_CLASS_KEY in field.metadata:
            return self.node.GetNodeReference(name)
        if not self.node.HasParameter(name):
            return field.default
        return _parse(self.node.GetParameter(name), kind, name, self.schema.__name__)

    def __setattr__(self, name: str, value) -> None:
        field, kind = self._field(name)
        if NODE_CLASS_KEY in field.metadata:
            self._set_reference(name, value, field.metadata[NODE_CLASS_KEY])
            return
        value = _coerce(value, kind, name)
        minimum, maximum = field.metadata.get(BOUNDS_KEY, (None, None))
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise InputError(f"{name}={value} is outside [{minimum}, {maximum}]: choose a value in that range")
        self.node.SetParameter(name, _format(value))

    def _set_reference(self, name: str, value, node_class: str) -> None:
        if value is None:
            self.node.SetNodeReferenceID(name, None)
            return
        if not value.IsA(node_class):
            raise InputError(f"{name} must be a {node_class}, got a {value.GetClassName()}: select another node")
        self.node.SetNodeReferenceID(name, value.GetID())

    def values(self):
        """All parameters as an instance of the schema dataclass."""
        return self.schema(**{name: getattr(self, name) for name in self._fields})

    def write_defaults(self) -> None:
        """Store the default of every parameter the node does not hold yet (keeps the user's values)."""
        for name, (field, _) in self._fields.items():
            if NODE_CLASS_KEY not in field.metadata and not self.node.HasParameter(name):
                setattr(self, name, field.default)


def _coerce(value, kind, name: str):
    try:
        if kind is bool:
            if isinstance(value, str):
                return _parse_bool(value)
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}={value!r} is not a valid {kind.__name__}: enter a {kind.__name__}") from None


def _parse(text: str, kind, name: str, owner: str):
    try:
        if kind is bool:
            return _parse_bool(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        return text
    except ValueError:
        raise InputError(
            f"saved parameter {owner}.{name}='{text}' is not a valid {kind.__name__}: "
            f"set it again in the module panel"
        ) from None


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(text)


def _format(value) -> str:
    # repr keeps every digit of a float, so a threshold survives save/reload exactly.
    return repr(value) if isinstance(value, float) else str(value)


class ParameterizedLogic:
    """Base of the module Logics: an injectable scene and the module's typed parameters.

    Subclasses set ``MODULE_NAME`` and ``PARAMETERS`` (a dataclass).
    """

    MODULE_NAME: str = ""
    PARAMETERS: type = type(None)

    def __init__(self, scene=None):
        if scene is None:
            import slicer

            scene = slicer.mrmlScene
        self.scene = scene

    @property
    def parameters(self) -> TypedParameters:
        # Looked up on each access: a scene Clear or Import can replace the node.
        params = TypedParameters(get_parameter_node(self.scene, self.MODULE_NAME), self.PARAMETERS)
        params.write_defaults()
        return params


def require_node(node, what: str):
    """Return ``node``, or raise :class:`InputError` asking the user to select ``what``."""
    if node is None:
        raise InputError(f"no {what} selected: choose one in the Inputs section")
    return node


class WidgetBinding:
    """Keep GUI widgets and a module's parameters in step, in both directions.

    Widgets are driven through duck typing so this stays free of qt imports:
    node selectors (``currentNode``/``setCurrentNode``), sliders and spin boxes
    (``value``/``setValue``) and path edits (``currentPath``/``setCurrentPath``).
    ``on_error`` receives the message of a rejected value (e.g. out of bounds).
    """

    _SIGNALS = {
        "node": "currentNodeChanged(vtkMRMLNode*)",
        "value": "valueChanged(double)",
        "path": "currentPathChanged(QString)",
    }

    def __init__(self, get_parameters: Callable[[], TypedParameters], widgets: dict[str, Any],
                 on_error: Optional[Callable[[str], None]] = None):
        self._get_parameters = get_parameters
        self._widgets = dict(widgets)
        self._on_error = on_error
        self._updating = False

    @staticmethod
    def kind_of(widget) -> str:
        if hasattr(widget, "setCurrentNode"):
            return "node"
        if hasattr(widget, "setCurrentPath"):
            return "path"
        if hasattr(widget, "setValue"):
            return "value"
        raise TypeError(f"cannot bind a {type(widget).__name__}")

    def connect(self) -> None:
        """Connect each widget's change signal to the matching parameter."""
        for name, widget in self._widgets.items():
            widget.connect(self._SIGNALS[self.kind_of(widget)], lambda *args, name=name: self.widget_changed(name))

    def widget_changed(self, name: str) -> None:
        if self._updating:
            return
        widget = self._widgets[name]
        kind = self.kind_of(widget)
        value = {"node": lambda: widget.currentNode(), "path": lambda: widget.currentPath,
                 "value": lambda: widget.value}[kind]()
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
                elif kind == "path":
                    widget.currentPath = value
                else:
                    widget.value = value
        finally:
            self._updating = False
