"""Intensity normalisation of CT: fixed HU windows and Hu et al.'s adaptive sliding window.

All functions return float32 arrays in [0, 1] with the input's shape.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

HU_WINDOW = (-1200.0, 600.0)
"""Lung window (low, high) in HU for M-SEAM-NAM inputs.

M-SEAM-NAM (Sec. 3.2) gives no window, and its public code min-max scales each
DICOM slice. A fixed window is reproducible across scanners, which per-slice
min-max is not. Width 1800 HU centred at -300 HU keeps air (-1000 HU), ground
glass (about -700 to -300 HU) and consolidation (about 0 to 50 HU) apart with
room to spare, where the narrower radiological lung window (W1500/L-600 ends
at +150 HU) would already clip contrast-enhanced vessels next to consolidation.
"""

SLIDING_WINDOW_Q = 1500.0
"""Hu et al. Sec. II-C: width Q (HU) of the sliding window W_{Q,S}.

The paper names Q but gives no value. 1500 HU is the width of the usual
radiological lung window, so the chosen range is as wide as the one a
radiologist reads lungs in, but placed where the voxels are.
"""

SLIDING_WINDOW_S = 50.0
"""Hu et al. Sec. II-C: step S (HU) of W_{Q,S}; not given in the paper.

50 HU is fine enough that the chosen window moves by less than the HU spread
of one tissue class, and coarse enough to scan a volume in milliseconds.
"""


def window_to_unit(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip ``image`` to ``[low, high]`` and scale linearly to ``[0, 1]``.

    image: any shape, HU values. Returns float32, same shape.
    """
    if not high > low:
        raise InputError(f"intensity window [{low}, {high}] is empty: give a high value above the low value")
    image = np.asarray(image, dtype=np.float32)
    out = (np.clip(image, low, high) - np.float32(low)) / np.float32(high - low)
    return out.astype(np.float32, copy=False)


def hu_window(image: np.ndarray, window: tuple[float, float] = HU_WINDOW) -> np.ndarray:
    """Map HU to ``[0, 1]`` with a fixed window (default :data:`HU_WINDOW`).

    image: (Z, H, W), (H, W) or any shape in HU. Returns float32, same shape.
    """
    return window_to_unit(image, window[0], window[1])


def find_sliding_window(
    image: np.ndarray, q: float = SLIDING_WINDOW_Q, s: float = SLIDING_WINDOW_S
) -> tuple[float, float]:
    """Hu et al.'s W_{Q,S}: the range of width ``q`` covering the most voxels.

    Candidate windows are ``[m + k*s, m + k*s + q)`` for ``k = 0, 1, ...`` where
    ``m`` is the image minimum, up to the last one that starts at or below the
    maximum. Counting uses a histogram with bins of width ``s``, so ``q`` must be
    a whole multiple of ``s``. On ties the lowest window wins (the paper says
    nothing on ties; lowest keeps the choice deterministic).

    image: any shape (a slice, or a volume for one window per volume).
    Returns (low, high) with ``high - low == q``.
    """
    values = np.asarray(image).ravel()
    if values.size == 0:
        raise InputError("cannot choose an intensity window for an empty image: pass an image with voxels")
    if not (q > 0 and s > 0):
        raise InputError(f"sliding window needs positive Q and S, got Q={q}, S={s}: use e.g. Q=1500, S=50")
    bins_per_window = q / s
    if abs(bins_per_window - round(bins_per_window)) > 1e-9:
        raise InputError(f"sliding window width Q={q} is not a multiple of step S={s}: choose Q = n * S")
    bins_per_window = int(round(bins_per_window))
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise InputError("image has no finite values: check the file is a CT volume")
    start, top = float(values.min()), float(values.max())
    n_windows = int(np.floor((top - start) / s)) + 1
    n_bins = n_windows + bins_per_window - 1
    # Equal-width bins given as (count, range) take numpy's fast path, not a per-voxel search.
    counts, _ = np.histogram(values, bins=n_bins, range=(start, start + s * n_bins))
    # Sum of bins_per_window consecutive bins = voxels inside each candidate window.
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    covered = cumulative[bins_per_window : bins_per_window + n_windows] - cumulative[:n_windows]
    best = int(np.argmax(covered))
    low = start + best * s
    return low, low + q


def sliding_window_normalize(
    image: np.ndarray, q: float = SLIDING_WINDOW_Q, s: float = SLIDING_WINDOW_S
) -> np.ndarray:
    """Normalise with Hu et al.'s W_{Q,S} (Sec. II-C): find the window, clip, scale to ``[0, 1]``.

    image: any shape in HU; the window is chosen over all of it, so pass a slice
    (H, W) for the per-slice scheme the paper describes. Returns float32, same shape.
    """
    low, high = find_sliding_window(image, q, s)
    return window_to_unit(image, low, high)


def sliding_window_normalize_slices(
    volume: np.ndarray, q: float = SLIDING_WINDOW_Q, s: float = SLIDING_WINDOW_S
) -> np.ndarray:
    """Apply :func:`sliding_window_normalize` to each axial slice on its own.

    volume: (Z, H, W) in HU. Returns float32 (Z, H, W) in [0, 1]; each slice
    gets its own window, as Hu et al. normalise "input slices".
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise InputError(f"expected a (Z, H, W) volume, got shape {volume.shape}")
    out = np.empty(volume.shape, dtype=np.float32)
    for k in range(volume.shape[0]):
        out[k] = sliding_window_normalize(volume[k], q, s)
    return out
