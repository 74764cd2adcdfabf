"""In-plane resizing of slices to each paper's network input size."""

from __future__ import annotations

from typing import Union

import numpy as np

from ..errors import InputError

MSEAM_SIZE = 448  # M-SEAM-NAM Sec. 3.2: "All CT layers are resized to 448x448"
DUCN_SIZE = 224  # DuCN Sec. 2.1: CT images "resized from 512x512 to 224x224"
HU_SIZE = 224  # Hu et al. Sec. II-G: crops "resized ... to 224x224 (input resolution)"
KIM_SIZE = 256  # Kim et al. (ViT CXR) Sec. 3, implementation details: "resizing to 256x256"
WU_SIZE = 512  # Wu et al. Sec. 4.2.2: cropped lung images "resampled to ... 512x512"

_MODES = {0: "nearest", 1: "bilinear", 3: "bicubic"}


def resize_slices(array: np.ndarray, size: Union[int, tuple[int, int]], order: int = 1) -> np.ndarray:
    """Resize the last two axes of ``array`` to ``size``.

    array: (H, W) or (N, H, W) -- a slice or a stack of slices (or channels).
    size: int for a square output, or (height, width).
    order: 0 nearest neighbour (masks and label maps: values are never mixed,
    dtype is kept), 1 bilinear, 3 bicubic (images; returned as float32).
    Images are antialiased when shrunk, so 512 -> 224 does not alias lung
    texture; bicubic output is clipped to the input range to remove overshoot.
    Returns (size_h, size_w) or (N, size_h, size_w).
    """
    if order not in _MODES:
        raise InputError(f"unsupported interpolation order {order}: use 0 (masks), 1 or 3 (images)")
    out_hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(int(v) for v in size)
    if len(out_hw) != 2 or min(out_hw) < 1:
        raise InputError(f"resize size {size!r} is invalid: give a positive int or (height, width)")
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise InputError(f"resize_slices expects (H, W) or (N, H, W), got shape {array.shape}")
    batch = array[None] if array.ndim == 2 else array
    if batch.shape[-2:] == out_hw:
        resized = batch.copy() if order == 0 else batch.astype(np.float32)
        return resized[0] if array.ndim == 2 else resized

    if order == 0:
        # Index lookup rather than float interpolation keeps exact label values for any dtype;
        # sampling at output pixel centres matches torch's "nearest-exact" and skimage order 0.
        rows = _nearest_indices(batch.shape[1], out_hw[0])
        cols = _nearest_indices(batch.shape[2], out_hw[1])
        resized = batch[:, rows[:, None], cols[None, :]]
    else:
        import torch
        import torch.nn.functional as F

        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))[:, None]
        shrinking = out_hw[0] < batch.shape[1] or out_hw[1] < batch.shape[2]
        out = F.interpolate(tensor, size=out_hw, mode=_MODES[order], align_corners=False, antialias=shrinking)
        resized = out[:, 0].numpy()
        if order == 3:
            resized = np.clip(resized, float(batch.min()), float(batch.max()))
        resized = resized.astype(np.float32, copy=False)
    return resized[0] if array.ndim == 2 else resized


def _nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel centre along one axis: (n_out,) int64."""
    centres = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out)
    return np.minimum(np.floor(centres).astype(np.int64), n_in - 1)
