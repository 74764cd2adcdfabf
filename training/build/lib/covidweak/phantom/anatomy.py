"""A patient's thorax: body wall, skeleton, mediastinum, diaphragm and lungs.

Everything here depends only on the patient seed, so every follow-up study of a
patient shares it exactly. Shapes are implicit functions evaluated on the grid in
the reference frame (see :mod:`.grid`); tubes are drawn in physical millimetres.
The intrapulmonary vessels and bronchi are returned as overlays, applied by the
study after the lesions so that vessels stay visible through ground glass and air
bronchograms cross consolidation, as on real CT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import tissues as T
from .body import PatientShape, draw_patient_shape
from .fields import smooth_field
from .grid import Grid
from .mediastinum import draw_mediastinal_tubes
from .pulmonary import Overlay, draw_pulmonary_trees


@dataclass
class Anatomy:
    """grid; hu, tissue, lungs: (z, y, x) float32 HU / uint8 tissue code / uint8 0-1 right-2 left;
    overlays: intrapulmonary vessels and airways applied after lesions."""

    grid: Grid
    shape: PatientShape
    hu: np.ndarray
    tissue: np.ndarray
    lungs: np.ndarray
    overlays: list[Overlay] = field(default_factory=list)


# Painting classes: (tissue code, HU, texture gain). Several share a tissue code but not
# its HU; painting one uint8 class map and looking HU up once at the end replaces a
# full-volume float expression per structure.
_CLASSES = (
    (T.AIR, T.HU_AIR, 0.0), (T.SKIN, T.HU_SKIN, 0.0), (T.FAT, T.HU_FAT, 8.0), (T.MUSCLE, T.HU_MUSCLE, 6.0),
    (T.BONE, T.HU_RIB, 0.0), (T.CARTILAGE, T.HU_CARTILAGE, 0.0), (T.BONE, T.HU_STERNUM, 0.0),
    (T.MEDIASTINUM, T.HU_FAT, 10.0), (T.MEDIASTINUM, T.HU_BLOOD, 6.0), (T.LIVER, T.HU_LIVER, 5.0),
    (T.ABDOMEN, T.HU_ABDOMEN, 6.0), (T.BLOOD, T.HU_BLOOD, 4.0), (T.BONE, T.HU_VERTEBRA, 10.0),
    (T.CARTILAGE, 85.0, 0.0), (T.CANAL, T.HU_CSF, 0.0), (T.AIRWAY_LUMEN, T.HU_AIRWAY_LUMEN, 0.0),
    (T.LUNG, T.HU_LUNG, 0.0),
)
(_AIR, _SKIN, _FAT, _MUSCLE, _RIB, _CARTILAGE, _STERNUM, _MED_FAT, _MED_SOFT, _LIVER, _ABDOMEN, _BLOOD,
 _VERTEBRA, _DISC, _CANAL, _LUMEN, _LUNG) = range(len(_CLASSES))
_TISSUE_OF, _HU_OF, _GAIN_OF = (np.array(column, dtype) for column, dtype in
                                zip(zip(*_CLASSES), (np.uint8, np.float32, np.float32)))


def build_anatomy(patient_seed: int, grid: Grid) -> Anatomy:
    """Draw the thorax of patient ``patient_seed`` on ``grid``."""
    rng = np.random.default_rng([patient_seed, 0])
    p = draw_patient_shape(rng)
    X, Y, Z = grid.axes_ref()
    X2, Y2 = X[0], Y[0]
    cls = np.zeros(grid.shape, dtype=np.uint8)

    def paint(mask, code, box=(slice(None),) * 3):
        np.copyto(cls[box], np.uint8(code), where=mask)

    # Body wall: nested superellipses; the cavity sits anteriorly so the back is thicker.
    # Each is an in-plane outline scaled per slice, so "inside" is outline < scale.
    def shell(a, b, yc):
        return ((np.abs(X2) / a) ** p.exponent + (np.abs(Y2 - yc) / b) ** p.exponent) ** (1 / p.exponent)
    profile = (1.0 + 0.04 * np.clip(-Z / 160.0, 0, 1)).astype(np.float32)  # slightly wider abdomen
    # The bony thorax is a truncated cone: narrow at the thoracic inlet, widest at the domes.
    cone = profile * (0.62 + 0.38 * np.sqrt(np.clip((p.lung_top + 25 - Z) / 170.0, 0, 1)))
    cav = shell(p.cav_a, p.cav_b, p.cav_yc)[None]
    texture = smooth_field(rng, grid.shape, (grid.slices // 4, grid.size // 10, grid.size // 10))
    paint(shell(p.body_a, p.body_b, p.body_yc)[None] < profile, _SKIN)
    paint(shell(p.body_a - 2, p.body_b - 2, p.body_yc)[None] < profile, _FAT)
    paint(shell(p.body_a - 2 - p.fat, p.body_b - 2 - p.fat, p.body_yc)[None] < profile, _MUSCLE)

    # Ribs slope down anteriorly; each is a band in the cage shell, interrupted at the
    # spine and replaced by costal cartilage next to the sternum.
    ribs = _below(Z, p.lung_top + 15)
    zr = Z[ribs]
    phase = np.mod((zr - 0.35 * (Y - p.cav_yc)) / p.rib_period + p.rib_phase, 1.0)
    rib = (shell(p.cav_a + 11, p.cav_b + 11, p.cav_yc)[None] < cone[ribs]) & (cav >= cone[ribs])
    rib &= (phase < p.rib_width / p.rib_period) & (cav < cone[ribs] * (1 + 8.0 / p.cav_b))
    anterior = (Y < p.cav_yc) & (np.abs(X) < 0.45 * p.cav_a)
    paint(rib & ~anterior, _RIB, ribs)
    paint(rib & anterior, _CARTILAGE, ribs)
    sternum = (np.abs(X) < 14) & (Y < p.cav_yc - p.cav_b + 2) & (Y > p.cav_yc - p.cav_b - 13) & (Z < p.carina + 60) & (Z > p.dome_left - 10)
    paint(sternum, _STERNUM)

    # Thoracic cavity: mediastinum (mixed fat and soft tissue), then the abdomen below the domes.
    cavity = cav < cone
    fatty = smooth_field(rng, grid.shape, (grid.slices // 6, grid.size // 16, grid.size // 16))
    paint(cavity, _MED_SOFT)
    paint(cavity & (fatty > 0.1), _MED_FAT)
    dome = _diaphragm(p, X2, Y2)
    abdomen = _below(Z, float(dome.max()))
    below = cavity[abdomen] & (Z[abdomen] < dome[None])
    paint(below & (X < 25), _LIVER, abdomen)
    paint(below & (X >= 25), _ABDOMEN, abdomen)

    # Heart with its pericardial fat, on the diaphragm, left and anterior.
    heart_box, heart_r = _ellipsoid(grid, X, Y, Z, p.heart_centre, p.heart_radii, p.heart_angle, reach=1.12)
    above = Z[heart_box[0]] > dome[heart_box[1:]][None] - 4
    paint((heart_r < 1.08) & above, _FAT, heart_box)
    paint((heart_r < 1.0) & above, _BLOOD, heart_box)

    # Spine: vertebral bodies with discs, the canal and the posterior arch.
    vx, vy = 0.0, p.spine_y
    rb = np.hypot(X2 - vx, Y2 - vy)
    rc = np.hypot(X2 - vx, Y2 - (vy + 27))
    arch = ((rc < 14) & (rc >= 8)) | ((np.abs(X2) < 4) & (Y2 > vy + 30) & (Y2 < vy + 58)) | (
        (np.abs(X2) < 30) & (Y2 > vy + 18) & (Y2 < vy + 28))
    disc = (np.mod(Z - p.rib_phase * p.rib_period, 27.0) < 5.0)
    paint((rb < 17)[None] & ~disc, _VERTEBRA)
    paint((rb < 17)[None] & disc, _DISC)
    paint(arch[None] & ~disc, _RIB)
    paint((rc < 8)[None], _CANAL)

    # Great vessels and central airways; their dilated footprint is carved out of the lungs.
    tubes = draw_mediastinal_tubes(grid, p)
    paint(tubes.blood > 0.5, _BLOOD)
    paint(tubes.wall > 0.5, _CARTILAGE)
    paint(tubes.lumen > 0.5, _LUMEN)

    lungs = _lung_labels(p, X, Y, Z, cav < cone * (1 - 1.5 / p.cav_b), dome, heart_box, heart_r,
                         tubes.keep_out, rb)
    in_lung = lungs > 0
    paint(in_lung, _LUNG)
    tissue = _TISSUE_OF[cls]
    hu = _HU_OF[cls]
    hu += _GAIN_OF[cls] * texture
    lumen = np.flatnonzero(tubes.lumen > 0)
    flat_hu = hu.reshape(-1)
    flat_hu[lumen] += tubes.lumen.reshape(-1)[lumen] * (T.HU_AIRWAY_LUMEN - flat_hu[lumen])
    gravity = T.HU_LUNG_GRAVITY * (Y - p.lung_y) / p.lung_ry
    lung_texture = smooth_field(rng, grid.shape, (grid.slices // 3, grid.size // 7, grid.size // 7))
    lung_texture *= np.float32(T.HU_LUNG_TEXTURE)
    lung_texture += gravity
    np.add(hu, lung_texture, out=hu, where=in_lung)

    overlays = draw_pulmonary_trees(rng, grid, p, lungs, in_lung | tubes.keep_out)
    return Anatomy(grid=grid, shape=p, hu=hu, tissue=tissue, lungs=lungs, overlays=overlays)


def _below(Z: np.ndarray, height: float) -> tuple[slice]:
    """The z slab (leading index) of slices below ``height``; Z ascends with the index."""
    return (slice(0, int(np.searchsorted(Z.ravel(), height))),)


def _diaphragm(p: PatientShape, X2: np.ndarray, Y2: np.ndarray) -> np.ndarray:
    """Height (ref mm) of the diaphragm under each (y, x) column: two domes, the right one
    higher (the liver), both sloping down posteriorly into the costophrenic recesses."""
    out = []
    for side, base in ((-1, p.dome_right), (1, p.dome_left)):
        q = ((X2 - side * p.lung_x) / (0.55 * p.cav_a)) ** 2 + ((Y2 - p.cav_yc) / (0.95 * p.cav_b)) ** 2
        out.append(base + p.dome_height * np.sqrt(np.clip(1 - q, 0, 1)) - 0.18 * (Y2 - p.cav_yc))
    return np.where(X2 < 0, out[0], out[1]).astype(np.float32)


def _ellipsoid(grid: Grid, X, Y, Z, centre, radii, angle, reach: float):
    """(box, r): normalised radius (<1 inside) of a z-rotated ellipsoid, (z, y, x) float32,
    evaluated only in the box of the voxels where it is below ``reach``."""
    half = reach * np.array([max(radii[0], radii[1]), max(radii[0], radii[1]), radii[2]])
    box = tuple(slice(int(np.searchsorted(a.ravel(), c - r)), int(np.searchsorted(a.ravel(), c + r)))
                for a, c, r in ((Z, centre[2], half[2]), (Y, centre[1], half[1]), (X, centre[0], half[0])))
    c, s = np.cos(angle), np.sin(angle)
    dx, dy, dz = X[..., box[2]] - centre[0], Y[:, box[1]] - centre[1], Z[box[0]] - centre[2]
    u = (c * dx + s * dy) / radii[0]
    v = (-s * dx + c * dy) / radii[1]
    return box, np.sqrt(u * u + v * v + (dz / radii[2]) ** 2).astype(np.float32)


def _lung_labels(p, X, Y, Z, cavity, dome, heart_box, heart_r, keep_out, rb) -> np.ndarray:
    """Lung label map: each lung fills its half of the cavity above its dome, below a
    rounded apex, lateral to the mediastinum, away from heart, great vessels and spine."""
    medial = 7.0 + 20.0 * np.exp(-(((Y[0] - p.mediastinum_y) / 32.0) ** 2))
    free = cavity & (Z > dome[None]) & ~keep_out
    free &= (rb >= 22)[None]
    heart = (heart_r < 1.12) & (Z[heart_box[0]] >= dome[heart_box[1:]][None] - 4)
    free[heart_box] &= ~heart
    taper = np.clip(1 - (Z - p.apex_base) / (p.lung_top - p.apex_base), 0, 1) ** 0.55
    taper = np.where(Z > p.apex_base, taper, 1.0)
    # The lungs lie on either side of the midline: pick each column's lung first, then
    # test all slices against that lung's outline at once.
    side = np.where(X[0] < 0, -1.0, 1.0)
    q = ((X[0] - side * p.lung_x) / p.lung_rx) ** 2 + ((Y[0] - p.lung_y) / p.lung_ry) ** 2
    label = np.where(side * X[0] > medial, np.where(side < 0, 1, 2), 0).astype(np.uint8)
    return np.where(free & (q[None] < taper**2), label[None], np.uint8(0))
