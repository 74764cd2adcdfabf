"""Logic and parameters of the COVIDWeakSeg module, importable without the Slicer GUI."""

from .logic import COVIDWeakSegLogic, WeakSegNodes
from .parameters import COVIDWeakSegParameters

__all__ = ["COVIDWeakSegLogic", "COVIDWeakSegParameters", "WeakSegNodes"]
