"""Phantom settings and the case patterns it can draw."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

PATTERNS = ("covid", "cap", "normal")
GENERATOR_VERSION = "1.2"
"""1.1: radiograph severity labels count visible opacities only (``drr.visible_opacity``).
1.2: each COVID-19 patient's lung involvement is drawn from MosMedData's CT categories
(``burden``), so a seed gives other COVID-19 lesions than under 1.1; anatomy, CAP and
normal studies are unchanged."""
MIN_SIZE, MAX_SIZE = 64, 1024
MIN_SLICES, MAX_SLICES = 16, 512
MIN_LESION_SCALE, MAX_LESION_SCALE = 0.25, 4.0


@dataclass
class PhantomConfig:
    """Voxel grid of every study: ``size`` x ``size`` in-plane, ``slices`` axial slices,
    ``spacing`` (x, y, z) mm. The anatomy scales with the field of view.

    ``lesion_scale`` multiplies every lesion's radii (and how far from the pleura COVID-19
    lesions may sit), for COVID-19 after the lesions were planned to reach the patient's
    involvement target (``burden``: MosMedData's mix of CT categories at 1). Values above 1
    exaggerate the burden, as a learnability probe does to tell "the method cannot learn"
    from "the lesions are too small to see" (docs/status.md).
    """

    size: int = 256
    slices: int = 64
    spacing: tuple[float, float, float] = (1.4, 1.4, 5.0)
    lesion_scale: float = 1.0

    def validate(self) -> None:
        if not MIN_SIZE <= int(self.size) <= MAX_SIZE:
            raise InputError(f"phantom size {self.size} is out of range; use {MIN_SIZE}-{MAX_SIZE} pixels")
        if not MIN_SLICES <= int(self.slices) <= MAX_SLICES:
            raise InputError(f"phantom slices {self.slices} is out of range; use {MIN_SLICES}-{MAX_SLICES}")
        spacing = tuple(self.spacing)
        if len(spacing) != 3 or not all(0.2 <= float(s) <= 10.0 for s in spacing):
            raise InputError(f"phantom spacing {spacing} is invalid; give three values (x, y, z) between 0.2 and 10 mm")
        if not MIN_LESION_SCALE <= float(self.lesion_scale) <= MAX_LESION_SCALE:
            raise InputError(f"phantom lesion scale {self.lesion_scale} is out of range; use {MIN_LESION_SCALE}-{MAX_LESION_SCALE}")


def check_pattern(pattern: str) -> str:
    if pattern not in PATTERNS:
        raise InputError(f"unknown phantom pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
    return pattern
