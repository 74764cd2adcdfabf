"""The voxel grid of a phantom study and the anatomical reference frame it is drawn in.

Anatomy is designed in a *reference frame* in millimetres for the default field of
view (256 x 1.4 mm in-plane, 64 x 5 mm cranio-caudal). A study with another size or
spacing draws the same anatomy scaled to its field of view, as a CT technologist
sets the field of view and scan range to fit the chest; lesion volumes and all
geometry written to disk are in true physical millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REF_HALF_WIDTH_MM = 179.2
"""Half the default in-plane field of view (256 x 1.4 mm / 2)."""
REF_HALF_HEIGHT_MM = 160.0
"""Half the default scan range (64 x 5 mm / 2)."""


@dataclass(frozen=True)
class Grid:
    """Voxel geometry: identity direction (LPS), volume centred on the origin.

    Arrays on this grid are indexed (z, y, x): +x = patient left, +y = posterior,
    +z = superior.
    """

    size: int
    slices: int
    spacing: tuple[float, float, float]  # (x, y, z) mm

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.slices, self.size, self.size)

    @property
    def origin(self) -> tuple[float, float, float]:
        """Physical LPS position (mm) of voxel index (0, 0, 0)."""
        sx, sy, sz = self.spacing
        return (-(self.size - 1) / 2 * sx, -(self.size - 1) / 2 * sy, -(self.slices - 1) / 2 * sz)

    @property
    def scale(self) -> np.ndarray:
        """Physical mm per reference mm along (x, y, z)."""
        sx, sy, sz = self.spacing
        return np.array(
            [self.size * sx / (2 * REF_HALF_WIDTH_MM), self.size * sy / (2 * REF_HALF_WIDTH_MM),
             self.slices * sz / (2 * REF_HALF_HEIGHT_MM)]
        )

    @property
    def voxel_ml(self) -> float:
        sx, sy, sz = self.spacing
        return sx * sy * sz / 1000.0

    def axes_phys(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Physical coordinates (mm) as broadcastable float32 arrays X (1,1,nx), Y (1,ny,1), Z (nz,1,1)."""
        ox, oy, oz = self.origin
        sx, sy, sz = self.spacing
        x = (ox + sx * np.arange(self.size, dtype=np.float32)).reshape(1, 1, -1)
        y = (oy + sy * np.arange(self.size, dtype=np.float32)).reshape(1, -1, 1)
        z = (oz + sz * np.arange(self.slices, dtype=np.float32)).reshape(-1, 1, 1)
        return x, y, z

    def axes_ref(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reference-frame coordinates (mm), shaped like :meth:`axes_phys`."""
        x, y, z = self.axes_phys()
        kx, ky, kz = self.scale.astype(np.float32)
        return x / kx, y / ky, z / kz

    def ref_to_phys(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) reference (x, y, z) mm -> physical mm."""
        return np.asarray(points, dtype=np.float64) * self.scale

    def phys_to_index(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) physical (x, y, z) mm -> continuous array index (..., 3) ordered (z, y, x)."""
        rel = (np.asarray(points, dtype=np.float64) - np.array(self.origin)) / np.array(self.spacing)
        return rel[..., ::-1]

    def index_to_phys(self, index: np.ndarray) -> np.ndarray:
        """(..., 3) array index (z, y, x) -> physical (x, y, z) mm."""
        idx = np.asarray(index, dtype=np.float64)[..., ::-1]
        return idx * np.array(self.spacing) + np.array(self.origin)
