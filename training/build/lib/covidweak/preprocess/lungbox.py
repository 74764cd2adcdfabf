"""The one CT input geometry of the lesion networks: a fixed-size box around the lungs at 1.4 mm.

Every CT network sees the same thing, in training and in inference:

1. the axial slices are resampled in-plane to :data:`CANONICAL_SPACING_MM`
   (a 0.7 mm clinical CT halves, a 1.4 mm phantom is untouched);
2. a box of :data:`BOX_SHAPE` pixels is cut around the lungs, found from the classical lung mask;
3. the HU window maps intensities to [0, 1] and every pixel outside the lungs is set to
   :data:`OUTSIDE_LUNG`;
4. three adjacent slices are stacked as channels (M-SEAM-NAM Sect. 3.2).

:func:`from_box` is the inverse: a map on the box grid is put back onto the CT's exact grid.

Why not the papers' "resize the slice to 448 x 448": on a 2-core CPU the whole slice had to be
shrunk to 128 x 128, which made 22 mm network cells at stride 8 and left a typical lesion a
fifth of one cell. A box at native resolution spends every pixel on the lungs. Its 1.4 mm pixels
at output stride 4 give 5.6 mm cells, close to the paper's 6.4 mm (a ~360 mm field resized to
448 pixels, at stride 8), so the paper's settings in cells (NAM's r, SEAM's 0.3 scale) keep their
physical meaning.

All arrays are numpy in canonical (LPS) order (Z, Y, X): axis 1 runs anterior -> posterior,
axis 2 right -> left (:func:`covidweak.lungs.geometry.to_canonical`). Coordinates are pixel
indices of the CT's own grid, pixel centres at whole numbers.

"Exact round trip", as the tests read it: the box and its inverse are pure index arithmetic on
pixel centres, so a map pasted back lands on the CT's own grid with the CT's shape; where no
resampling is needed (1.4 mm in-plane) a box pixel *is* a CT pixel and values come back bit for
bit; elsewhere linear interpolation reproduces any field that is linear in space exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from .intensity import HU_WINDOW, hu_window
from .stacks import STACK_DEPTH

CANONICAL_SPACING_MM = 1.4
"""In-plane pixel spacing of the box (mm): the phantom's native spacing and twice the usual
0.7 mm of a clinical chest CT, so both map onto it without fractional resampling."""

BOX_SHAPE = (160, 224)
"""Box (anterior-posterior, right-left) in pixels: 224 x 314 mm at 1.4 mm.

Adult lungs reach about 200 mm front to back and 300 mm across both lungs at the bases; the box
leaves room for that. Lungs that are larger still do not get cut: :func:`fit_lung_box` then uses
a coarser spacing for that CT (and says so in :attr:`LungBox.spacing`)."""

BOX_MARGIN_PX = 4
"""Pixels kept free around the lungs' bounding box, so the pleura and a subpleural lesion are
never on the box edge, where convolutions see zero padding."""

OUTSIDE_LUNG = 0.0
"""Input value outside the lungs (after the window to [0, 1]): the value of the darkest air, so
chest wall, heart and bowel are gone and the network can only explain labels with the lungs."""



@dataclass(frozen=True)
class LungBox:
    """Where the box lies on one CT's in-plane grid.

    ``ct_shape``: (Y, X) of the CT; ``ct_spacing``: (dy, dx) mm; ``spacing``: the box pixel size
    in mm (:data:`CANONICAL_SPACING_MM` unless the lungs do not fit); ``origin``: CT pixel
    coordinates (y, x) of the centre of box pixel (0, 0); ``shape``: (H, W) of the box.
    """

    ct_shape: tuple[int, int]
    ct_spacing: tuple[float, float]
    spacing: float
    origin: tuple[float, float]
    shape: tuple[int, int] = BOX_SHAPE

    def step(self, axis: int) -> float:
        """CT pixels per box pixel along ``axis`` (0: y, 1: x)."""
        return self.spacing / self.ct_spacing[axis]

    def box_centres(self, axis: int) -> np.ndarray:
        """(shape[axis],) CT pixel coordinate of each box pixel centre."""
        return self.origin[axis] + np.arange(self.shape[axis]) * self.step(axis)

    def ct_centres(self, axis: int) -> np.ndarray:
        """(ct_shape[axis],) box pixel coordinate of each CT pixel centre."""
        return (np.arange(self.ct_shape[axis]) - self.origin[axis]) / self.step(axis)


def fit_lung_box(lungs: np.ndarray, ct_spacing: Sequence[float], shape: tuple[int, int] = BOX_SHAPE,
                 spacing: float = CANONICAL_SPACING_MM) -> LungBox:
    """The box of ``shape`` pixels centred on the lungs of a whole volume.

    lungs: (Z, Y, X) or (Y, X) mask, nonzero = lung; ct_spacing: (dy, dx) mm.
    One box serves every slice of a volume, so the three slices of a stack stay aligned.
    At the canonical spacing the origin is a whole CT pixel, which makes the box a plain crop.
    """
    lungs = np.asarray(lungs)
    dy, dx = (float(v) for v in ct_spacing)
    if min(dy, dx) <= 0:
        raise InputError(f"pixel spacing {tuple(ct_spacing)} is not positive: fix the CT header's spacing")
    rows = np.flatnonzero(lungs.any(axis=tuple(a for a in range(lungs.ndim) if a != lungs.ndim - 2)))
    cols = np.flatnonzero(lungs.any(axis=tuple(range(lungs.ndim - 1))))
    if rows.size == 0:
        raise InputError("the lung mask is empty, so there is no lung box to cut: check the CT is a chest CT in HU")
    # Extent in mm from outer pixel edge to outer pixel edge, plus the margin on both sides.
    extent_mm = ((rows[-1] - rows[0] + 1) * dy, (cols[-1] - cols[0] + 1) * dx)
    usable = [n - 2 * BOX_MARGIN_PX for n in shape]
    box_spacing = max(float(spacing), extent_mm[0] / usable[0], extent_mm[1] / usable[1])
    centre = ((rows[0] + rows[-1]) / 2.0, (cols[0] + cols[-1]) / 2.0)
    steps = (box_spacing / dy, box_spacing / dx)
    origin = tuple(c - (n - 1) / 2.0 * s for c, n, s in zip(centre, shape, steps))
    if box_spacing == spacing:
        # Snap to the CT's own grid where a box pixel is a whole number of CT pixels: a 1.4 mm
        # CT is then cropped, not interpolated.
        # 1.4 / 0.7 is 2.0000000000000004 in floating point, hence the tolerance.
        origin = tuple(float(np.round(o)) if abs(s - round(s)) < 1e-9 else o for o, s in zip(origin, steps))
    return LungBox(ct_shape=tuple(int(v) for v in lungs.shape[-2:]), ct_spacing=(dy, dx), spacing=box_spacing,
                   origin=origin, shape=tuple(shape))


def _linear_weights(positions: np.ndarray, n_source: int, step: float) -> np.ndarray:
    """(len(positions), n_source) weights that sample a line of ``n_source`` pixels at ``positions``.

    A triangle kernel of half-width max(1, step): linear interpolation when upsampling
    (a whole-number position takes exactly that pixel), widened into an anti-aliasing filter
    when one output pixel spans several source pixels. Rows are normalised over the pixels that
    exist; a position outside [-0.5, n_source - 0.5] gets an all-zero row (filled by the caller).
    """
    support = max(1.0, abs(step))
    source = np.arange(n_source)
    weights = np.clip(1.0 - np.abs(source[None, :] - positions[:, None]) / support, 0.0, None)
    inside = (positions >= -0.5) & (positions <= n_source - 0.5)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(inside[:, None] & (total > 0), weights / np.where(total > 0, total, 1.0), 0.0)
    return weights.astype(np.float32)


def _nearest(positions: np.ndarray, n_source: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest source index of each position, and whether it lies on the source line."""
    index = np.floor(positions + 0.5).astype(np.int64)
    inside = (index >= 0) & (index < n_source)
    return np.clip(index, 0, n_source - 1), inside


def _resample(planes: np.ndarray, rows: np.ndarray, cols: np.ndarray, steps: tuple[float, float], order: int,
              fill: float) -> np.ndarray:
    """Sample (Z, Y, X) planes at row / column positions (source pixel coordinates) -> (Z, len(rows), len(cols))."""
    if order == 0:
        (iy, in_y), (ix, in_x) = _nearest(rows, planes.shape[1]), _nearest(cols, planes.shape[2])
        out = planes[:, iy][:, :, ix]
        outside = ~(in_y[:, None] & in_x[None, :])
        if outside.any():
            out = out.copy()
            out[:, outside] = fill
        return out
    if order != 1:
        raise ValueError(f"order must be 0 (labels) or 1 (images), got {order}")
    wy = _linear_weights(rows, planes.shape[1], steps[0])
    wx = _linear_weights(cols, planes.shape[2], steps[1])
    out = np.matmul(np.matmul(wy, planes.astype(np.float32, copy=False)), wx.T)
    outside = ~((wy.sum(axis=1) > 0)[:, None] & (wx.sum(axis=1) > 0)[None, :])
    out[:, outside] = fill
    return out


def _as_planes(array: np.ndarray) -> tuple[np.ndarray, bool]:
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise InputError(f"expected a slice (Y, X) or volume (Z, Y, X), got shape {array.shape}")
    return (array[None], True) if array.ndim == 2 else (array, False)


def to_box(array: np.ndarray, box: LungBox, order: int = 1, fill: float = 0.0) -> np.ndarray:
    """CT slices -> the box grid.

    array: (Z, Y, X) or (Y, X) on the CT's grid (shape ``box.ct_shape``). ``order`` 1 for
    images (float32 out), 0 for label maps (dtype kept, values never mixed). Box pixels beyond
    the CT's field of view get ``fill``. Returns (Z, H, W) or (H, W).
    """
    planes, single = _as_planes(array)
    if planes.shape[1:] != box.ct_shape:
        raise InputError(f"slices of shape {planes.shape[1:]} do not match the lung box's CT shape {box.ct_shape}: "
                         f"fit the box on this CT's lung mask")
    out = _resample(planes, box.box_centres(0), box.box_centres(1), (box.step(0), box.step(1)), order, fill)
    return out[0] if single else out


def from_box(maps: np.ndarray, box: LungBox, order: int = 1, fill: float = 0.0) -> np.ndarray:
    """Maps on the box grid -> the CT's grid: the inverse of :func:`to_box`.

    maps: (Z, H, W) or (H, W) with (H, W) = ``box.shape`` (upsample a network's stride-4 map to
    the box first). CT pixels outside the box get ``fill`` (e.g. a very negative logit).
    Returns (Z, Y, X) or (Y, X) with (Y, X) = ``box.ct_shape``.
    """
    planes, single = _as_planes(maps)
    if planes.shape[1:] != box.shape:
        raise InputError(f"maps of shape {planes.shape[1:]} are not on the lung box grid {box.shape}")
    steps = (1.0 / box.step(0), 1.0 / box.step(1))
    out = _resample(planes, box.ct_centres(0), box.ct_centres(1), steps, order, fill)
    return out[0] if single else out


def stack_indices(depth: int, n_slices: int, centre: int) -> np.ndarray:
    """Slice indices of the ``depth``-slice stack around ``centre``; at the ends the slice repeats itself."""
    half = depth // 2
    return np.clip(np.arange(centre - half, centre - half + depth), 0, n_slices - 1)


def box_stacks(hu: np.ndarray, lungs: np.ndarray, box: LungBox, centres: Sequence[int],
               window: tuple[float, float] = HU_WINDOW, depth: int = STACK_DEPTH) -> np.ndarray:
    """Network input for the slices ``centres`` of one canonical volume.

    hu: (Z, Y, X) HU; lungs: (Z, Y, X) mask, nonzero = lung. Each channel is one slice of the
    stack, windowed to [0, 1] and set to :data:`OUTSIDE_LUNG` outside that slice's lungs.
    Only the slices a stack needs are resampled, so memory stays bounded for long scans.
    Returns (len(centres), depth, H, W) float32.
    """
    centres = np.asarray(centres, dtype=np.int64)
    needed = np.unique(np.concatenate([stack_indices(depth, hu.shape[0], c) for c in centres]))
    image = hu_window(to_box(np.asarray(hu[needed], dtype=np.float32), box, order=1, fill=window[0]), window)
    inside = to_box(np.asarray(lungs[needed]) != 0, box, order=0, fill=False)
    image[~inside] = OUTSIDE_LUNG
    position = {int(k): i for i, k in enumerate(needed)}
    picks = [[position[int(k)] for k in stack_indices(depth, hu.shape[0], c)] for c in centres]
    return image[np.asarray(picks)]
