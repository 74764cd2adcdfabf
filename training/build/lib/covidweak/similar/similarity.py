"""A ground-truth similarity between two cases from their lesion tables, and graded ranking scores.

DuCN's own retrieval positive is "another slice of the same patient", which rewards anatomy; its
conclusion asks instead that patients with similar lesions count as similar cases. On the phantom
every study's meta.json lists its lesions (type, lung, zone, volume), so that notion can be
measured. A case's lesions are summarised three ways, and the similarity of two cases is the mean
of three agreements, each in [0, 1]:

* **type mix**: the share of lesion volume that is ground glass, crazy paving and consolidation;
  agreement 1 - half the L1 distance of the two shares (1 for the same mix, 0 for disjoint types);
* **zones**: the share of lesion volume in each of the six lung zones (right/left x
  upper/middle/lower), compared the same way;
* **burden**: the total lesion volume, agreement exp(-|ln(1 + V_a) - ln(1 + V_b)|) with V in mL
  (0.5 when one case has about twice the other's volume plus 1 mL, 1 when equal).

Two lesion-free cases are identical (similarity 1); a lesion-free case and a case with lesions
have no type or zone in common and similarity exp(-ln(1 + V)) / 3 from the burden alone. The
diagnosis label is left out on purpose: the point is to retrieve cases that look alike, and
the phantom's COVID-19 and CAP lesions differ in type mix and zones already.

A case counts as *relevant* to a query for precision@k when the similarity reaches
:data:`RELEVANT_SIMILARITY`; nDCG@k uses the similarity itself as the graded gain.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

TYPES = ("ground glass", "crazy paving", "consolidation")
ZONES = tuple(f"{lung} {zone}" for lung in ("right", "left") for zone in ("upper", "middle", "lower"))
RELEVANT_SIMILARITY = 0.5
"""Similarity at which a retrieved case counts as a hit for precision@k (a halfway agreement)."""


def lesion_profile(lesions: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, float]:
    """A phantom lesion table -> (type shares (3,), zone shares (6,), total volume in mL).

    lesions: meta.json entries with ``type`` (1 ground glass, 2 crazy paving, 3 consolidation),
    ``lung``, ``zone`` and ``volume_ml``. Shares are all zero for a case without lesions.
    """
    types, zones = np.zeros(len(TYPES)), np.zeros(len(ZONES))
    for lesion in lesions:
        volume = float(lesion["volume_ml"])
        types[int(lesion["type"]) - 1] += volume
        zones[ZONES.index(f"{lesion['lung']} {lesion['zone']}")] += volume
    total = float(types.sum())
    if total > 0:
        types, zones = types / total, zones / total
    return types, zones, total


def case_similarity(a: Sequence[dict], b: Sequence[dict]) -> float:
    """Similarity in [0, 1] of two cases given their lesion tables (see the module docstring)."""
    (types_a, zones_a, volume_a), (types_b, zones_b, volume_b) = lesion_profile(a), lesion_profile(b)
    if volume_a == 0 and volume_b == 0:
        return 1.0
    burden = float(np.exp(-abs(np.log1p(volume_a) - np.log1p(volume_b))))
    mix = 1.0 - 0.5 * float(np.abs(types_a - types_b).sum())
    where = 1.0 - 0.5 * float(np.abs(zones_a - zones_b).sum())
    if volume_a == 0 or volume_b == 0:
        mix = where = 0.0
    return (mix + where + burden) / 3.0


def ndcg_at_k(ranked_gains: Sequence[float], k: int) -> float:
    """Normalised discounted cumulative gain of the first k of a ranking (scikit-learn's ``ndcg_score``).

    ranked_gains: the gain (here the similarity to the query) of every candidate in ranked order,
    the whole candidate list, so that the ideal ordering is known. DCG@k = sum_i g_i / log2(i + 1)
    for ranks i = 1..k, divided by the DCG@k of the gains sorted from high to low. NaN when every
    gain is 0 (no ranking can be judged), 1 for a single candidate.
    """
    from sklearn.metrics import ndcg_score

    gains = np.asarray(ranked_gains, dtype=float)
    if not gains.any():
        return float("nan")
    if gains.size == 1:  # ndcg_score needs two candidates; one is its own ideal order
        return 1.0
    # The ranking as scores: the first candidate scores highest.
    return float(ndcg_score(gains[None], -np.arange(gains.size, dtype=float)[None], k=k))


def describe_lesions(lesions: Sequence[dict]) -> str:
    """The terms of :func:`case_similarity` in words, for a results table: "no lesions", or e.g.
    "31 mL: ground glass 70 %, consolidation 30 %; right lower 55 %, left lower 45 %" (types and
    zones holding at least 10 % of the volume, largest first)."""
    types, zones, total = lesion_profile(lesions)
    if total == 0:
        return "no lesions"

    def shares(names, values) -> str:
        order = np.argsort(-values, kind="stable")
        return ", ".join(f"{names[i]} {100 * values[i]:.0f} %" for i in order if values[i] >= 0.1)

    return f"{total:.0f} mL: {shares(TYPES, types)}; {shares(ZONES, zones)}"
