"""What the COVIDSeverity panel remembers in the scene."""

from __future__ import annotations

from dataclasses import dataclass

from covidweak.mrml_params import node_reference


@dataclass
class COVIDSeverityParameters:
    # A chest CT, or a chest X-ray loaded as a single-slice volume.
    input_volume: object = node_reference("vtkMRMLScalarVolumeNode")
