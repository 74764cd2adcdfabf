"""Logic and parameters of the COVIDSimilarCase module, importable without the Slicer GUI."""

from .logic import COVIDSimilarCaseLogic
from .parameters import COVIDSimilarCaseParameters

__all__ = ["COVIDSimilarCaseLogic", "COVIDSimilarCaseParameters"]
