"""What the COVIDSeverity panel remembers in the scene (see covidweak.slicer.parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from covidweak.slicer.parameters import node_reference, parameter


@dataclass
class COVIDSeverityParameters:
    # A chest CT, or a chest X-ray loaded as a single-slice volume.
    input_volume: object = node_reference("vtkMRMLScalarVolumeNode")
    device: str = parameter("auto")
    # Registry names or weight files; empty means the command's default (the shipped "-light" weights).
    severity_weights: str = parameter("")
    lungs_weights: str = parameter("")
    diagnosis_weights: str = parameter("")
    seg_method: str = parameter("mseamnam")
    # CT only: also run ``covidweak diagnose`` (COVID-19 / CAP / normal, per-slice probabilities).
    diagnose: bool = parameter(True)
    opacity: float = parameter(0.5, minimum=0.0, maximum=1.0)
    # Off by default: every run adds new nodes, earlier results stay for comparison.
    replace_outputs: bool = parameter(False)
    output_probability: object = node_reference("vtkMRMLScalarVolumeNode")
    output_zone_table: object = node_reference("vtkMRMLTableNode")
    output_zone_segmentation: object = node_reference("vtkMRMLSegmentationNode")
    output_diagnosis_table: object = node_reference("vtkMRMLTableNode")
    output_slice_table: object = node_reference("vtkMRMLTableNode")
    output_slice_chart: object = node_reference("vtkMRMLPlotChartNode")
