"""Typed module parameters stored on a ``vtkMRMLScriptedModuleNode``.

Slicer saves a scripted module's GUI state by saving its parameter node with
the scene, but that node only holds strings and node references. A module
declares its parameters once as a dataclass (defaults, bounds, node classes);
:class:`TypedParameters` converts on every read and write, so a saved and
reloaded scene restores the same thresholds and selections, and a value that
does not parse raises :class:`InputError` instead of silently becoming a
default.

The three COVID module Logics share :class:`ParameterizedLogic`: an injectable
scene, the module's parameters, and the volume-to-image step with its checks.
Nothing here imports qt, so the Logics stay importable outside the Slicer
application.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Callable

from ..errors import InputError

NODE_CLASS_KEY = "covidweak.node_class"
BOUNDS_KEY = "covidweak.bounds"


def parameter(default, *, minimum=None, maximum=None):
    """A dataclass field for a float/int/str/bool parameter, optionally bounded."""
    return dataclasses.field(default=default, metadata={BOUNDS_KEY: (minimum, maximum)})


def node_reference(node_class: str = "vtkMRMLNode"):
    """A dataclass field holding a reference to a node of ``node_class`` (None when unset)."""
    return dataclasses.field(default=None, metadata={NODE_CLASS_KEY: node_class})


def singleton_node(scene, tag: str, class_name: str, name: str, fill: Callable = lambda node: None):
    """The scene's node of ``class_name`` with singleton ``tag``; when there is none, a new one, uniquely
    named from ``name`` and passed to ``fill`` before it is added.

    The singleton tag makes the scene keep a single such node across save and reload, which is
    how the Slicer application finds it again.
    """
    import slicer

    node = scene.GetSingletonNode(tag, class_name)
    if node is not None:
        return node
    node = getattr(slicer, class_name)()
    node.SetSingletonTag(tag)
    node.SetName(scene.GenerateUniqueName(name))
    fill(node)
    return scene.AddNode(node)


def get_parameter_node(scene, module_name: str):
    """Return the scene's singleton parameter node of ``module_name``, creating it when absent."""
    return singleton_node(scene, module_name, "vtkMRMLScriptedModuleNode", module_name,
                          lambda node: node.SetAttribute("ModuleName", module_name))


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

    def image_of(self, volume, what: str):
        """The SimpleITK image (LPS) behind a selected volume node; InputError when none is selected."""
        from .mrml import image_from_volume_node

        return image_from_volume_node(require_node(volume, what))


def require_node(node, what: str):
    """Return ``node``, or raise :class:`InputError` asking the user to select ``what``."""
    if node is None:
        raise InputError(f"no {what} selected: choose one in the Inputs section")
    return node


def describe_image(image) -> str:
    """``"512x512x64 voxels, 0.70x0.70x5.00 mm"``: the geometry part of a status line."""
    size = "x".join(str(n) for n in image.GetSize())
    spacing = "x".join(f"{s:.2f}" for s in image.GetSpacing())
    return f"{size} voxels, {spacing} mm"
