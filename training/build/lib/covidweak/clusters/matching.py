"""Clusters against known lesion types (Wu et al. Sect. 4.3.3, Table 7).

Clusters carry no names, so each type is matched to one cluster by the Hungarian method,
maximising the number of lesions on matched pairs (scipy's ``linear_sum_assignment``). With
more clusters than types the extra clusters stay unmatched: their lesions count as missed
for every type. Per matched type t, with its cluster c(t):

* sensitivity = lesions of type t in c(t) / lesions of type t (the usual TPR);
* specificity = lesions of other types outside c(t) / lesions of other types (1 - FPR);
* precision = lesions of type t in c(t) / lesions in c(t). Table 7's row labelled
  "Sensitivity" holds this column-wise ratio (e.g. GGO 51/54), so both are reported.
"""

from __future__ import annotations

import numpy as np


def confusion(types: np.ndarray, clusters: np.ndarray, n_types: int, k: int) -> np.ndarray:
    """(T, K) counts: row = true type 1..T (given 1-based), column = cluster 0..K-1."""
    table = np.zeros((n_types, k), dtype=np.int64)
    np.add.at(table, (np.asarray(types) - 1, np.asarray(clusters)), 1)
    return table


def match_clusters(table: np.ndarray) -> dict[int, int]:
    """Type row -> matched cluster column, maximising the matched counts (Hungarian method)."""
    from scipy.optimize import linear_sum_assignment

    rows, columns = linear_sum_assignment(table, maximize=True)
    return {int(r): int(c) for r, c in zip(rows, columns)}


def type_table(table: np.ndarray, type_names: list[str]) -> dict:
    """Table 7 of a (T, K) confusion: rows true types, columns the clusters matched to them in type order."""
    matched = match_clusters(table)
    total = table.sum()
    rows = []
    for t, name in enumerate(type_names):
        cluster = matched.get(t)
        positives = int(table[t].sum())
        negatives = int(total - positives)
        hit = int(table[t, cluster]) if cluster is not None else 0
        in_cluster = int(table[:, cluster].sum()) if cluster is not None else 0
        false_positive = in_cluster - hit
        rows.append({"type": name, "cluster": cluster,
                     "counts": [int(table[t, matched[u]]) if u in matched else 0 for u in range(len(type_names))],
                     "unmatched_clusters": int(table[t].sum() - sum(table[t, c] for c in matched.values())),
                     "lesions": positives,
                     "sensitivity": hit / positives if positives else None,
                     "specificity": (negatives - false_positive) / negatives if negatives else None,
                     "precision": hit / in_cluster if in_cluster else None})
    return {"types": list(type_names), "rows": rows, "lesions": int(total)}
