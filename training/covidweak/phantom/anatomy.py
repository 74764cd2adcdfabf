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


def build_anatomy(patient_seed: int, grid: Grid) -> Anatomy:
    """Draw the thorax of patient ``patient_seed`` on ``grid``."""
    rng = np.random.default_rng([patient_seed, 0])
    p = draw_patient_shape(rng)
    X, Y, Z = grid.axes_ref()
    hu = np.full(grid.shape, T.HU_AIR, dtype=np.float32)
    tissue = np.zeros(grid.shape, dtype=np.uint8)

    def paint(mask, code, value):
        np.copyto(tissue, np.uint8(code), where=mask)
        np.copyto(hu, np.float32(value), where=mask) if np.isscalar(value) else np.copyto(hu, value, where=mask)

    # Body wall: nested superellipses; the cavity sits anteriorly so the back is thicker.
    X2, Y2 = X[0], Y[0]
    def shell(a, b, yc):
        return ((np.abs(X2) / a) ** p.exponent + (np.abs(Y2 - yc) / b) ** p.exponent) ** (1 / p.exponent)
    profile = (1.0 + 0.04 * np.clip(-Z / 160.0, 0, 1)).astype(np.float32)  # slightly wider abdomen
    body_r = shell(p.body_a, p.body_b, p.body_yc)[None] / profile
    fat_r = shell(p.body_a - 2, p.body_b - 2, p.body_yc)[None] / profile
    muscle_r = shell(p.body_a - 2 - p.fat, p.body_b - 2 - p.fat, p.body_yc)[None] / profile
    # The bony thorax is a truncated cone: narrow at the thoracic inlet, widest at the domes.
    cone = profile * (0.62 + 0.38 * np.sqrt(np.clip((p.lung_top + 25 - Z) / 170.0, 0, 1)))
    cage_r = shell(p.cav_a + 11, p.cav_b + 11, p.cav_yc)[None] / cone
    cav_r = shell(p.cav_a, p.cav_b, p.cav_yc)[None] / cone
    texture = smooth_field(rng, grid.shape, (grid.slices // 4, grid.size // 10, grid.size // 10))
    paint(body_r < 1, T.SKIN, T.HU_SKIN)
    paint(fat_r < 1, T.FAT, T.HU_FAT + 8 * texture)
    paint(muscle_r < 1, T.MUSCLE, T.HU_MUSCLE + 6 * texture)

    # Ribs slope down anteriorly; each is a band in the cage shell, interrupted at the
    # spine and replaced by costal cartilage next to the sternum.
    phase = np.mod((Z - 0.35 * (Y - p.cav_yc)) / p.rib_period + p.rib_phase, 1.0)
    in_shell = (cage_r < 1) & (cav_r >= 1)
    rib = in_shell & (phase < p.rib_width / p.rib_period) & (cav_r < 1 + 8.0 / p.cav_b)
    rib &= Z < p.lung_top + 15
    anterior = (Y < p.cav_yc) & (np.abs(X) < 0.45 * p.cav_a)
    paint(rib & ~anterior, T.BONE, T.HU_RIB)
    paint(rib & anterior, T.CARTILAGE, T.HU_CARTILAGE)
    sternum = (np.abs(X) < 14) & (Y < p.cav_yc - p.cav_b + 2) & (Y > p.cav_yc - p.cav_b - 13) & (Z < p.carina + 60) & (Z > p.dome_left - 10)
    paint(sternum, T.BONE, T.HU_STERNUM)

    # Thoracic cavity: mediastinum (mixed fat and soft tissue), then the abdomen below the domes.
    cavity = cav_r < 1
    fatty = smooth_field(rng, grid.shape, (grid.slices // 6, grid.size // 16, grid.size // 16))
    paint(cavity, T.MEDIASTINUM, np.where(fatty > 0.1, T.HU_FAT + 10 * texture, T.HU_BLOOD + 6 * texture))
    dome = _diaphragm(p, X2, Y2)
    below = cavity & (Z < dome[None])
    paint(below & (X < 25), T.LIVER, T.HU_LIVER + 5 * texture)
    paint(below & (X >= 25), T.ABDOMEN, T.HU_ABDOMEN + 6 * texture)

    # Heart with its pericardial fat, on the diaphragm, left and anterior.
    heart_r = _ellipsoid(X, Y, Z, p.heart_centre, p.heart_radii, p.heart_angle)
    above = Z > dome[None] - 4
    paint((heart_r < 1.08) & above, T.FAT, T.HU_FAT + 8 * texture)
    paint((heart_r < 1.0) & above, T.BLOOD, T.HU_BLOOD + 4 * texture)

    # Spine: vertebral bodies with discs, the canal and the posterior arch.
    vx, vy = 0.0, p.spine_y
    rb = np.hypot(X2 - vx, Y2 - vy)
    rc = np.hypot(X2 - vx, Y2 - (vy + 27))
    arch = ((rc < 14) & (rc >= 8)) | ((np.abs(X2) < 4) & (Y2 > vy + 30) & (Y2 < vy + 58)) | (
        (np.abs(X2) < 30) & (Y2 > vy + 18) & (Y2 < vy + 28))
    disc = (np.mod(Z - p.rib_phase * p.rib_period, 27.0) < 5.0)
    paint((rb < 17)[None] & ~disc, T.BONE, T.HU_VERTEBRA + 10 * texture)
    paint((rb < 17)[None] & disc, T.CARTILAGE, 85.0)
    paint(arch[None] & ~disc, T.BONE, T.HU_RIB)
    paint((rc < 8)[None] & np.ones_like(disc), T.CANAL, T.HU_CSF)

    # Great vessels and central airways; their dilated footprint is carved out of the lungs.
    tubes = draw_mediastinal_tubes(grid, p)
    paint(tubes.blood > 0.5, T.BLOOD, T.HU_BLOOD + 4 * texture)
    paint(tubes.wall > 0.5, T.CARTILAGE, T.HU_CARTILAGE)
    np.copyto(hu, hu + tubes.lumen * (T.HU_AIRWAY_LUMEN - hu), where=tubes.lumen > 0)
    paint(tubes.lumen > 0.5, T.AIRWAY_LUMEN, T.HU_AIRWAY_LUMEN)

    lungs = _lung_labels(p, X, Y, Z, cav_r, dome, heart_r, tubes.keep_out, rb)
    gravity = T.HU_LUNG_GRAVITY * (Y - p.lung_y) / p.lung_ry
    lung_texture = smooth_field(rng, grid.shape, (grid.slices // 3, grid.size // 7, grid.size // 7))
    paint(lungs > 0, T.LUNG, T.HU_LUNG + gravity + T.HU_LUNG_TEXTURE * lung_texture)

    overlays = draw_pulmonary_trees(rng, grid, p, lungs, (lungs > 0) | tubes.keep_out)
    return Anatomy(grid=grid, shape=p, hu=hu, tissue=tissue, lungs=lungs, overlays=overlays)


def _diaphragm(p: PatientShape, X2: np.ndarray, Y2: np.ndarray) -> np.ndarray:
    """Height (ref mm) of the diaphragm under each (y, x) column: two domes, the right one
    higher (the liver), both sloping down posteriorly into the costophrenic recesses."""
    out = []
    for side, base in ((-1, p.dome_right), (1, p.dome_left)):
        q = ((X2 - side * p.lung_x) / (0.55 * p.cav_a)) ** 2 + ((Y2 - p.cav_yc) / (0.95 * p.cav_b)) ** 2
        out.append(base + p.dome_height * np.sqrt(np.clip(1 - q, 0, 1)) - 0.18 * (Y2 - p.cav_yc))
    return np.where(X2 < 0, out[0], out[1]).astype(np.float32)


def _ellipsoid(X, Y, Z, centre, radii, angle) -> np.ndarray:
    """Normalised radius of a z-rotated ellipsoid (<1 inside), (z, y, x) float32."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy, dz = X - centre[0], Y - centre[1], Z - centre[2]
    u = (c * dx + s * dy) / radii[0]
    v = (-s * dx + c * dy) / radii[1]
    return np.sqrt(u * u + v * v + (dz / radii[2]) ** 2).astype(np.float32)


def _lung_labels(p, X, Y, Z, cav_r, dome, heart_r, keep_out, rb) -> np.ndarray:
    """Lung label map: each lung fills its half of the cavity above its dome, below a
    rounded apex, lateral to the mediastinum, away from heart, great vessels and spine."""
    medial = 7.0 + 20.0 * np.exp(-(((Y - p.mediastinum_y) / 32.0) ** 2))
    free = (cav_r < 1 - 1.5 / p.cav_b) & (Z > dome[None]) & ((heart_r >= 1.12) | (Z < dome[None] - 4)) & ~keep_out
    free &= (rb >= 22)[None]
    labels = np.zeros(free.shape, dtype=np.uint8)
    for label, side in ((1, -1), (2, 1)):
        taper = np.clip(1 - (Z - p.apex_base) / (p.lung_top - p.apex_base), 0, 1) ** 0.55
        taper = np.where(Z > p.apex_base, taper, 1.0)
        q = ((X - side * p.lung_x) / p.lung_rx) ** 2 + ((Y - p.lung_y) / p.lung_ry) ** 2
        inside = free & (q < taper**2) & (side * X > medial)
        labels[inside] = label
    return labels
