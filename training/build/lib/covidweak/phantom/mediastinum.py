"""Great vessels and central airways as tubes through the mediastinum.

Trachea, carina and main bronchi form an air tube that reaches the hila, where the
intrapulmonary bronchial tree starts, so that (as on real CT) air in the trachea is
connected to the lungs through the airways; a lung segmentation must cut it off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body import PatientShape
from .grid import Grid
from .tubes import draw_segments

KEEP_OUT_MM = 4.0
"""Tissue between a great vessel or bronchus and the lung (wall, fat, pleura)."""


@dataclass
class Hila:
    """Reference-frame roots of the intrapulmonary trees, per side (right, left)."""

    artery: tuple[np.ndarray, np.ndarray]
    vein: tuple[np.ndarray, np.ndarray]
    bronchus: tuple[np.ndarray, np.ndarray]


@dataclass
class MediastinalTubes:
    blood: np.ndarray  # (z, y, x) float32 fractions
    wall: np.ndarray
    lumen: np.ndarray
    keep_out: np.ndarray  # bool, dilated footprint the lungs must not enter


BRONCHUS_DIRECTION = np.array([0.0, 0.55, -0.85]) / np.linalg.norm([0.0, 0.55, -0.85])
"""Bronchi run just posterior and inferior of their artery."""
ARTERY_ROOT_RADIUS = 6.0
"""Lobar artery radius (reference mm) where the intrapulmonary tree starts."""
VEIN_ROOT_RADIUS = 5.5
AIRWAY_RADIUS_RATIO = 0.85
"""Bronchus lumen radius / companion artery radius (the normal bronchoarterial ratio is ~0.65-1)."""
AIRWAY_GAP = 1.0


def hila(p: PatientShape) -> Hila:
    ty, zc = p.trachea_y, p.carina
    hx = 0.62 * p.lung_x
    artery = (np.array([-hx, ty - 4, zc - 14]), np.array([hx, ty - 2, zc - 8]))
    vein = (np.array([-hx + 3, ty + 6, zc - 52]), np.array([hx - 3, ty + 8, zc - 56]))
    shift = ARTERY_ROOT_RADIUS * (1 + AIRWAY_RADIUS_RATIO) + AIRWAY_GAP
    bronchus = tuple(a + shift * BRONCHUS_DIRECTION for a in artery)
    return Hila(artery=artery, vein=vein, bronchus=bronchus)


def _polylines(p: PatientShape) -> tuple[list, list]:
    """(blood tubes, airway tubes) as lists of (points (k,3) ref mm, radius ref mm)."""
    h = hila(p)
    hx, hy, hz = p.heart_centre
    ty, zc, sy = p.trachea_y, p.carina, p.spine_y
    blood = [
        # ascending aorta, arch, descending aorta
        (np.array([[hx - 16, hy - 5, hz + 25], [-4, ty - 24, zc + 30], [6, ty - 4, zc + 46],
                   [20, sy - 24, zc + 28], [17, sy - 22, -200]]), 13.0),
        # superior vena cava
        (np.array([[-24, ty - 18, 200], [-22, hy - 2, hz + 30]]), 9.0),
        # pulmonary trunk and its branches to the hila
        (np.array([[hx - 2, hy - 18, hz + 30], [4, ty - 16, zc - 6]]), 12.0),
        (np.array([[4, ty - 16, zc - 6], h.artery[0]]), 9.0),
        (np.array([[4, ty - 16, zc - 6], h.artery[1]]), 9.0),
        # pulmonary veins to the left atrium (posterior heart)
        (np.array([h.vein[0], [hx - 14, hy + 26, hz + 12]]), 7.0),
        (np.array([h.vein[1], [hx - 2, hy + 26, hz + 10]]), 7.0),
    ]
    air = [
        (np.array([[0, ty - 6, 200], [0, ty, zc]]), 8.5),
        (np.array([[0, ty, zc], h.bronchus[0]]), 6.5),
        (np.array([[0, ty, zc], h.bronchus[1]]), 6.0),
    ]
    return blood, air


def draw_mediastinal_tubes(grid: Grid, p: PatientShape) -> MediastinalTubes:
    blood_tubes, air_tubes = _polylines(p)
    k = float(grid.scale[:2].mean())
    blood = np.zeros(grid.shape, np.float32)
    wall = np.zeros(grid.shape, np.float32)
    lumen = np.zeros(grid.shape, np.float32)
    keep = np.zeros(grid.shape, np.float32)

    def draw(out, tubes, extra):
        for pts, r in tubes:
            phys = grid.ref_to_phys(pts)
            draw_segments(grid, out, phys[:-1], phys[1:], (r + extra) * k)

    draw(blood, blood_tubes, 0.0)
    draw(wall, air_tubes, 2.0)
    draw(lumen, air_tubes, 0.0)
    draw(keep, blood_tubes, KEEP_OUT_MM)
    draw(keep, air_tubes, 2.0 + KEEP_OUT_MM)
    return MediastinalTubes(blood=blood, wall=wall, lumen=lumen, keep_out=keep > 0.5)
