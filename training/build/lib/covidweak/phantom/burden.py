"""How much of the lung a COVID-19 patient's lesions fill.

A hospital cohort is not the mildest end of the disease: the phantom draws each COVID-19
patient's burden class from MosMedData's published CT categories, then an involvement
target (lesion volume / lung volume of the baseline study) inside that class. The COVID-19
planner (``lesions.plan_covid``) adds lesions until a cheap estimate of the covered lung
reaches the target. CAP keeps its own plan (``lesions.plan_cap`` says why).
"""

from __future__ import annotations

import numpy as np

MOSMED_CT_COUNTS = {1: 684, 2: 125, 3: 45, 4: 2}
"""Studies per CT category in MosMedData (Morozov et al. 2020, "MosMedData: chest CT scans
with COVID-19 related findings", 1110 studies: CT-0 254, CT-1 684, CT-2 125, CT-3 45,
CT-4 2). CT-0 (no findings) is left out: the phantom's negatives are its normal patients.
Of the 856 positives: 79.9 %, 14.6 %, 5.3 %, 0.2 %."""
MOSMED_CT_SHARES = {k: v / sum(MOSMED_CT_COUNTS.values()) for k, v in MOSMED_CT_COUNTS.items()}
CT_BANDS = {1: (0.0, 0.25), 2: (0.25, 0.50), 3: (0.50, 0.75), 4: (0.75, 1.0)}
"""MosMedData's categories as fractions of the lung involved: CT-1 < 25 %, CT-2 25-50 %,
CT-3 50-75 %, CT-4 >= 75 %."""
MILDEST_INVOLVEMENT = 0.005
"""Lowest CT-1 target (0.5 % of the lung). CT-1 targets are log-uniform from here to 25 %:
mild disease is common, so half of CT-1 patients lie under 3.5 % and keep the few, small
lesions that make weak supervision hard."""
BAND_MARGIN = 0.02
"""Targets of CT-2..CT-4 keep this far inside their band, so the last lesion added to
reach a target rarely carries the study into the next category."""
MAX_TARGET = 0.85
"""CT-4 targets stop here: ellipsoidal patches cannot fill a lung completely."""


def involvement_category(fraction: float) -> int:
    """MosMedData's CT category (0-4) of a study with ``fraction`` of its lung involved."""
    if fraction <= 0:
        return 0
    return next((k for k, (lo, hi) in CT_BANDS.items() if fraction < hi), 4)


def draw_burden(rng: np.random.Generator) -> tuple[int, float]:
    """(CT category 1-4, target fraction of the lung involved at the baseline study)."""
    categories = sorted(MOSMED_CT_SHARES)
    category = int(rng.choice(categories, p=[MOSMED_CT_SHARES[k] for k in categories]))
    lo, hi = CT_BANDS[category]
    if category == 1:
        return category, float(np.exp(rng.uniform(np.log(MILDEST_INVOLVEMENT), np.log(hi - BAND_MARGIN))))
    return category, float(rng.uniform(lo + BAND_MARGIN, min(hi - BAND_MARGIN, MAX_TARGET)))
