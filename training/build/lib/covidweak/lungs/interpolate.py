"""Slice-interpolated shape prior: consolidation against the mediastinum near the lung base.

Consolidation (-100..+50 HU) lying between the lung and the heart is neither a
hole nor a costal bay (:mod:`.fill`), and when the other lung is consolidated
too, or the domes differ, the mirror prior (:mod:`.mirror`) misses it. What
remains is the lung's own shape along z: lung outlines change smoothly from one
axial slice to the next (a few mm per 5 mm slice), while a consolidated segment
bites a notch into a run of slices. Two observations make this usable:

* the 2-D convex hull of a lung barely changes when a part of it is dense,
  but the ratio of the lung's (hole-filled) area to its hull area drops: on
  clean slices it is ~0.86-0.93, on consolidated ones 0.66-0.83. Each slice is
  compared with the lung's own clean slices, not with a fixed number, so lung
  shape and body habitus cancel out;
* the nearest clean slices above and below a flagged run bracket the notch, and
  linear interpolation of their signed distance maps (in mm) is the classic
  shape-based interpolation of Raya & Udupa (IEEE TMI 1990) used for contour
  interpolation in radiotherapy planning. It reproduces smooth anatomy and
  cannot invent lung where neither neighbour has any.

At the dome the lung is a ring around the liver and consolidation sits right
above it, so the endpoints are the slices' hole-filled outlines, not the aerated
mask alone. Only dense soft tissue (not bone, not air) inside the interpolated
outline eroded by :data:`MARGIN_MM`, connected to the lung and holding at least
:data:`MIN_CONSOLIDATION_ML` (or :data:`MIN_CONSOLIDATION_FRACTION` of a small lung) is taken, then grown back through the margin only
next to what was accepted. The heart stays out because both endpoint outlines
exclude it: the heart border moves smoothly in z, so an interpolation between two
outlines that stop at it stays on the lung side of it to within the margin. Runs
without a clean slice on both sides (the base, where the liver dome would sit
inside any extrapolation) and runs longer than :data:`MAX_RUN_MM` (the left
lung's cardiac notch spans most of the heart's height) are not bridged. A false
positive on a normal chest needs both a shape notch and a large dense region
inside a smooth interpolation of the neighbouring slices, which normal anatomy
between two clean slices does not have.
Arrays are canonical (z, y, x) on the working grid.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from .masks import FACES, fill_holes_per_slice
from .mirror import MIN_CONSOLIDATION_ML, SOFT_TISSUE_MAX_HU, disk

RATIO_DROP = 0.06
"""A slice is flagged when its area/hull ratio lies this far below the lung's clean ratio (see
:data:`CLEAN_QUANTILE`): clean slices scatter by about +-0.03, consolidated ones fall 0.1-0.25 below."""

CLEAN_QUANTILE = 0.75
"""The lung's clean ratio is this quantile over its slices, not the median: the crescents around the
domes and the left lung's cardiac notch have low ratios over many slices and would drag a median down."""

MAX_RUN_MM = 80.0
"""Longest flagged run bridged: a consolidated segment is a few cm tall; lung shape changes too
much over longer gaps (the apex, the hilum) for a straight interpolation to hold."""

MARGIN_MM = 4.0
"""In-plane erosion of the interpolated outline: neighbouring outlines differ by a few mm along the
pleura and the heart border, so that band is not guessed but grown back only next to accepted tissue."""

MIN_ENDPOINT_AREA_RATIO = 0.5
"""The smaller bracketing outline must hold at least this fraction of the larger one's area. Through a
consolidated run the lung's cross-section changes by a few percent per slice; a run bracketed by a
sliver (the lung's tip under the dome, the apex) is the dome itself, where interpolating towards the
next full outline would sweep the liver into the lung."""


MIN_CONSOLIDATION_FRACTION = 0.01
"""A bridged region also counts when it holds 1 % of its lung's volume: :data:`MIN_CONSOLIDATION_ML`
was set on adult-sized lungs (~2.5 L), and a small chest scales its consolidations down with its
lungs, while the interpolated outline already excludes what normal anatomy puts between two clean slices."""


def _signed_distance(mask2d: np.ndarray, spacing_yx) -> np.ndarray:
    """(y, x) float mm: positive inside ``mask2d``, negative outside."""
    return ndi.distance_transform_edt(mask2d, sampling=spacing_yx) - ndi.distance_transform_edt(~mask2d, sampling=spacing_yx)


def _flagged_slices(outline: np.ndarray) -> np.ndarray:
    """(z,) bool: slices whose area/hull ratio has dropped below the lung's clean ratio."""
    flagged = np.zeros(outline.shape[0], dtype=bool)
    slices = np.flatnonzero(outline.any(axis=(1, 2)))
    ratios = np.array([np.count_nonzero(outline[z]) / max(1, np.count_nonzero(convex_hull_image(outline[z]))) for z in slices])
    if ratios.size:
        flagged[slices] = ratios < np.quantile(ratios, CLEAN_QUANTILE) - RATIO_DROP
    return flagged


def _runs(flagged: np.ndarray, areas: np.ndarray, max_slices: int) -> list[tuple[int, int]]:
    """(below, above): clean lung slices of comparable ``areas`` bracketing each flagged run no longer than ``max_slices``."""
    runs = []
    labels, count = ndi.label(flagged)
    for run in ndi.find_objects(labels):
        start, stop = run[0].start, run[0].stop
        below, above = start - 1, stop
        if stop - start > max_slices or below < 0 or above >= flagged.size:
            continue
        small, large = sorted((areas[below], areas[above]))
        if small >= MIN_ENDPOINT_AREA_RATIO * large > 0:
            runs.append((below, above))
    return runs


def interpolated_outline(outline: np.ndarray, spacing_zyx) -> np.ndarray:
    """(z, y, x) bool: the lung's outline interpolated across its flagged runs; False elsewhere."""
    prior = np.zeros_like(outline)
    max_slices = int(round(MAX_RUN_MM / spacing_zyx[0]))
    for below, above in _runs(_flagged_slices(outline), outline.sum(axis=(1, 2)), max_slices):
        low, high = (_signed_distance(outline[z], spacing_zyx[1:]) for z in (below, above))
        for z in range(below + 1, above):
            t = (z - below) / (above - below)
            prior[z] = (1.0 - t) * low + t * high > 0.0
    return prior


def interpolate_consolidation(filled: np.ndarray, hu: np.ndarray, room: np.ndarray, spacing_zyx, air_hu: float, labels) -> np.ndarray:
    """Labels (z, y, x uint8) of ``filled`` plus the dense voxels the slice-interpolated prior adds to each lung."""
    dense = room & (hu >= air_hu) & (hu < SOFT_TISSUE_MAX_HU) & (filled == 0)
    margin = disk(MARGIN_MM, spacing_zyx[1:])
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    out = filled.copy()
    for label in labels:
        own = filled == label
        prior = interpolated_outline(fill_holes_per_slice(own), spacing_zyx) & ~own
        if not prior.any():
            continue
        candidate = dense & prior
        core = candidate & ndi.binary_erosion(prior | own, margin)
        parts, count = ndi.label(core, FACES)
        min_ml = min(MIN_CONSOLIDATION_ML, MIN_CONSOLIDATION_FRACTION * np.count_nonzero(own) * voxel_ml)
        big = np.bincount(parts.ravel(), minlength=count + 1) * voxel_ml >= min_ml
        touching = np.zeros(count + 1, dtype=bool)
        touching[np.unique(parts[ndi.binary_dilation(own, FACES) & core])] = True
        touching[0] = False
        accepted = (big & touching)[parts]
        if not accepted.any():
            continue
        accepted |= ndi.binary_dilation(accepted, margin) & candidate
        out[accepted & (out == 0)] = label
    return out
