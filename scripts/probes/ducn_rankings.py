"""How to rank whole studies from DuCN's per-slice embeddings, scored by lesion similarity.

DuCN compares images; a case library compares studies. This probe embeds every study of each cohort
once (cached as WORK/<cohort>.npz) and scores the study rankings of
:data:`covidweak.index.RANKINGS` (through a CaseIndex) and of :data:`CANDIDATES` by nDCG@5 / P@5 under
:func:`covidweak.similar.similarity.case_similarity`, other patients only, beside the true-volume
baseline of ``covidweak evaluate ducn``, with a paired bootstrap interval (over queries) of each
ranking's nDCG@5 minus that baseline's. Choose on a validation cohort, then read the test cohorts.

    python scripts/probes/ducn_rankings.py --weights ducn-light --cache WORK/emb VAL TEST ...
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from covidweak.datasets import open_dataset
from covidweak.index import RANKINGS, CaseIndex
from covidweak.index.search import pairwise_distances, squared_norms
from covidweak.io import read_ct, read_image
from covidweak.similar.embed import recommendation_embeddings
from covidweak.similar.evaluate import gain_scores, similarity_gains
from covidweak.similar.inputs import apply_ablation, study_inputs
from covidweak.similar.library import load_ducn
from covidweak.similar.similarity import lesion_profile, ndcg_at_k


def _pairs(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(n, d), (m, d) -> (n, m) Euclidean distances."""
    return pairwise_distances(q, v, squared_norms(v))


def _normalised_mean(v: np.ndarray) -> np.ndarray:
    mean = v.mean(0)
    return mean / max(np.linalg.norm(mean), 1e-12)


CANDIDATES = {
    # the case index's aggregate before format 2
    "normalised centroid": lambda q, v: float(np.linalg.norm(_normalised_mean(q) - _normalised_mean(v))),
    # every slice of each study matched to its nearest slice of the other, averaged both ways
    "chamfer": lambda q, v: 0.5 * (_pairs(q, v).min(1).mean() + _pairs(q, v).min(0).mean()),
    # the worst-matched tenth of slices, both ways: lesion slices without a counterpart dominate
    "chamfer_p90": lambda q, v: 0.5 * (np.quantile(_pairs(q, v).min(1), 0.9) + np.quantile(_pairs(q, v).min(0), 0.9)),
    "hausdorff": lambda q, v: max(_pairs(q, v).min(1).max(), _pairs(q, v).min(0).max()),
    "mean_pair": lambda q, v: _pairs(q, v).mean(),
    "chamfer_sq": lambda q, v: 0.5 * ((_pairs(q, v) ** 2).min(1).mean() + (_pairs(q, v) ** 2).min(0).mean()),
}
"""Study distances (query (n, d), library study (m, d) slice embeddings -> float) beside the index's own rankings."""


def per_query_ndcg5(gains: dict) -> dict:
    """{query: nDCG@5} from :func:`similarity_gains`, queries whose gains are not all 0."""
    values = {q: ndcg_at_k(ranked, 5) for q, ranked in gains.items()}
    return {q: v for q, v in values.items() if not np.isnan(v)}


def paired_interval(scores: dict, baseline: dict, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval, over queries, of the mean of scores minus baseline (shared queries)."""
    shared = sorted(set(scores) & set(baseline))
    differences = np.array([scores[q] - baseline[q] for q in shared])
    draws = np.random.default_rng(seed).integers(0, len(differences), size=(resamples, len(differences)))
    return tuple(float(v) for v in np.percentile(differences[draws].mean(axis=1), [2.5, 97.5]))


def index_rankings(vectors: dict, others: dict, sha256: str, folder: Path) -> dict:
    """{ranking of covidweak.index.RANKINGS: {query: other patients' studies, nearest first}}, from a CaseIndex."""
    index = CaseIndex.create(folder, sha256, dim=next(iter(vectors.values())).shape[1])
    index.add_studies([(dict(study_id=sid, patient_id=sid, diagnosis="unknown", source_path=sid), v, range(len(v)))
                       for sid, v in vectors.items()])
    out = {}
    for ranking in RANKINGS:
        out[ranking] = {}
        for query, candidates in others.items():
            allowed = set(candidates)
            found = [hit["study_id"] for hit in index.search_studies(vectors[query], len(index), ranking=ranking)]
            out[ranking][query] = [sid for sid in found if sid in allowed]
    return out


def embed_cohort(folder: Path, loaded, cache: Path) -> dict:
    """{study_id: (n, 128) vectors} of every study of ``folder``, from ``cache`` when it exists."""
    if cache.exists():
        stored = np.load(cache)
        return {key: stored[key] for key in stored.files}
    vectors = {}
    for record in open_dataset(folder):
        lungs = read_image(record.lung_mask_path) if record.lung_mask_path is not None else None
        inputs = study_inputs(read_ct(record.ct_path), lungs, loaded.preprocess)
        channels = apply_ablation(inputs.channels, loaded.preprocess.get("ablation", "none"))
        vectors[record.study_id] = recommendation_embeddings(loaded.model, channels)
        print(f"  embedded {record.study_id}: {len(channels)} slices", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **vectors)
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cohorts", nargs="+", type=Path)
    parser.add_argument("--weights", default="ducn-light")
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args()
    loaded, _ = load_ducn(args.weights, "cpu")
    print("| cohort | ranking | nDCG@5 | nDCG@10 | P@5 | nDCG@5 minus true volumes, 95 % interval |\n"
          "|---|---|---|---|---|---|")
    for folder in args.cohorts:
        records = {r.study_id: r for r in open_dataset(folder)}
        vectors = embed_cohort(folder, loaded, args.cache / f"{folder.name}-{loaded.sha256[:12]}.npz")
        lesions = {sid: r.extra["lesions"] for sid, r in records.items()}
        others = {q: [o for o in records if records[o].patient_id != records[q].patient_id] for q in records}
        volume = {sid: lesion_profile(table)[2] for sid, table in lesions.items()}
        rows = {"true volumes": {q: sorted(c, key=lambda o: abs(np.log1p(volume[q]) - np.log1p(volume[o])))
                                 for q, c in others.items()}}
        with tempfile.TemporaryDirectory() as scratch:
            rows.update(index_rankings(vectors, others, loaded.sha256, Path(scratch) / "index"))
        for name, distance in CANDIDATES.items():
            rows[name] = {q: sorted(c, key=lambda o: distance(vectors[q], vectors[o])) for q, c in others.items()}
        gains = {name: similarity_gains(ranked, lesions) for name, ranked in rows.items()}
        baseline = per_query_ndcg5(gains["true volumes"])
        for name in rows:
            s = gain_scores(gains[name])
            low, high = paired_interval(per_query_ndcg5(gains[name]), baseline)
            print(f"| {folder.name} | {name} | {s['ndcg_at_5']:.3f} | {s['ndcg_at_10']:.3f} | "
                  f"{s['precision_at_5']:.3f} | {low:+.3f} to {high:+.3f} |", flush=True)


if __name__ == "__main__":
    main()
