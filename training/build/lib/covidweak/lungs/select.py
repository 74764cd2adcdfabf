"""Choosing the lungs among the air pockets inside the body and naming them right and left.

Arrays are canonical (z, y, x) on ``grid`` (the working image whose header maps
indices to LPS millimetres). Right and left come from physical x (LPS: smaller
x = patient right), never from array order.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError
from .geometry import physical_x
from .masks import components_by_size, split_at_plane, split_in_two

RIGHT, LEFT = 1, 2

LUNG_MIN_ML = 30.0
"""Smallest air pocket accepted as a lung: an infant lung holds ~50 mL; bowel gas bubbles are usually smaller."""

BOTH_SIDES_FRACTION = 0.2
"""A single component with at least this share of its voxels on each side of the midline is two fused lungs."""

NO_LUNG_MESSAGE = "no air-filled lung found: is this a chest CT in HU?"


def _side_of(grid, mask: np.ndarray, midline_x: float) -> int:
    centre = np.array(ndi.center_of_mass(mask))
    return RIGHT if physical_x(grid, centre) < midline_x else LEFT


def _share_right(grid, mask: np.ndarray, midline_x: float) -> float:
    """Fraction of ``mask``'s voxels at smaller LPS x than the midline (mid-sagittal plane, x = const)."""
    columns = np.flatnonzero(mask.any(axis=(0, 1)))
    counts = mask.sum(axis=(0, 1))[columns]
    z, y = (np.array(ndi.center_of_mass(mask))[:2])
    xs = np.array([physical_x(grid, (z, y, c)) for c in columns])
    return float(counts[xs < midline_x].sum() / counts.sum())


def _order_by_x(grid, halves: np.ndarray) -> np.ndarray:
    """Relabel a two-label split so that 1 is the part with smaller physical x (patient right)."""
    x1 = physical_x(grid, np.array(ndi.center_of_mass(halves == 1)))
    x2 = physical_x(grid, np.array(ndi.center_of_mass(halves == 2)))
    if x1 <= x2:
        return halves
    swapped = halves.copy()
    swapped[halves == 1] = LEFT
    swapped[halves == 2] = RIGHT
    return swapped


def pick_lungs(candidates: np.ndarray, body: np.ndarray, grid, spacing_zyx, voxel_ml: float) -> tuple[np.ndarray, np.ndarray]:
    """Label the lungs' air (uint8 0/1 right/2 left) and return it with the air not chosen (bool), both (z, y, x).

    The largest component is a lung. If it reaches well across the midline it
    is both lungs fused at a junction, and is split (erosion + watershed, or the
    mid-sagittal plane as a last resort). Otherwise the other lung is the largest
    component of at least :data:`LUNG_MIN_ML` whose centre lies on the other side.
    """
    labels, order = components_by_size(candidates)
    sizes = np.bincount(labels.ravel()) * voxel_ml
    if len(order) == 0 or sizes[order[0]] < LUNG_MIN_ML:
        raise InputError(NO_LUNG_MESSAGE)
    midline_x = physical_x(grid, np.array(ndi.center_of_mass(body)))
    lungs = np.zeros(candidates.shape, dtype=np.uint8)
    first = labels == order[0]
    share = _share_right(grid, first, midline_x)
    if min(share, 1.0 - share) >= BOTH_SIDES_FRACTION:
        halves = split_in_two(first, spacing_zyx)
        if halves is None:
            body_x_index = ndi.center_of_mass(body)[2]
            halves = split_at_plane(first, body_x_index)
        lungs = _order_by_x(grid, halves)
    else:
        side = _side_of(grid, first, midline_x)
        lungs[first] = side
        for label in order[1:]:
            if sizes[label] < LUNG_MIN_ML:
                break
            other = labels == label
            if _side_of(grid, other, midline_x) != side:
                lungs[other] = LEFT if side == RIGHT else RIGHT
                break
    return lungs, candidates & (lungs == 0)
