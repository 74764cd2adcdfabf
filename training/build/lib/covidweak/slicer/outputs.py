"""The nodes the module Logics create from covidweak's output files, and how they are shown.

COVIDSeverity and COVIDSimilarCase turn the output files of covidweak commands into
tables, plots, lines and segments. The helpers here are the ones both need: which
module created a node (only such nodes may be replaced by a re-run), tables and their
CSV export, colour ramps, plot charts, line markups, slice positions and the slice
views' overlay. Like :mod:`covidweak.slicer.mrml`, they only ever add nodes; ``slicer`` is
imported inside the functions.
"""

from __future__ import annotations

import numpy as np

from .mrml import ras_of_ijk

CREATED_BY = "covidweak.CreatedBy"
"""Attribute naming the module that created a node: only such nodes may be replaced by a re-run."""


def mark_created(node, module_name: str):
    """Tag ``node`` as an output of ``module_name`` and return it."""
    node.SetAttribute(CREATED_BY, module_name)
    return node


def is_created_by(node, module_name: str) -> bool:
    return node is not None and node.GetAttribute(CREATED_BY) == module_name


def release_output(scene, node, module_name: str, replace: bool) -> None:
    """Remove the previous output ``node`` only when replacing is on and the module created it.

    A node the user made, or chose as an output of another module, is never removed.
    A chart goes with its series nodes: :func:`plot_chart_node` made them for it.
    """
    if not (replace and is_created_by(node, module_name)):
        return
    series = plot_series_nodes(node) if node.IsA("vtkMRMLPlotChartNode") else []
    scene.RemoveNode(node)
    for part in series:
        scene.RemoveNode(part)


def table_node_from_rows(scene, name: str, columns, rows):
    """A new vtkMRMLTableNode; a column whose values are all numbers is numeric (sortable), else text.

    ``rows``: sequence of sequences, one value per column; None becomes an empty text cell.
    """
    import numbers

    import vtk

    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    table = node.GetTable()
    for index, column in enumerate(columns):
        values = [row[index] for row in rows]
        numeric = bool(values) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        array = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
        array.SetName(str(column))
        for value in values:
            array.InsertNextValue(float(value) if numeric else ("" if value is None else str(value)))
        table.AddColumn(array)
    node.Modified()
    return node


def table_node_rows(node) -> tuple[list[str], list[list]]:
    """Column names and rows (numbers as floats, text as str) of a table node."""
    table = node.GetTable()
    columns = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    arrays = [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]
    rows = [[array.GetValue(r) for array in arrays] for r in range(table.GetNumberOfRows())]
    return columns, rows


def write_table_csv(node, path) -> None:
    """Write a table node as CSV, atomically; an existing file is replaced."""
    import csv
    import io

    from ..io.atomic import write_text

    columns, rows = table_node_rows(node)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def ramp_color(value: float, ramp) -> tuple[float, float, float]:
    """RGB of ``value`` (0..1) on a piecewise-linear ``ramp`` ((stop, (r, g, b)), ...)."""
    stops = np.array([stop for stop, _ in ramp], dtype=float)
    colours = np.array([rgb for _, rgb in ramp], dtype=float)
    value = float(np.clip(value, stops[0], stops[-1]))
    return tuple(float(np.interp(value, stops, colours[:, channel])) for channel in range(3))


def ramp_color_table(scene, singleton_tag: str, name: str, ramp, levels: int = 256):
    """A module-owned colour table for values 0..1 following ``ramp``, created once per scene.

    Owning the table keeps it available in a bare scene and unaffected by edits
    of Slicer's shared colour tables.
    """
    from .parameters import singleton_node

    def fill(node):
        node.SetTypeToUser()
        node.SetNumberOfColors(levels)
        for index, value in enumerate(np.linspace(0.0, 1.0, levels)):
            node.SetColor(index, f"{value:.3f}", *ramp_color(value, ramp), 1.0)

    return singleton_node(scene, singleton_tag, "vtkMRMLColorTableNode", name, fill)


def plot_chart_node(scene, name: str, series, title: str = "", x_title: str = "", y_title: str = ""):
    """A new vtkMRMLPlotChartNode showing ``series``: dicts with keys

    ``table`` (table node), ``x`` and ``y`` (column names), ``name``, ``color`` (RGB 0..1),
    and optionally ``scatter`` (True: markers only, False: a line with markers).
    Returns the chart; its series nodes are referenced from it.
    """
    import slicer

    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(name))
    for spec in series:
        node = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(spec["name"]))
        node.SetAndObserveTableNodeID(spec["table"].GetID())
        node.SetXColumnName(spec["x"])
        node.SetYColumnName(spec["y"])
        node.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        if spec.get("scatter", False):
            node.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleNone)
        node.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
        node.SetColor(*spec["color"])
        chart.AddAndObservePlotSeriesNodeID(node.GetID())
    chart.SetTitle(title or name)
    chart.SetXAxisTitle(x_title)
    chart.SetYAxisTitle(y_title)
    return chart


def plot_series_nodes(chart) -> list:
    return [chart.GetNthPlotSeriesNode(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]


def line_markup_node(scene, name: str, start_ras, end_ras, color=(1.0, 1.0, 0.0)):
    """A new two-point vtkMRMLMarkupsLineNode from ``start_ras`` to ``end_ras`` (mm, RAS)."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", scene.GenerateUniqueName(name))
    node.AddControlPoint(*[float(v) for v in start_ras])
    node.AddControlPoint(*[float(v) for v in end_ras])
    node.SetLocked(True)  # a drawn zone boundary, not an editable measurement
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if display is not None:
        display.SetSelectedColor(*color)
        display.SetColor(*color)
    return node


def slice_centre_ras(volume_node, k: float) -> tuple[float, float, float]:
    """RAS of the centre of voxel slice ``k`` (third array axis) of a volume node."""
    x, y, _ = volume_node.GetImageData().GetDimensions()
    return ras_of_ijk(volume_node, ((x - 1) / 2.0, (y - 1) / 2.0, k))


def jump_all_slices(scene, ras) -> None:
    """Centre every slice view of ``scene`` on ``ras``."""
    import slicer

    slicer.vtkMRMLSliceNode.JumpAllSlices(scene, *[float(v) for v in ras], slicer.vtkMRMLSliceNode.CenteredJumpSlice)


def style_probability_overlay(volume_node, color_table, lower: float) -> None:
    """Show a 0..1 probability volume through ``color_table``, voxels below ``lower`` transparent."""
    display = volume_node.GetDisplayNode()
    if display is None:
        volume_node.CreateDefaultDisplayNodes()
        display = volume_node.GetDisplayNode()
    display.SetAndObserveColorNodeID(color_table.GetID())
    display.SetAutoWindowLevel(0)
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.SetAutoThreshold(0)
    display.SetApplyThreshold(1)
    display.SetThreshold(float(lower), 1.0)


def show_in_slice_views(scene, background, foreground=None, opacity: float = 0.5, layout_names=None) -> int:
    """Put ``background`` (and ``foreground`` at ``opacity``) into slice views; returns how many.

    ``layout_names``: e.g. ("Red",) for one view; None means every slice view.
    """
    shown = 0
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        if layout_names is not None and composite.GetLayoutName() not in layout_names:
            continue
        composite.SetBackgroundVolumeID(background.GetID())
        if foreground is not None:
            composite.SetForegroundVolumeID(foreground.GetID())
            composite.SetForegroundOpacity(float(opacity))
        shown += 1
    return shown


def set_foreground_opacity(scene, foreground, opacity: float) -> int:
    """Opacity of ``foreground`` in the slice views that show it (others keep theirs); returns how many."""
    changed = 0
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        if composite.GetForegroundVolumeID() == foreground.GetID():
            composite.SetForegroundOpacity(float(opacity))
            changed += 1
    return changed
