"""Logic and parameters of the COVIDSimilarCase module, importable without the Slicer GUI."""

from .logic import ClusterNodes, COVIDSimilarCaseLogic, OpenedCase
from .parameters import COVIDSimilarCaseParameters

__all__ = ["ClusterNodes", "COVIDSimilarCaseLogic", "COVIDSimilarCaseParameters", "OpenedCase"]
