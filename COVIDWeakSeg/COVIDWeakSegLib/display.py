"""How the lesion probability map looks in the slice views, and the lesion segments it turns into.

T_fg moves as a display threshold of the probability volume's display node
(voxels below it are transparent): no voxel is recomputed, so the overlay
follows the slider within one render. The colour table is the module's own,
so it exists in a bare scene (no Colors module) and a user edit of a shared
Slicer table never changes how probabilities read.
"""

from __future__ import annotations

import numpy as np

COLOR_TABLE_NAME = "COVIDWeakSeg lesion probability"
COLOR_TABLE_SINGLETON = "COVIDWeakSegProbability"
RAMP = ((0.0, (0.20, 0.25, 0.95)), (0.35, (0.10, 0.85, 0.85)), (0.6, (0.95, 0.90, 0.15)), (1.0, (0.90, 0.10, 0.05)))
"""Blue (barely above threshold) through cyan and yellow to red (certain lesion)."""

LESION_SEGMENT = "Lesion"
UNCERTAIN_SEGMENT = "Uncertain"
LESION_COLOR = (0.90, 0.20, 0.15)
UNCERTAIN_COLOR = (0.95, 0.80, 0.25)

_CONTEXT = "Segmentation category and type - DICOM master list"
_ANATOMY = "Anatomic codes - DICOM master list"
LESION_TERMINOLOGY = (f"{_CONTEXT}~SCT^49755003^Morphologically Altered Structure~SCT^52988006^Lesion~^^"
                      f"~{_ANATOMY}~SCT^39607008^Lung~^^")
"""Slicer's TerminologyEntry string: context~category~type~type modifier~anatomic context~region~region modifier.
SNOMED CT: 49755003 Morphologically altered structure, 52988006 Lesion, 39607008 Lung.
Weak labels do not tell ground-glass opacity from consolidation, hence the generic "Lesion"."""

UNCERTAIN_TERMINOLOGY = (f"{_CONTEXT}~SCT^85756007^Tissue~SCT^85756007^Tissue~^^"
                         f"~{_ANATOMY}~SCT^39607008^Lung~^^")
"""Lung tissue the network neither calls lesion (>= T_fg) nor background (< T_bg); not a finding."""


def probability_color_table(scene):
    """The module's colour table for probabilities 0..1, created once per scene."""
    from covidweak.slicer.outputs import ramp_color_table

    node = ramp_color_table(scene, COLOR_TABLE_SINGLETON, COLOR_TABLE_NAME, RAMP)
    node.SetAttribute("Category", "COVIDWeakSeg")
    return node


def style_probability_volume(volume, t_fg: float) -> None:
    """Colour ``volume`` 0..1 with the module's table and hide voxels below ``t_fg``."""
    display = volume.GetDisplayNode()
    if display is None:
        volume.CreateDefaultDisplayNodes()
        display = volume.GetDisplayNode()
    display.SetAndObserveColorNodeID(probability_color_table(volume.GetScene()).GetID())
    display.SetAutoWindowLevel(0)
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.SetAutoThreshold(0)
    display.SetApplyThreshold(1)
    display.SetThreshold(float(t_fg), 1.0)


def set_display_threshold(volume, t_fg: float) -> None:
    """Move the overlay's lower threshold: a display change only, O(1) in the volume size."""
    display = volume.GetDisplayNode()
    if display is not None:
        display.SetLowerThreshold(float(t_fg))


def show_overlay(scene, background, foreground, opacity: float) -> int:
    """Show ``foreground`` over ``background`` at ``opacity`` in every slice view; returns how many views."""
    composites = [scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
                  for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))]
    for composite in composites:
        if background is not None:
            composite.SetBackgroundVolumeID(background.GetID())
        composite.SetForegroundVolumeID(foreground.GetID())
        composite.SetForegroundOpacity(float(opacity))
    return len(composites)


def set_overlay_opacity(scene, foreground, opacity: float) -> None:
    """Opacity of ``foreground`` in the slice views that show it (others keep theirs)."""
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        if composite.GetForegroundVolumeID() == foreground.GetID():
            composite.SetForegroundOpacity(float(opacity))


def threshold_labels(probability: np.ndarray, t_fg: float, t_bg: float, uncertain: bool) -> np.ndarray:
    """uint8 labels: 1 where p > T_fg (lesion), 2 where T_bg <= p <= T_fg (uncertain, when asked), else 0.

    The lesion inequality is the CLI's (``lesion_seg.nii.gz``); the display
    threshold also shows p == T_fg, a difference no float map ever hits.
    """
    labels = (probability > t_fg).astype(np.uint8)
    if uncertain:
        labels[(probability >= t_bg) & (probability <= t_fg)] = 2
    return labels


def tag_terminology(segmentation_node) -> None:
    """Give the module's segments their coded meaning (see LESION_TERMINOLOGY)."""
    segmentation = segmentation_node.GetSegmentation()
    for name, entry in ((LESION_SEGMENT, LESION_TERMINOLOGY), (UNCERTAIN_SEGMENT, UNCERTAIN_TERMINOLOGY)):
        segment_id = segmentation.GetSegmentIdBySegmentName(name)
        if segment_id:
            segmentation.GetSegment(segment_id).SetTag("TerminologyEntry", entry)
