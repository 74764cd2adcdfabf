"""Classical (weight-free) right/left lung segmentation for chest CT.

Public API: :func:`segment_lungs` (labels 0 background, 1 right lung, 2 left lung).
"""

from .segment import AIR_HU, segment_lungs
from .select import LEFT, NO_LUNG_MESSAGE, RIGHT

__all__ = ["AIR_HU", "LEFT", "NO_LUNG_MESSAGE", "RIGHT", "segment_lungs"]
