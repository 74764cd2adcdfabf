"""Logic and parameters of the COVIDSeverity module, importable without the Slicer GUI."""

from .logic import COVIDSeverityLogic, SeverityNodes
from .parameters import COVIDSeverityParameters

__all__ = ["COVIDSeverityLogic", "COVIDSeverityParameters", "SeverityNodes"]
