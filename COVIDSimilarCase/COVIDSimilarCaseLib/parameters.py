"""What the COVIDSimilarCase panel remembers in the scene."""

from __future__ import annotations

from dataclasses import dataclass

from covidweak.mrml_params import node_reference, parameter


@dataclass
class COVIDSimilarCaseParameters:
    query_volume: object = node_reference("vtkMRMLScalarVolumeNode")
    index_dir: str = parameter("")
    # How many similar cases to list (DuCN recommends a short ranked list).
    k: int = parameter(5, minimum=1, maximum=50)
