"""Intrapulmonary arteries, veins and bronchi, returned as sparse overlays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import tissues as T
from .body import PatientShape
from .grid import Grid
from .mediastinum import (AIRWAY_GAP, AIRWAY_RADIUS_RATIO, ARTERY_ROOT_RADIUS, BRONCHUS_DIRECTION,
                          VEIN_ROOT_RADIUS, hila)
from .trees import Tree, grow_tree
from .tubes import draw_segments

TERRITORY_POINTS = 320
"""Sample points per lung and tree; about as many branches, ending ~1-2 cm from the pleura."""
MIN_VISIBLE_LUMEN_VOXELS = 0.7
"""Bronchi narrower than this many in-plane voxels have no resolvable lumen on CT."""


@dataclass
class Overlay:
    """Sparse partial-volume layer: voxel ``flat`` indices of the (z, y, x) grid, their
    fraction of this tissue, its HU and tissue code."""

    flat: np.ndarray
    frac: np.ndarray
    hu: float
    tissue: int

    def apply(self, hu: np.ndarray, tissue: np.ndarray) -> None:
        """Blend into ``hu`` in place and label voxels that are mostly this tissue."""
        flat_hu = hu.reshape(-1)
        flat_hu[self.flat] += self.frac * (self.hu - flat_hu[self.flat])
        tissue.reshape(-1)[self.flat[self.frac >= 0.5]] = self.tissue


def _territory(rng: np.random.Generator, grid: Grid, lungs: np.ndarray, label: int) -> np.ndarray:
    """(TERRITORY_POINTS, 3) random physical points inside lung ``label``."""
    flat = np.flatnonzero(lungs.reshape(-1) == label)
    pick = rng.choice(flat, size=min(TERRITORY_POINTS, len(flat)), replace=False)
    index = np.stack(np.unravel_index(pick, lungs.shape), axis=1).astype(np.float64)
    index += rng.uniform(-0.5, 0.5, index.shape)
    return grid.index_to_phys(index)


def draw_pulmonary_trees(rng: np.random.Generator, grid: Grid, p: PatientShape, lungs: np.ndarray,
                         allowed: np.ndarray) -> list[Overlay]:
    """Grow artery, vein and bronchial trees in both lungs and rasterise them.

    ``allowed`` (bool, z y x): where the trees may be drawn (lungs and hilar keep-out
    zone), so a branch cutting a corner of a concave lung does not paint the heart.
    """
    k = float(grid.scale[:2].mean())
    h = hila(p)
    vessels = np.zeros(grid.shape, np.float32)
    walls = np.zeros(grid.shape, np.float32)
    lumens = np.zeros(grid.shape, np.float32)
    min_lumen = MIN_VISIBLE_LUMEN_VOXELS * min(grid.spacing[:2])
    for side, label in ((0, 1), (1, 2)):
        arteries = grow_tree(rng, grid.ref_to_phys(h.artery[side]), _territory(rng, grid, lungs, label),
                             ARTERY_ROOT_RADIUS * k)
        veins = grow_tree(rng, grid.ref_to_phys(h.vein[side]), _territory(rng, grid, lungs, label),
                          VEIN_ROOT_RADIUS * k)
        airways: Tree = arteries.offset(BRONCHUS_DIRECTION, AIRWAY_GAP * k, AIRWAY_RADIUS_RATIO)
        for tree in (arteries, veins):
            draw_segments(grid, vessels, *tree.segments())
        p0, p1, r = airways.segments(min_radius=min_lumen)
        draw_segments(grid, walls, p0, p1, r * 1.25 + 0.4 * k)
        draw_segments(grid, lumens, p0, p1, r)
    out = []
    for frac, hu, code in ((vessels, T.HU_BLOOD, T.VESSEL), (walls, T.HU_MUSCLE, T.AIRWAY_WALL),
                           (lumens, T.HU_AIRWAY_LUMEN, T.AIRWAY_LUMEN)):
        flat = np.flatnonzero((frac.reshape(-1) > 0.02) & allowed.reshape(-1))
        out.append(Overlay(flat=flat, frac=frac.reshape(-1)[flat], hu=hu, tissue=code))
    return out
