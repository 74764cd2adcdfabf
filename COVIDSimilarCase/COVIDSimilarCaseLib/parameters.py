"""What the COVIDSimilarCase panel remembers in the scene (see covidweak.slicer.parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from covidweak.slicer.parameters import node_reference, parameter


@dataclass
class COVIDSimilarCaseParameters:
    query_volume: object = node_reference("vtkMRMLScalarVolumeNode")
    index_dir: str = parameter("")
    # How many similar cases to list (DuCN recommends a short ranked list).
    k: int = parameter(5, minimum=1, maximum=50)
    # Query with the slice shown in the Red view only (covidweak similar --slice K) instead of the whole CT.
    slice_only: bool = parameter(False)
    # A folder of CTs or a manifest.csv to build an index from (covidweak index build --data).
    data_dir: str = parameter("")
    # A folder written by ``covidweak clusters --data ... --out MODEL_DIR``.
    cluster_model_dir: str = parameter("")
    device: str = parameter("auto")
    # DuCN weights for building and searching an index (empty: the command's default, ducn-light);
    # an index can only be searched with the weights it was built with.
    ducn_weights: str = parameter("")
    # Off by default: every run adds new nodes, earlier results stay for comparison.
    replace_outputs: bool = parameter(False)
    output_results_table: object = node_reference("vtkMRMLTableNode")
    output_case_volume: object = node_reference("vtkMRMLScalarVolumeNode")
    output_lesion_segmentation: object = node_reference("vtkMRMLSegmentationNode")
    output_lesion_table: object = node_reference("vtkMRMLTableNode")
    output_library_table: object = node_reference("vtkMRMLTableNode")
    output_tsne_chart: object = node_reference("vtkMRMLPlotChartNode")
