"""Binary-mask building blocks on canonical (z, y, x) arrays: z axial (superior = high z), x right->left.

Every function takes and returns numpy arrays of the same shape; nothing here
knows about SimpleITK headers.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
IN_PLANE[1] = ndi.generate_binary_structure(2, 1)
"""4-connectivity inside each axial slice and none across slices: labels slices independently in one call."""

FACES = ndi.generate_binary_structure(3, 1)
"""6-connectivity in 3-D: thin diagonal bridges (partial-volume pleura) do not join components."""


def border_air(air: np.ndarray) -> np.ndarray:
    """Air connected, within its own axial slice, to the slice's edge: outside the body. (z, y, x) bool."""
    labels, count = ndi.label(air, IN_PLANE)
    touching = np.zeros(count + 1, dtype=bool)
    for edge in (labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]):
        touching[np.unique(edge)] = True
    touching[0] = False
    return touching[labels]


def fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """Fill 2-D holes in every axial slice of a (z, y, x) bool mask.

    A hole is background not reaching the slice's edge; one labelling pass over
    all slices, much faster than iterative propagation on 512x512 slices.
    """
    background = ~mask
    return mask | (background & ~border_air(background))


def body_mask(air: np.ndarray) -> np.ndarray:
    """The patient: the largest 3-D component of non-air, holes filled per slice. (z, y, x) bool.

    The table and its hollow core are separate components (foam pads between
    patient and table are air-dense), so they drop out here.
    """
    labels, count = ndi.label(~air, FACES)
    if count == 0:
        return np.zeros_like(air)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return fill_holes_per_slice(labels == int(np.argmax(sizes)))


def inside_air(air: np.ndarray, body: np.ndarray, keep_ml: float, voxel_ml: float) -> np.ndarray:
    """Air enclosed by the body: neither reaching the slice edge in-plane nor, in 3-D, joining such air.

    A 3-D component of enclosed air that touches outside air in a neighbouring
    slice (air under an arm, between skin folds) is outside air as well, unless it
    holds at least ``keep_ml`` mL: a lung whose airway reaches the face, or whose
    edge the field of view cuts, must not be thrown away for it.
    """
    outside = border_air(air)
    enclosed = air & ~outside & body
    labels, count = ndi.label(enclosed, FACES)
    if count == 0:
        return enclosed
    near_outside = ndi.binary_dilation(outside, FACES) & enclosed
    leaks = np.zeros(count + 1, dtype=bool)
    leaks[np.unique(labels[near_outside])] = True
    sizes = np.bincount(labels.ravel(), minlength=count + 1) * voxel_ml
    drop = leaks & (sizes < keep_ml)
    drop[0] = True
    return ~drop[labels]


def components_by_size(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3-D 6-connected labels of ``mask`` and the label ids sorted by decreasing voxel count."""
    labels, count = ndi.label(mask, FACES)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    order = np.argsort(sizes)[::-1]
    return labels, order[sizes[order] > 0]


def split_in_two(mask: np.ndarray, spacing_zyx, min_fraction: float = 0.15) -> np.ndarray | None:
    """Split one component holding both lungs (anterior/posterior junction) into two. Returns labels 1/2 or None.

    The mask is eroded by increasing depth (a distance-transform threshold, which
    is what repeated ball erosion computes) until two cores of at least
    ``min_fraction`` of the larger remain; every voxel then goes to the core it
    reaches first along the mask (watershed on the distance map). Junctions are a
    few millimetres thick, so they vanish long before the lungs do.
    """
    from skimage.segmentation import watershed

    depth = ndi.distance_transform_edt(mask, sampling=spacing_zyx)
    for threshold in np.arange(1.0, float(depth.max()), 1.0):
        labels, order = components_by_size(depth > threshold)
        if len(order) < 2:
            continue
        big, second = (np.count_nonzero(labels == i) for i in order[:2])
        if second >= min_fraction * big:
            markers = np.zeros(mask.shape, dtype=np.int32)
            markers[labels == order[0]] = 1
            markers[labels == order[1]] = 2
            return watershed(-depth, markers, mask=mask).astype(np.uint8)
    return None


def split_at_plane(mask: np.ndarray, x_index: float) -> np.ndarray:
    """Last resort for a fused pair: cut at the column ``x_index`` (the body's mid-sagittal plane). Labels 1 (low x) / 2."""
    out = np.zeros(mask.shape, dtype=np.uint8)
    columns = np.arange(mask.shape[2])[None, None, :]
    out[mask & (columns < x_index)] = 1
    out[mask & (columns >= x_index)] = 2
    return out
