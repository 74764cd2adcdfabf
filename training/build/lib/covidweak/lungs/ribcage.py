"""Rib-cage boundary: how far consolidated lung may reach beyond the lung's own convex hull.

The costal-bay filling (:mod:`.fill`) closes a bay with the chord of the aerated
lung's 2-D convex hull. When a consolidation covers the lung's most lateral
part, that chord runs several millimetres inside the true pleura and cuts a strip
off the lesion. The true costal pleura lies a chest-wall thickness inside the
ribs, which stay visible (bone) whatever the lung does. So per axial slice the
inner surface of the chest wall is estimated as the convex hull of the bone,
shrunk by the wall thickness measured where aerated lung meets the wall on the
same slice (a median, so a lesion's own margin does not bias it), and a costal
bay may grow up to :data:`STRIP_MM` outwards, never past that surface.
Arrays are canonical (z, y, x).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

BONE_HU = 200.0
"""Cortical and trabecular bone (ribs, sternum, spine) exceed this; soft tissue and consolidation stay below +150 HU."""

RIB_POOL_MM = 15.0
"""Ribs run obliquely, so one axial slice shows only short arcs of them; bone within this z-distance
(about half a rib period) is pooled so the hull follows the whole cage, intercostal spaces included."""

NEAR_WALL_MM = 25.0
"""Lung surface within this depth of the bony hull is costal; deeper surface faces the mediastinum
and says nothing about the chest wall's thickness."""

LOCAL_WALL_MM = 30.0
"""The wall thickness is measured on the lung surface within this distance of a bay: the chest wall
is thicker at the back (paraspinal muscles) and front (cartilage, below :data:`BONE_HU`) than laterally."""

STRIP_MM = 10.0
"""Farthest a costal bay is grown beyond the hull chord: the strip a chord cuts off a lateral lesion
is a few millimetres deep, and the bony bound, not this reach, is meant to stop the growth."""


MIN_BAY_THICKNESS_MM = 8.0
"""Only bays at least this thick grow: a lesion is centimetres thick, whereas the slivers between a
normal lung and its hull are a few millimetres and would only pick up the wall-thickness estimate's error."""


def bony_depth(hu: np.ndarray, body: np.ndarray, spacing_zyx) -> np.ndarray:
    """(z, y, x) float: in-plane depth in mm inside the convex hull of (z-pooled) bone; 0 outside it."""
    bone = (hu > BONE_HU) & body
    pool = max(0, int(round(RIB_POOL_MM / spacing_zyx[0])))
    pooled = ndi.maximum_filter1d(bone, 2 * pool + 1, axis=0) if pool else bone
    depth = np.zeros(hu.shape, dtype=np.float32)
    for z in np.flatnonzero(pooled.any(axis=(1, 2))):
        if np.count_nonzero(pooled[z]) >= 3:
            depth[z] = ndi.distance_transform_edt(convex_hull_image(pooled[z]), sampling=spacing_zyx[1:])
    return depth


def inside_chest_wall(lung2d: np.ndarray, depth2d: np.ndarray, local: np.ndarray) -> np.ndarray | None:
    """(y, x) bool: inside the chest wall's inner surface as measured on the lung surface within ``local``,
    or None where no costal lung surface lies there."""
    surface = lung2d & ~ndi.binary_erosion(lung2d)
    near = surface & local & (depth2d > 0) & (depth2d < NEAR_WALL_MM)
    if not near.any():
        return None
    return depth2d >= float(np.median(depth2d[near]))


def grow_to_chest_wall(bays2d: np.ndarray, hull2d: np.ndarray, allowed2d: np.ndarray, depth2d: np.ndarray, spacing_yx) -> np.ndarray:
    """(y, x) bool: what lies beyond the lung's hull (``hull2d``) within :data:`STRIP_MM` of the costal bays
    and inside the chest wall's inner surface."""
    parts, count = ndi.label(bays2d)
    if count == 0:
        return bays2d
    half = ndi.maximum(ndi.distance_transform_edt(bays2d, sampling=spacing_yx), parts, range(1, count + 1))
    bays2d = np.concatenate([[False], np.asarray(half) >= MIN_BAY_THICKNESS_MM / 2.0])[parts]
    if not bays2d.any():
        return bays2d
    distance = ndi.distance_transform_edt(~bays2d, sampling=spacing_yx)
    # The hull's own surface, minus the chord across the bay (too deep: that is what is being corrected).
    inside = inside_chest_wall(hull2d, depth2d, (distance <= LOCAL_WALL_MM) & ~ndi.binary_dilation(bays2d, iterations=2))
    if inside is None:
        return np.zeros_like(bays2d)
    return (distance <= STRIP_MM) & inside & allowed2d & ~hull2d
