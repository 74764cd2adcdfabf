"""What the COVIDWeakSeg panel remembers in the scene."""

from __future__ import annotations

from dataclasses import dataclass

from covidweak.mrml_params import node_reference, parameter


@dataclass
class COVIDWeakSegParameters:
    input_volume: object = node_reference("vtkMRMLScalarVolumeNode")
    # M-SEAM-NAM's thresholds on the lesion probability map: pixels above T_fg
    # are lesion seeds, pixels below T_bg are sure background.
    t_fg: float = parameter(0.1, minimum=0.0, maximum=1.0)
    t_bg: float = parameter(0.01, minimum=0.0, maximum=1.0)
    output_segmentation: object = node_reference("vtkMRMLSegmentationNode")
