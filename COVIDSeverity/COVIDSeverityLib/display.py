"""How severity results look: one colour ramp for probabilities and zone scores, zone names, cell colours."""

from __future__ import annotations

import numpy as np

from covidweak.zones import LUNG_NAMES, ZONE_NAMES

RAMP = ((0.0, (0.18, 0.62, 0.30)), (0.5, (0.97, 0.80, 0.20)), (1.0, (0.85, 0.12, 0.10)))
"""Green (no finding) through amber to red (certain finding / maximal zone score)."""
COLOR_TABLE_TAG = "COVIDSeverityProbability"
COLOR_TABLE_NAME = "COVIDSeverity probability"
OVERLAY_LOWER = 0.05
"""Below this the CXR probability overlay is transparent, so the radiograph stays readable."""
ZONE_LINE_COLOR = (0.10, 0.85, 0.95)
CT_ZONE_SCORE_MAX = 5
"""Per-zone CT score range 0-5 (ct_severity.json), scaled onto the colour ramp."""
SLICE_SERIES = (("p_covid", "COVID-19", (0.85, 0.12, 0.10)), ("p_cap", "CAP", (0.95, 0.60, 0.10)),
                ("p_normal", "normal", (0.20, 0.55, 0.85)))
"""Columns of slices.csv drawn in the per-slice plot: column, legend, colour."""


def zone_names() -> dict[int, str]:
    """Label 1..6 of a zone map -> segment name, in the label order of zones.nii.gz."""
    return {1 + 3 * col + row: f"{lung.capitalize()} {zone} zone"
            for col, lung in enumerate(LUNG_NAMES) for row, zone in enumerate(ZONE_NAMES)}


def zone_colors(values: np.ndarray) -> dict[int, tuple[float, float, float]]:
    """Segment colour per zone label from (3, 2) values in 0..1 (rows upper..lower, columns right/left)."""
    from covidweak.slicer.outputs import ramp_color

    values = np.asarray(values, dtype=float)
    return {1 + 3 * col + row: ramp_color(values[row, col], RAMP) for col in range(2) for row in range(3)}


def ct_zone_scores(report: dict) -> np.ndarray:
    """(3, 2) zone scores 0-5 of ct_severity.json, rows upper..lower, columns right/left."""
    scores = np.zeros((3, 2))
    for entry in report["zones"]:
        scores[ZONE_NAMES.index(entry["zone"]), LUNG_NAMES.index(entry["lung"])] = float(entry["score"])
    return scores


def cell_colors(probability: np.ndarray) -> list[list[str]]:
    """Hex background colour ("#rrggbb") of each cell of the 3x2 array, for the panel's coloured table."""
    from covidweak.slicer.outputs import ramp_color

    def hex_color(value: float) -> str:
        return "#" + "".join(f"{round(255 * c):02x}" for c in ramp_color(value, RAMP))

    return [[hex_color(value) for value in row] for row in np.asarray(probability, dtype=float)]
