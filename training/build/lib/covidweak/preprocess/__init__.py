"""Paper-specified preprocessing of CT slices and masks.

Every function takes numpy arrays in (z, y, x) order and returns numpy arrays;
torch is imported only inside :func:`resize_slices` for the interpolating orders.
"""

from .distance import intrapulmonary_distance
from .intensity import (
    HU_WINDOW,
    SLIDING_WINDOW_Q,
    SLIDING_WINDOW_S,
    find_sliding_window,
    hu_window,
    sliding_window_normalize,
    sliding_window_normalize_slices,
    window_to_unit,
)
from .labels import remap_labels
from .resize import DUCN_SIZE, HU_SIZE, KIM_SIZE, MSEAM_SIZE, WU_SIZE, resize_slices
from .slices import WU_MIN_MEAN_INTENSITY, drop_end_slices, end_slice_range
from .stacks import STACK_DEPTH, ducn_channels, slice_stacks

__all__ = [
    "DUCN_SIZE",
    "HU_SIZE",
    "HU_WINDOW",
    "KIM_SIZE",
    "MSEAM_SIZE",
    "SLIDING_WINDOW_Q",
    "SLIDING_WINDOW_S",
    "STACK_DEPTH",
    "WU_MIN_MEAN_INTENSITY",
    "WU_SIZE",
    "drop_end_slices",
    "ducn_channels",
    "end_slice_range",
    "find_sliding_window",
    "hu_window",
    "intrapulmonary_distance",
    "remap_labels",
    "resize_slices",
    "sliding_window_normalize",
    "sliding_window_normalize_slices",
    "slice_stacks",
    "window_to_unit",
]
