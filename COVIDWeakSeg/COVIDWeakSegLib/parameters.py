"""What the COVIDWeakSeg panel remembers in the scene.

Slicer's ``parameterNodeWrapper`` would normally declare these, but it lives in
the Slicer application (it needs qt and ctk) and the Logic must also run on
the pip ``slicer-core`` scene in scripts and tests. ``covidweak.slicer.parameters``
plays its part: the same dataclass-style declaration, typed reads and writes,
bounds checked, and everything stored on the module's singleton
``vtkMRMLScriptedModuleNode``, so a saved scene restores the panel.
"""

from __future__ import annotations

from dataclasses import dataclass

from covidweak.slicer.parameters import node_reference, parameter


@dataclass
class COVIDWeakSegParameters:
    input_volume: object = node_reference("vtkMRMLScalarVolumeNode")
    method: str = parameter("mseamnam")
    # A registry name ("mseamnam-light") or a weight file; empty means "<method>-light".
    weights: str = parameter("")
    device: str = parameter("auto")
    # M-SEAM-NAM's thresholds on the lesion probability map: pixels above T_fg
    # are lesion seeds, pixels below T_bg are sure background.
    t_fg: float = parameter(0.1, minimum=0.0, maximum=1.0)
    t_bg: float = parameter(0.01, minimum=0.0, maximum=1.0)
    opacity: float = parameter(0.5, minimum=0.0, maximum=1.0)
    uncertain_segment: bool = parameter(False)
    lesion_boxes: bool = parameter(False)
    # Off by default: every run then adds new nodes and earlier results stay for comparison.
    replace_outputs: bool = parameter(False)
    output_segmentation: object = node_reference("vtkMRMLSegmentationNode")
    output_probability: object = node_reference("vtkMRMLScalarVolumeNode")
    output_lesion_segmentation: object = node_reference("vtkMRMLSegmentationNode")
    output_lesion_table: object = node_reference("vtkMRMLTableNode")
    output_summary_table: object = node_reference("vtkMRMLTableNode")
