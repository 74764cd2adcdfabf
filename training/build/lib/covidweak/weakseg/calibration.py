"""How a weak-seg network's logit map becomes the lesion probability that T_fg thresholds.

Three inference settings, all chosen on validation patients after training and stored in the
weight file's ``preprocess`` (``covidweak export --hu-floor --t-fg-from``); a file without them
reads its map unchanged.

* ``lesion_hu_floor``: the attenuation gate. Every lesion type the papers segment (ground glass,
  crazy paving, consolidation) is lung of *raised* attenuation, so a lung voxel at or below the
  attenuation of aerated parenchyma gets probability 0 whatever the map says. The network says
  where lesions are; the gate stops its stride-4 map, upsampled to the CT grid, from painting the
  aerated lung around them. This is our addition, not part of M-SEAM-NAM: the paper reads maps at
  448 x 448 from a ResNet-38 pre-trained on ImageNet and says nothing about attenuation. Table 1 is
  reported with and without it.
* ``logit_offset``: a constant added to every logit before the sigmoid. Noisy-OR pooling only asks
  one pixel of a lesion slice to be confident, so the edge of a lesion sits at a pixel probability
  far below the paper's T_fg = 0.1 (about 2e-4 for the box CAM). The offset is chosen so that the
  threshold chosen on validation patients reads as T_fg = 0.1 (:func:`operating_offset`); the order
  of the pixels, and so every Dice of a threshold sweep, is unchanged, and the T_fg slider's range
  (0.01 steps) reaches the operating point.
* ``min_lesion_ml``: the size gate. A connected region of the map above T_fg smaller than this
  volume gets probability 0, so a few stray voxels do not turn a normal patient positive (Table 1's
  negative Dice is 0 for one voxel). The M-SEAM-NAM paper has no such step; its issue allows "a
  minimum lesion size ... chosen on validation", and :func:`chosen_min_lesion_ml` chooses it on
  the validation sweep of :data:`MIN_LESION_SWEEP_ML`. It acts on the map, not on the mask, so
  moving T_fg stays a plain threshold (the display update needs no connected components).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

LESION_HU_FLOOR = -700.0
"""Attenuation gate of the shipped box files (HU): a lung voxel at or below it is not lesion.

Aerated parenchyma lies at about -950 to -750 HU and ground-glass opacity starts near -700 HU
(the phantom's normal lung: 5th-95th percentile -906 to -550 HU, median -855, vessels included;
its GGO -714 to -340). Chosen on the 30 validation patients of scripts/weakseg_box.sh among -800,
-750, -700 and -650: best for the box CAM (positive Dice 0.835 at -700, 0.831 at -650), within
0.016 of the best for M-SEAM-NAM (0.754 at -650)."""

MIN_LESION_SWEEP_ML = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
"""Minimum lesion volumes (mL) scored on validation patients. The sweep stops at 0.5 mL, a sphere
about 10 mm across, on purpose: a larger gate would hide lesions a radiologist reports. The
phantom's lesions run from 0.06 mL up (6.8 % of the 575 lesions of scripts/weakseg_box.sh's
training and test cohorts are under 0.5 mL, 1.6 % under 0.2 mL); a predicted region is usually
larger than the lesion under it, so the gate drops fewer lesions than that."""
SIZE_DICE_TOLERANCE = 0.005
"""A larger minimum size is chosen while its validation Dice (all patients) stays within this of
the best: at equal Dice a clean normal patient is worth more than a lesion speck."""

HU_FLOOR_RANGE = (-1000.0, 0.0)
"""A floor outside air .. water would gate away either nothing or every lesion."""


def settings_of(preprocess: dict | None) -> dict:
    """The three inference settings of a weight file's ``preprocess``, None where it has none."""
    return {key: (preprocess or {}).get(key) for key in ("lesion_hu_floor", "logit_offset", "min_lesion_ml")}


def attenuation_gate(probability: np.ndarray, hu: np.ndarray, floor: float | None) -> np.ndarray:
    """``probability`` with every voxel at or below ``floor`` HU set to 0; unchanged when floor is None.

    probability, hu: arrays of one shape (e.g. (B, Y, X) slices). Returns float32 of that shape.
    """
    probability = np.asarray(probability, dtype=np.float32)
    if floor is None:
        return probability
    return np.where(np.asarray(hu) > floor, probability, np.float32(0.0)).astype(np.float32, copy=False)


def size_gate(probability: np.ndarray, spacing_zyx: tuple[float, float, float], min_ml: float | None,
              t: float) -> np.ndarray:
    """``probability`` with each 6-connected region of ``probability > t`` under ``min_ml`` mL set to 0.

    probability: (Z, Y, X); spacing_zyx: voxel size in mm. Returns float32 (Z, Y, X); unchanged
    when min_ml is None or 0. Only voxels above ``t`` are zeroed: a speck's low-probability rim
    stays, so a user who lowers T_fg below ``t`` sees it again as what it is, a faint region.
    """
    from scipy import ndimage as ndi

    check_min_lesion_ml(min_ml)
    probability = np.asarray(probability, dtype=np.float32)
    if not min_ml:
        return probability
    above = probability > t
    if not above.any():
        return probability
    # Label only the box around the regions (the lungs' part of a 512 x 512 x 300 CT): a third of the time.
    box = ndi.find_objects(above.astype(np.uint8))[0]
    labels, count = ndi.label(above[box])
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    small = np.bincount(labels.ravel(), minlength=count + 1) * voxel_ml < min_ml
    small[0] = False
    out = probability.copy()
    out[box][small[labels]] = 0.0
    return out


def check_min_lesion_ml(min_ml: float | None) -> None:
    """Refuse a negative or non-finite minimum lesion volume (None or 0: no size gate)."""
    if min_ml is not None and not (isinstance(min_ml, (int, float)) and math.isfinite(min_ml) and min_ml >= 0):
        raise InputError(f"minimum lesion volume {min_ml} mL must be a finite number >= 0, e.g. 0.1")


def check_hu_floor(floor: float | None) -> None:
    """Refuse a floor outside :data:`HU_FLOOR_RANGE` (None, no gate, is fine)."""
    if floor is None:
        return
    low, high = HU_FLOOR_RANGE
    if not (isinstance(floor, (int, float)) and math.isfinite(floor) and low <= floor <= high):
        raise InputError(f"lesion HU floor {floor} is outside {low:g}..{high:g} HU: give the attenuation of aerated "
                         f"lung, e.g. {LESION_HU_FLOOR:g}")


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def operating_offset(chosen_t: float, target_t: float) -> float:
    """The logit offset that moves threshold ``chosen_t`` of a map to ``target_t``.

    sigmoid(z + offset) > target_t exactly where sigmoid(z) > chosen_t. Both in (0, 1).
    """
    for name, value in (("chosen", chosen_t), ("target", target_t)):
        if not 0.0 < value < 1.0:
            raise InputError(f"the {name} threshold {value} must lie strictly between 0 and 1")
    return logit(target_t) - logit(chosen_t)


def offset_from_validation(report: dict, method: str, hu_floor: float | None) -> float:
    """``logit_offset`` that makes the T_fg chosen in a validation report read as the paper's T_fg.

    report: a ``covidweak evaluate weakseg --split val`` report (its sweep gives the threshold,
    :func:`covidweak.weakseg.evaluate.chosen_t_fg`); its entry records the floor and offset of the
    weights it scored, and the new offset adds to that one. Refused when the report was scored
    with another ``hu_floor`` than the file being written, since the best threshold depends on it.
    """
    from .evaluate import chosen_t_fg
    from .infer import T_FG

    chosen = chosen_t_fg(report, method)
    entry = next(e for e in report["methods"].values() if e.get("method") == method)
    scored_floor = entry.get("lesion_hu_floor")
    if scored_floor != hu_floor:
        raise InputError(f"the validation report scored {method} with lesion HU floor {scored_floor}, but the file gets "
                         f"{hu_floor}: evaluate weights with this floor on the validation patients first")
    scored_offset = entry.get("logit_offset") or 0.0  # None: the scored weights had no offset
    return float(scored_offset) + operating_offset(chosen, T_FG)


def chosen_min_lesion_ml(report: dict, method: str) -> float:
    """The minimum lesion volume (mL) of ``method``'s size sweep in a validation report.

    The sweep is scored at the threshold the report chooses (``size_sweep.t_fg``), the one the
    offset moves to T_fg, so the gate acts at the operating point it was chosen at. Returns the
    largest size whose mean Dice over all patients is within :data:`SIZE_DICE_TOLERANCE` of the
    best size's; never below the scored weights' own size gate, which was already applied.
    """
    entry = next((e for e in report.get("methods", {}).values() if e.get("method") == method), None)
    if entry is None or not (entry.get("size_sweep") or {}).get("rows"):
        raise InputError(f"the validation report has no minimum-lesion-size sweep for {method}: re-run "
                         f"`covidweak evaluate weakseg --split val` with this version of covidweak")
    rows = entry["size_sweep"]["rows"]
    best = max(row["all"]["dice"]["mean"] or 0.0 for row in rows)
    size = max(row["min_lesion_ml"] for row in rows if (row["all"]["dice"]["mean"] or 0.0) >= best - SIZE_DICE_TOLERANCE)
    return max(float(size), float(entry.get("min_lesion_ml") or 0.0))
