"""Putting dense lung back: vessels, interior lesions and consolidation that touches the pleura.

Thresholding leaves out everything denser than the threshold. Interior
structures are holes and are filled in 3-D and per slice. Consolidation against
the chest wall is not a hole: it bites a bay into the lung's outline. In an
axial slice the costal surface follows the rib cage and is convex, so such a
bay lies between the lung and its 2-D convex hull. The mediastinal surface is
naturally concave (heart, hilum, aorta), so a bay is only filled when it lies
on the costal side: the direction from the lung's centroid to the bay points
at least :data:`COSTAL_ANGLE_DEG` away from the midline. This follows the
rolling-ball / convex-hull correction of juxtapleural nodules (Armato et al.,
Radiology 1999) but never crosses into the mediastinum, so the chest wall (outside
the hull) and the heart (medial) stay out while peripheral consolidation (the
typical COVID-19 pattern: posterior, lateral, subpleural) goes in; where the
hull chord cuts a lesion short of the pleura, :mod:`.ribcage` carries it out. A
consolidation against the mediastinum is not recovered; that is the accepted cost.
Arrays are canonical (z, y, x), x running from patient right to left.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from .masks import fill_holes_per_slice
from .ribcage import grow_to_chest_wall

COSTAL_ANGLE_DEG = 60.0
"""Minimum angle between a bay's direction and the medial direction for it to count as costal."""

LESION_REACH_MM = 60.0
"""Bay voxels are kept only where the lung lies both above and below within this distance.
A subpleural lesion (at most a few cm tall) sits inside the lung's z range at that spot,
whereas the diaphragm dome is a bay with lung above and liver, not lung, below."""


def between_lung_above_and_below(lung: np.ndarray, reach: int) -> np.ndarray:
    """(z, y, x) bool: voxels with ``lung`` in some slice within ``reach`` above and in some within ``reach`` below."""
    counts = np.concatenate([np.zeros((1,) + lung.shape[1:], np.int32), np.cumsum(lung, axis=0, dtype=np.int32)])
    n = lung.shape[0]
    z = np.arange(n)
    above = counts[np.minimum(z + 1 + reach, n)] - counts[z + 1]  # slices z+1 .. z+reach
    below = counts[z] - counts[np.maximum(z - reach, 0)]  # slices z-reach .. z-1
    return (above > 0) & (below > 0)


def costal_bays(lung2d: np.ndarray, allowed2d: np.ndarray, medial_sign: float, spacing_yx) -> tuple[np.ndarray, np.ndarray]:
    """Bays between one lung's 2-D outline and its convex hull that face the chest wall, and the hull. (y, x) bool each.

    ``medial_sign``: +1 if the midline lies towards higher x (a right lung), -1 otherwise.
    ``allowed2d``: where filling may go (the body minus the other lung).
    """
    if np.count_nonzero(lung2d) < 3:
        return np.zeros_like(lung2d), lung2d
    hull = convex_hull_image(lung2d)
    bays, count = ndi.label(hull & ~lung2d & allowed2d)
    if count == 0:
        return bays > 0, hull
    scale = np.asarray(spacing_yx, dtype=float)
    centre = np.array(ndi.center_of_mass(lung2d)) * scale
    centres = np.array(ndi.center_of_mass(bays > 0, bays, range(1, count + 1))).reshape(-1, 2) * scale
    offsets = centres - centre
    lengths = np.linalg.norm(offsets, axis=1)
    cos_medial = np.divide(offsets[:, 1] * medial_sign, lengths, out=np.ones_like(lengths), where=lengths > 0)
    costal = np.concatenate([[False], cos_medial < np.cos(np.radians(COSTAL_ANGLE_DEG))])
    return costal[bays], hull


def fill_lung(lung: np.ndarray, allowed: np.ndarray, medial_sign: float, spacing_zyx, bony_depth: np.ndarray) -> np.ndarray:
    """One lung (z, y, x bool) with holes and costal bays filled, kept inside ``allowed``. (z, y, x) bool.

    ``bony_depth``: :func:`.ribcage.bony_depth`, which lets a bay reach past the hull chord to the chest wall.
    """
    filled = ndi.binary_fill_holes(lung) & allowed
    filled = fill_holes_per_slice(filled) & allowed
    reach = max(1, int(round(LESION_REACH_MM / spacing_zyx[0])))
    enclosed = between_lung_above_and_below(filled, reach)
    for z in np.flatnonzero(filled.any(axis=(1, 2))):
        bays, hull = costal_bays(filled[z], allowed[z], medial_sign, spacing_zyx[1:])
        bays &= enclosed[z]
        # Not limited to ``enclosed``: at the lung's widest level no other slice reaches as far out.
        strip = grow_to_chest_wall(bays, hull, allowed[z], bony_depth[z], spacing_zyx[1:])
        filled[z] |= bays | strip
    return fill_holes_per_slice(filled) & allowed
