"""Per-patient body habitus: the handful of sizes that make patients differ.

All values are in the reference frame (mm, see :mod:`.grid`). Ranges are chosen
around adult chest CT: a chest 300-340 mm wide and 200-240 mm deep, lungs about
230 mm tall, right hemidiaphragm 1-2 cm above the left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PatientShape:
    exponent: float  # superellipse exponent of the body outline (>2: flatter back and sides)
    body_a: float  # body half width
    body_b: float  # body half depth
    body_yc: float
    fat: float  # subcutaneous fat thickness
    cav_a: float  # thoracic cavity half width (inside the ribs)
    cav_b: float
    cav_yc: float
    rib_period: float
    rib_phase: float
    rib_width: float
    lung_x: float  # lung centre distance from the midline
    lung_y: float
    lung_rx: float
    lung_ry: float
    lung_top: float  # apex height
    apex_base: float  # height where the apex starts to taper
    dome_right: float
    dome_left: float
    dome_height: float
    heart_centre: tuple[float, float, float]
    heart_radii: tuple[float, float, float]
    heart_angle: float
    spine_y: float
    mediastinum_y: float
    trachea_y: float
    carina: float


def draw_patient_shape(rng: np.random.Generator) -> PatientShape:
    """Draw one patient's habitus."""
    body_a = rng.uniform(148, 168)
    body_b = rng.uniform(100, 118)
    body_yc = rng.uniform(2, 8)
    fat = rng.uniform(5, 20)
    cav_a = body_a - 2 - fat - 17
    cav_b = body_b - 2 - fat - 24
    cav_yc = body_yc - 7
    lung_top = rng.uniform(118, 138)
    dome_right = rng.uniform(-98, -84)
    dome_left = dome_right - rng.uniform(10, 20)
    dome_height = rng.uniform(22, 32)
    spine_y = cav_yc + cav_b - 10
    heart_z = dome_left + dome_height + 32
    return PatientShape(
        exponent=rng.uniform(2.2, 2.6),
        body_a=body_a,
        body_b=body_b,
        body_yc=body_yc,
        fat=fat,
        cav_a=cav_a,
        cav_b=cav_b,
        cav_yc=cav_yc,
        rib_period=rng.uniform(25, 29),
        rib_phase=rng.uniform(0, 1),
        rib_width=rng.uniform(9, 11),
        lung_x=0.5 * cav_a,
        lung_y=cav_yc + 0.08 * cav_b,
        lung_rx=0.7 * cav_a,
        lung_ry=1.1 * cav_b,
        lung_top=lung_top,
        apex_base=lung_top - rng.uniform(45, 60),
        dome_right=dome_right,
        dome_left=dome_left,
        dome_height=dome_height,
        heart_centre=(0.2 * cav_a, cav_yc - 0.25 * cav_b, heart_z),
        heart_radii=(rng.uniform(0.38, 0.46) * cav_a, rng.uniform(0.45, 0.52) * cav_b, rng.uniform(44, 54)),
        heart_angle=np.deg2rad(rng.uniform(25, 40)),
        spine_y=spine_y,
        mediastinum_y=spine_y - 45,
        trachea_y=spine_y - 40,
        carina=lung_top - rng.uniform(85, 100),
    )
