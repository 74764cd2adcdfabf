"""The nodes COVIDWeakSeg adds to a scene: who owns them, and the lesion and summary tables.

Ownership rule: a node the module created carries the attribute
``COVIDWeakSeg.CreatedBy`` and is referenced from the parameter node. A re-run
replaces such a node only when the user asked for it (``replace_outputs``);
every other node, whatever its name, is never removed or modified, and new
nodes always get a fresh unique name.
"""

from __future__ import annotations

import numbers
from typing import Sequence

CREATED_BY = "COVIDWeakSeg.CreatedBy"
MODULE_NAME = "COVIDWeakSeg"
BOX_ROLE = "output_lesion_box"


def is_ours(node) -> bool:
    return node is not None and node.GetAttribute(CREATED_BY) == MODULE_NAME


def release_output(scene, params, role: str, default_name: str) -> str:
    """The name for the next output of ``role``; removes the previous one only if ours and replacing is on."""
    old = getattr(params, role)
    if params.replace_outputs and is_ours(old):
        name = old.GetName()
        scene.RemoveNode(old)
        return name
    return default_name


def record_output(params, role: str, node):
    node.SetAttribute(CREATED_BY, MODULE_NAME)
    setattr(params, role, node)
    return node


def new_table(scene, name: str, columns: Sequence[str], rows: Sequence[Sequence]):
    """A new table node; a column whose values are all numbers is numeric (sortable), else text."""
    import vtk

    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    table = node.GetTable()
    for index, column in enumerate(columns):
        values = [row[index] for row in rows]
        numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        array = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
        array.SetName(column)
        for value in values:
            array.InsertNextValue(float(value) if numeric else _text(value))
        table.AddColumn(array)
    node.Modified()
    return node


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def table_column_values(node, column: str) -> list:
    table = node.GetTable()
    array = table.GetColumnByName(column)
    if array is None:
        return []
    return [array.GetValue(i) for i in range(table.GetNumberOfRows())]


def add_roi(scene, name: str, center_ras: Sequence[float], size_mm: Sequence[float], color=(1.0, 0.85, 0.1)):
    """A box markup (vtkMRMLMarkupsROINode) centred at ``center_ras`` with edge lengths ``size_mm``."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", scene.GenerateUniqueName(name))
    node.SetCenter(*[float(v) for v in center_ras])
    node.SetSize(*[float(v) for v in size_mm])
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if display is not None:
        display.SetSelectedColor(*color)
        display.SetColor(*color)
    node.SetAttribute(CREATED_BY, MODULE_NAME)
    return node


def box_nodes(params) -> list:
    node = params.node
    return [node.GetNthNodeReference(BOX_ROLE, i) for i in range(node.GetNumberOfNodeReferences(BOX_ROLE))]


def release_boxes(scene, params) -> None:
    """Forget the previous boxes; remove them only when ours and replacing is on."""
    old = box_nodes(params)
    params.node.RemoveNodeReferenceIDs(BOX_ROLE)
    if params.replace_outputs:
        for node in old:
            if is_ours(node):
                scene.RemoveNode(node)


def record_boxes(params, nodes: Sequence) -> None:
    for node in nodes:
        params.node.AddNodeReferenceID(BOX_ROLE, node.GetID())

