"""Density statistics of a detected lesion, in HU: what a radiologist reads to tell GGO from consolidation.

Wu et al. cluster deep features alone (Sect. 3.2.3). On the phantom the three lesion types
differ first in density (GGO about -600 HU, crazy paving GGO under +380 HU septa, consolidation
about 0 HU), which a deep feature averaged over a component at 5.6 mm cells blurs with the
normal lung around it. So the box weights append four statistics of the CT itself, taken over
the component's lung pixels on the CT grid, to each lesion's feature:

1. the share of the component that is not aerated lung (HU above :data:`AERATED_MAX_HU`),
2. among those pixels, the share denser than :data:`GGO_MAX_HU` (consolidation, septa, vessels),
3. their mean HU / 1000 and
4. their standard deviation in HU / 1000 (crazy paving's septa make it high).

The bands follow quantitative lung CT practice: aerated lung up to about -750 HU, ground glass
(poorly aerated) -750 to -300 HU, consolidation above. Dividing by 1000 puts every statistic
in about [0, 1], the scale of a unit-norm deep feature, so neither block dominates k-means.
"""

from __future__ import annotations

import numpy as np

AERATED_MAX_HU = -750.0
"""Upper end of normally aerated lung (HU); denser pixels count as abnormal."""
GGO_MAX_HU = -300.0
"""Upper end of ground glass (HU); denser pixels are consolidation-like."""
HU_STATISTICS = ("abnormal_share", "dense_share", "abnormal_mean_hu", "abnormal_sd_hu")
"""Names of the columns :func:`hu_statistics` returns, in order."""
HU_SCALE = 1000.0
"""HU per unit in the two HU-valued statistics."""


def hu_statistics(hu: np.ndarray, regions: np.ndarray, lungs: np.ndarray, count: int) -> np.ndarray:
    """The :data:`HU_STATISTICS` of components 1..count of one slice.

    hu: (Y, X) HU; regions: (Y, X) int labels 1..count (a label may be absent: a component of the
    network's map can vanish when it is resampled onto the slice); lungs: (Y, X) nonzero = lung.
    Returns (count, 4) float32; a component without abnormal lung pixels gets zeros.
    """
    out = np.zeros((count, len(HU_STATISTICS)), dtype=np.float32)
    for j in range(count):
        values = hu[(regions == j + 1) & (lungs != 0)].astype(np.float64)
        abnormal = values[values > AERATED_MAX_HU]
        if values.size == 0 or abnormal.size == 0:
            continue
        out[j] = (abnormal.size / values.size, np.mean(abnormal > GGO_MAX_HU),
                  abnormal.mean() / HU_SCALE, abnormal.std() / HU_SCALE)
    return out
