"""Digitally reconstructed radiograph (frontal chest X-ray) from the phantom CT.

X-rays travel front to back (AP, along +y). Each voxel's linear attenuation follows
from its CT number, mu = mu_water (1 + HU/1000); bone's photoelectric excess at
radiographic energies is mimicked by boosting positive HU. The line integral is what
a log-amplified detector records (-ln I/I0); a further log compression reproduces
the film-like contrast of a radiograph: bones and mediastinum bright, lungs dark.

The radiograph's 3x2 severity labels follow Kim et al. Sect. 2.1: a zone scores 1 for
the *presence of an opacity* a reader sees, not for any lesion voxel on the ray. The
phantom decides what a reader sees from the lesion's excess water-equivalent thickness
(:func:`lesion_thickness`) by a Rose-criterion reading (:func:`visible_opacity`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MU_WATER_PER_MM = 0.02
"""Linear attenuation of water near 60-70 keV (about 0.2 /cm)."""
BONE_BOOST = 1.8
"""Extra weight of HU above water: bone attenuates relatively more at radiographic energies."""
COMPRESSION = 1.5
"""Line integral scale of the log compression (a few cm of water equivalent)."""


def _to_rows(projection: np.ndarray, spacing, order: int) -> np.ndarray:
    """(z, x) projection -> (rows, x) image with row 0 superior and square pixels."""
    sx, _, sz = spacing
    rows = max(1, int(round(projection.shape[0] * sz / sx)))
    flipped = projection[::-1]
    if order == 0:
        pick = np.minimum((np.arange(rows) + 0.5) * projection.shape[0] / rows, projection.shape[0] - 1).astype(int)
        return flipped[pick]
    return ndimage.zoom(flipped, (rows / projection.shape[0], 1.0), order=order, mode="nearest")


VISIBLE_THICKNESS_MM = 3.0
"""Lesion excess water-equivalent thickness at which its radiograph contrast is about the
lungs' own texture (one standard deviation of the high-passed lesion-free DRR): measured on
the phantom at 1.4 mm pixels as 0.25-0.30 texture standard deviations per mm, so 0.75-0.9
at 3 mm (docs/status.md).
The paper gives no number; this is the phantom's reading of "presence of the opacity"."""
VISIBLE_AREA_MM2 = 50.0
"""Smallest visible opacity: 25 pixels of 1.4 mm, so that contrast 1 (in texture standard
deviations) times sqrt(pixels) reaches 5, Rose's criterion for a detectable object."""


def attenuation(hu: np.ndarray) -> np.ndarray:
    """(...) HU -> (...) float32 linear attenuation in units of water's (bone boosted)."""
    excess = np.asarray(hu, dtype=np.float32) / 1000.0
    mu = 1.0 + np.where(excess > 0, BONE_BOOST * excess, excess)
    return np.maximum(mu, 0.0)


def render_drr(hu: np.ndarray, spacing) -> np.ndarray:
    """hu: (z, y, x) float; spacing (x, y, z) mm -> (rows, x) float32 radiograph in [0, 1].

    Row 0 is the most superior row and column 0 the patient's right (x index 0), so it
    displays as a radiograph is read; pixels are square with the CT's x spacing.
    """
    line = attenuation(hu).sum(axis=1) * (MU_WATER_PER_MM * spacing[1])
    image = np.log1p(line / COMPRESSION)
    image = _to_rows(image, spacing, order=1)
    image = (image - image.min()) / max(float(np.ptp(image)), 1e-6)
    return image.astype(np.float32)


def project_labels(labels: np.ndarray, spacing) -> np.ndarray:
    """Front-to-back projection of a (z, y, x) label map on the radiograph grid.

    Each pixel takes the largest label along its ray (lungs: 2 wins where both project,
    which cannot happen for the phantom's separated lungs). Returns (rows, x) uint8.
    """
    return _to_rows(np.asarray(labels).max(axis=1), spacing, order=0).astype(np.uint8)


def lesion_thickness(healthy_hu: np.ndarray, lesioned_hu: np.ndarray, spacing) -> np.ndarray:
    """Excess water-equivalent thickness (mm) the lesions add along each AP ray.

    healthy_hu, lesioned_hu: (z, y, x) ideal CT numbers before and after the lesions were
    painted (no scanner blur or noise). Returns (rows, x) float32 on the radiograph grid.
    """
    extra = attenuation(lesioned_hu) - attenuation(healthy_hu)
    return _to_rows(extra.sum(axis=1) * float(spacing[1]), spacing, order=1).astype(np.float32)


def visible_opacity(thickness: np.ndarray, pixel_mm: float) -> np.ndarray:
    """(rows, x) lesion thickness (mm) -> (rows, x) bool: pixels of opacities a reader sees.

    A connected region at or above VISIBLE_THICKNESS_MM counts when it covers at least
    VISIBLE_AREA_MM2; thinner or smaller lesion shadows are lost in the lung texture.
    """
    dense = np.asarray(thickness) >= VISIBLE_THICKNESS_MM
    regions, count = ndimage.label(dense)
    if count == 0:
        return dense
    areas = np.bincount(regions.ravel(), minlength=count + 1) * float(pixel_mm) ** 2
    keep = areas >= VISIBLE_AREA_MM2
    keep[0] = False
    return keep[regions]


def lesions_seen(ids: np.ndarray, opacity: np.ndarray, spacing) -> set[int]:
    """Ids of the lesions whose radiograph shadow meets a visible opacity.

    ids: (z, y, x) lesion ids; opacity: (rows, x) bool from :func:`visible_opacity`.
    """
    return {int(i) for i in np.unique(ids[ids > 0]) if np.any((project_labels(ids == i, spacing) > 0) & opacity)}
