"""Contralateral mirror prior: consolidation that fills a lung from the mediastinum to the chest wall.

A lobar consolidation that touches both the mediastinum and the costal pleura is
neither a hole nor a costal bay (:mod:`.fill`): in HU (-100..+50) it is the same
as the heart and the chest wall, so only shape can tell. Such consolidation is
usually unilateral or asymmetric, so the other lung, mirrored about the
mid-sagittal plane, says where lung should be. Dense soft tissue inside the
mirrored lung and connected to the lung of that side is taken as consolidated
lung, with guards for the ways real chests are not symmetric:

* the mirrored mask is eroded in-plane by :data:`MIRROR_MARGIN_MM` and then
  grown back only through dense tissue that touches the accepted part, so the
  mediastinal and costal margins are not guessed but the strip a lung's own
  convex hull cuts off a lateral lesion is restored;
* the lowest :data:`DOME_MARGIN_MM` of the mirrored lung are dropped: the
  diaphragm domes differ in height (the right usually 1-2 cm higher);
* candidates thinner than :data:`MIN_THICKNESS_MM` in-plane are dropped: slivers
  along the heart, the hilum or the dome come from small asymmetries, whereas a
  consolidation that escaped the other steps is centimetres thick; for the same
  reason candidates below :data:`MIN_CONSOLIDATION_ML` are dropped;
* the heart sits left of the midline, so the right lung mirrored onto the left
  reaches into it (the left lung's cardiac notch makes the opposite direction
  conservative). Left-side candidates must also have left lung above and below
  within :data:`~covidweak.lungs.fill.LESION_REACH_MM`; the heart rests on the
  diaphragm with no lung under it. (Situs inversus would swap the roles and
  merely make this step miss left-sided consolidation.)

The millimetre guards were set on adult chests; a child's anatomy (dome height
difference, heart-border asymmetry, segment size) is proportionally smaller, so
they shrink with :func:`chest_scale` (lengths linearly, volumes with its cube).
Otherwise a child's basal consolidation lies wholly within the dome margin and is
thinner than the adult thickness guard, and is never recovered.

The midline is the body's centre in x over the lung slices (the patient table is
not part of the body, see :func:`.masks.body_mask`). Arrays are canonical
(z, y, x) on the working grid, x from patient right to left, so mirroring is an
index flip whatever the scanner's direction matrix was.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .fill import LESION_REACH_MM, between_lung_above_and_below
from .masks import FACES

MIRROR_MARGIN_MM = 4.0
"""In-plane erosion of the mirrored lung: left and right lungs differ by a few mm along the pleura."""

DOME_MARGIN_MM = 20.0
"""The mirrored lung's lowest part is ignored: the two domes of the diaphragm differ by about this much."""

MIN_THICKNESS_MM = 16.0
"""Smallest in-plane thickness of an accepted candidate: thinner dense strips are asymmetry, not consolidation."""

MIN_CONSOLIDATION_ML = 25.0
"""Smallest accepted candidate: a consolidated segment holds tens of mL; the pieces that small
asymmetries of the heart border or the domes leave after the opening are ~10-15 mL.
Smaller consolidation is left to the hole and costal-bay filling."""

ADULT_LUNGS_WIDTH_MM = 220.0
"""Width of both lungs together, right costal pleura to left, at the narrow end of adult chests
(adults span about 23-28 cm). Chests at least this wide keep the guards as set; narrower ones
(children: about 12-13 cm at age 5-8) scale them down in proportion."""

SOFT_TISSUE_MAX_HU = 150.0
"""Consolidation is at most about +50 HU (contrast-enhanced up to ~+100); bone (ribs, spine) is above +200."""


def disk(radius_mm: float, spacing_yx) -> np.ndarray:
    """An in-plane (1, y, x) ellipse of ``radius_mm`` in voxels of ``spacing_yx``."""
    ry, rx = (max(0, int(round(radius_mm / s))) for s in spacing_yx)
    yy, xx = np.mgrid[-ry : ry + 1, -rx : rx + 1]
    return ((yy / max(ry, 1)) ** 2 + (xx / max(rx, 1)) ** 2 <= 1.0)[None]


def chest_scale(lungs: np.ndarray, spacing_x: float) -> float:
    """Size of the chest relative to a small adult's, at most 1: the widest slice of ``lungs`` (z, y, x bool) in x.

    The lungs' width, not the body's, so fat and arms do not count; the widest slice is
    where the costal pleura is reached whatever a lesion does to other slices.
    """
    columns = lungs.any(axis=1)
    widths = [np.ptp(np.flatnonzero(row)) + 1 for row in columns if row.any()]
    return min(1.0, max(widths, default=0) * spacing_x / ADULT_LUNGS_WIDTH_MM)


def _mirrored(mask: np.ndarray, centre_x: float) -> np.ndarray:
    """``mask`` flipped about the column ``centre_x`` (a continuous index); what falls outside is dropped."""
    columns = np.arange(mask.shape[2])
    source = np.round(2.0 * centre_x - columns).astype(int)
    inside = (source >= 0) & (source < mask.shape[2])
    out = np.zeros_like(mask)
    out[:, :, inside] = mask[:, :, source[inside]]
    return out


def _without_bottom(mask: np.ndarray, slices: int) -> np.ndarray:
    """Keep voxels of ``mask`` whose column is also in ``mask`` for the ``slices`` slices below."""
    out = mask.copy()
    for k in range(1, slices + 1):
        out[k:] &= mask[:-k]
        out[:k] = False
    return out


def mirror_consolidation(filled: np.ndarray, hu: np.ndarray, room: np.ndarray, body: np.ndarray, spacing_zyx, air_hu: float, right: int, left: int) -> np.ndarray:
    """Labels (z, y, x uint8) of ``filled`` plus the dense voxels the mirror prior adds to each lung.

    ``room``: where lung may be (the body minus the airway); ``hu``: the working-grid CT.
    """
    lung_slices = np.flatnonzero((filled > 0).any(axis=(1, 2)))
    if lung_slices.size == 0 or not ((filled == right).any() and (filled == left).any()):
        return filled
    centre_x = ndi.center_of_mass(body[lung_slices[0] : lung_slices[-1] + 1])[2]
    dense = room & (hu >= air_hu) & (hu < SOFT_TISSUE_MAX_HU) & (filled == 0)
    scale = chest_scale(filled > 0, spacing_zyx[2])
    margin = disk(scale * MIRROR_MARGIN_MM, spacing_zyx[1:])
    opening = disk(scale * MIN_THICKNESS_MM / 2.0, spacing_zyx[1:])
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    min_ml = scale**3 * MIN_CONSOLIDATION_ML
    dome = int(round(scale * DOME_MARGIN_MM / spacing_zyx[0]))
    reach = max(1, int(round(LESION_REACH_MM / spacing_zyx[0])))
    out = filled.copy()
    for label, other in ((right, left), (left, right)):
        own = filled == label
        mirrored = _without_bottom(_mirrored(filled == other, centre_x), dome)
        prior = mirrored & dense
        core = prior & ndi.binary_erosion(mirrored, margin)
        if label == left:
            core &= between_lung_above_and_below(own, reach)
        core = ndi.binary_opening(core, opening)
        parts, count = ndi.label(core, FACES)
        big = np.bincount(parts.ravel(), minlength=count + 1) * voxel_ml >= min_ml
        big[0] = False
        touching = np.zeros(count + 1, dtype=bool)
        touching[np.unique(parts[ndi.binary_dilation(own, FACES) & core])] = True
        accepted = (big & touching)[parts]
        if not accepted.any():
            continue
        # Grow back through the eroded margin, only next to what was accepted.
        accepted |= ndi.binary_dilation(accepted, margin) & prior
        out[accepted & (out == 0)] = label
    return out
