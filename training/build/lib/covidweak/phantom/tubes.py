"""Rasterise tubes (vessels, airways, aorta) given as straight segments with a radius.

Thick tubes are drawn exactly, voxel by voxel inside each segment's bounding box,
with an anti-aliased edge. Tubes thinner than a voxel cannot be drawn that way
without aliasing, so they are sampled along their centre line and each voxel they
cross receives the partial-volume fraction of the tube inside it, which is what a
real CT voxel averages (a 2 mm vessel in a 5 mm slice is a faint smudge, not a dot).
"""

from __future__ import annotations

import numpy as np

from .grid import Grid

THICK_RADIUS_VOXELS = 1.2
"""Tubes with a radius above this many in-plane voxels are drawn exactly."""
PIECE_RADII = 3.0
"""Longest piece of a segment drawn in one box, in tube radii (plus a voxel)."""
BIG_BOX_VOXELS = 1 << 12
"""Boxes above this many voxels are drawn on their own."""
CHUNK_VOXELS = 1 << 20
"""Bounding-box voxels evaluated at once: bounds the temporaries (~60 MB) on large grids."""


def draw_segments(grid: Grid, out: np.ndarray, p0: np.ndarray, p1: np.ndarray, radius: np.ndarray) -> None:
    """Max-combine the volume fraction of tubes into ``out``.

    out: float32 (z, y, x) on ``grid``; p0, p1: (n, 3) physical (x, y, z) mm segment
    ends; radius: (n,) mm.
    """
    p0 = np.atleast_2d(np.asarray(p0, dtype=np.float64))
    p1 = np.atleast_2d(np.asarray(p1, dtype=np.float64))
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(p0),))
    h = min(grid.spacing[0], grid.spacing[1])
    thick = radius > THICK_RADIUS_VOXELS * h
    if thick.any():
        _draw_thick(grid, out, p0[thick], p1[thick], radius[thick])
    if (~thick).any():
        _draw_thin(grid, out, p0[~thick], p1[~thick], radius[~thick])


def _draw_thick(grid: Grid, out: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> None:
    """Exact distance to each segment over the voxels of its bounding box.

    A tree has hundreds of small boxes: they are flattened into one voxel list and
    evaluated together, since a Python call per segment costs more than its voxels.
    Large boxes (aorta, trachea) are evaluated one by one on broadcast axes, which
    saves computing every voxel's index.
    """
    spacing = np.array(grid.spacing)
    h = min(spacing[0], spacing[1])
    a, b, r = _split(a, b, r, PIECE_RADII * (r + h))
    ia, ib = grid.phys_to_index(a), grid.phys_to_index(b)
    pad = (r[:, None] + h) / spacing[::-1]
    lo = np.maximum(np.floor(np.minimum(ia, ib) - pad).astype(np.int64), 0)
    hi = np.minimum(np.ceil(np.maximum(ia, ib) + pad).astype(np.int64) + 1, grid.shape)
    dims = np.maximum(hi - lo, 0)
    count = dims.prod(axis=1)
    start = (a - np.array(grid.origin)).astype(np.float32)  # segment start relative to voxel (0, 0, 0)
    d = (b - a).astype(np.float32)
    inv_length2 = (1.0 / np.maximum((d.astype(np.float64) ** 2).sum(axis=1), 1e-9)).astype(np.float32)
    r = r.astype(np.float32)
    steps = np.array(grid.spacing, np.float32)
    for i in np.flatnonzero(count > BIG_BOX_VOXELS):
        axes = [np.arange(lo[i, k], hi[i, k], dtype=np.float32).reshape([-1 if j == k else 1 for j in range(3)])
                * steps[2 - k] - start[i, 2 - k] for k in range(3)]
        frac = _fraction(axes[2], axes[1], axes[0], d[i], inv_length2[i], r[i], h)
        view = out[lo[i, 0]:hi[i, 0], lo[i, 1]:hi[i, 1], lo[i, 2]:hi[i, 2]]
        np.maximum(view, np.clip(frac, 0.0, 1.0, out=frac), out=view)
    small = np.flatnonzero((count <= BIG_BOX_VOXELS) & (count > 0))
    ends = np.cumsum(count[small])
    first = 0
    while first < len(small):
        # Segments whose boxes fit in one chunk (always at least one segment).
        last = max(int(np.searchsorted(ends, ends[first] - count[small[first]] + CHUNK_VOXELS, side="right")), first + 1)
        pick = small[first:last]
        seg = np.repeat(np.arange(len(pick), dtype=np.int32), count[pick])
        index = _box_voxels(lo[pick], dims[pick], count[pick], seg)
        x, y, z = (index[2 - k] * steps[k] - start[pick, k][seg] for k in range(3))
        frac = _fraction(x, y, z, d[pick][seg].T, inv_length2[pick][seg], r[pick][seg], h)
        hit = frac > 0
        flat = (index[0][hit] * grid.shape[1] + index[1][hit]) * grid.shape[2] + index[2][hit]
        np.maximum.at(out.reshape(-1), flat, np.minimum(frac[hit], np.float32(1.0)))
        first = last


def _fraction(x, y, z, d, inv_length2, r, h: float) -> np.ndarray:
    """Anti-aliased tube fraction (unclipped) at offsets x, y, z (float32 mm from the segment
    start) of a segment with direction d (3, ...) and radius r; all broadcastable."""
    t = (x * d[0] + y * d[1] + z * d[2]) * inv_length2
    np.clip(t, 0.0, 1.0, out=t)
    x = x - t * d[0]
    y = y - t * d[1]
    z = z - t * d[2]
    return np.float32(0.5) + (r - np.sqrt(x * x + y * y + z * z)) * np.float32(1.0 / h)


def _box_voxels(lo: np.ndarray, dims: np.ndarray, count: np.ndarray, seg: np.ndarray) -> list[np.ndarray]:
    """(z, y, x) int32 grid indices of every voxel of the boxes ``lo + [0, dims)``, box by box."""
    local = np.arange(len(seg), dtype=np.int32) - np.repeat((np.cumsum(count) - count).astype(np.int32), count)
    plane = (dims[:, 1] * dims[:, 2]).astype(np.int32)[seg]
    iz = local // plane
    local -= iz * plane
    width = dims[:, 2].astype(np.int32)[seg]
    iy = local // width
    ix = local - iy * width
    return [i + lo[:, k].astype(np.int32)[seg] for k, i in enumerate((iz, iy, ix))]


def _split(a: np.ndarray, b: np.ndarray, r: np.ndarray, piece: np.ndarray):
    """Cut segments into pieces no longer than ``piece``: the union of the pieces' tubes is
    the segment's tube, but their boxes hug an oblique segment far more tightly."""
    n = np.maximum(np.ceil(np.linalg.norm(b - a, axis=1) / piece).astype(np.int64), 1)
    seg = np.repeat(np.arange(len(a)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    d = (b - a)[seg] / n[seg, None]
    start = a[seg] + k[:, None] * d
    return start, start + d, r[seg]


def _draw_thin(grid: Grid, out: np.ndarray, p0: np.ndarray, p1: np.ndarray, radius: np.ndarray) -> None:
    spacing = np.array(grid.spacing)
    step = 0.5 * spacing.min()
    d = p1 - p0
    length = np.linalg.norm(d, axis=1)
    n = np.maximum(np.ceil(length / step).astype(int), 1) + 1
    seg = np.repeat(np.arange(len(p0)), n)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    t = (np.arange(n.sum()) - np.repeat(starts, n)) / np.repeat(n - 1, n).clip(min=1)
    pts = p0[seg] + t[:, None] * d[seg]
    idx = np.rint(grid.phys_to_index(pts)).astype(np.int64)
    inside = np.all((idx >= 0) & (idx < np.array(grid.shape)), axis=1)
    # Chord of the tube through one voxel: the voxel extent along the tube direction.
    unit = np.abs(d) / np.maximum(length, 1e-9)[:, None]
    chord = 1.0 / np.max(unit / spacing, axis=1)
    frac = np.minimum(1.0, np.pi * radius**2 * chord / spacing.prod()).astype(np.float32)
    flat = np.ravel_multi_index(idx[inside].T, grid.shape)
    np.maximum.at(out.reshape(-1), flat, frac[seg[inside]])
