"""Evaluating a trained DuCN: Table 1's detection metrics and retrieval precision on held-out patients.

Detection (DuCN Table 1): sensitivity, specificity, precision, F1, accuracy and AUC of COVID-19
versus CAP and normal, per lung slice (the paper classifies images), per lung slice that shows
the disease (COVID-19 and CAP slices with a lesion where the dataset marks them, plus every slice
of normal studies: the lesion-free slices of a sick patient carry no sign of the disease) and per study
(:func:`~covidweak.similar.metrics.study_probability`), at probability 0.5.

Retrieval (the paper judges it by eye only, Sect. 3.2): every evaluated study is put in a
temporary :class:`~covidweak.index.CaseIndex`; every study queries it, its own entry is dropped
from the ranking, and the ranking (the index's default, study centroids) is scored against three
ground truths (the lesion similarity also for the best-slice-pair ranking):

* ``same_patient``: the patient's other studies (the paper's training notion of "similar");
* ``same_pattern``: studies of other patients whose (diagnosis, dominant lesion type, dominant
  lung zone) agree, the clinically motivated notion the paper's conclusion calls for; the
  query patient's own studies are left out of this ranking, since follow-ups share the pattern. Dominance is by lesion
  volume in the phantom's meta.json; a study without lesions has type and zone "none". Datasets
  without a lesion table get no pattern score;
* ``lesion_similarity``: the graded similarity of the two lesion tables
  (:mod:`covidweak.similar.similarity`), scored by nDCG@5 / @10 and precision@k over the other
  patients' studies, beside the ranking a lesion-volume-only baseline gives (the true total volumes,
  nearest first).

Precision@k counts relevant studies among the first k whatever their number, so with one
follow-up per patient same-patient precision@5 is at most 0.2; ``chance_precision`` is the
expected precision of a random ranking, for comparison.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from .metrics import average_precision, detection_metrics, precision_at_k, study_probability
from .similarity import RELEVANT_SIMILARITY, case_similarity, lesion_profile, ndcg_at_k

PRECISION_KS = (1, 3, 5)
NDCG_KS = (5, 10)
RANKING_NAMES = {"aggregate": "study centroids (the index's default)", "slice_pair": "best slice pair"}
"""How the lesion-similarity table names each of :data:`covidweak.index.RANKINGS`."""
PAPER_TABLE1 = {"sensitivity": 0.9985, "specificity": 0.9441, "precision": 0.9854, "f1": 0.9890,
                "accuracy": 0.9828, "auc": 0.9713}
"""DuCN Table 1, "Proposed" row, as fractions (CC-CCII, 30% of patients held out)."""


def lesion_pattern(record) -> Optional[tuple[str, str, str]]:
    """(diagnosis, dominant lesion type, dominant "lung zone") of a phantom study; None without a lesion table."""
    lesions = record.extra.get("lesions")
    if lesions is None:
        return None
    by_type, by_zone = defaultdict(float), defaultdict(float)
    for lesion in lesions:
        by_type[lesion["type_name"]] += float(lesion["volume_ml"])
        by_zone[f"{lesion['lung']} {lesion['zone']}"] += float(lesion["volume_ml"])
    if not by_type:
        return (record.diagnosis, "none", "none")
    return (record.diagnosis, max(by_type, key=by_type.get), max(by_zone, key=by_zone.get))


def select_test_records(records: list, weights: Optional[str], split_file: Optional[Path]) -> tuple[list, dict]:
    """The held-out studies: from a run's split.json, else re-drawn from the registry entry's seed and
    fractions (same dataset, same split), else every study (the report says which)."""
    from ..datasets import read_split, split_by_patient
    from ..models.weights import registry_entry
    from .library import DEFAULT_WEIGHTS

    if split_file is not None:
        chosen = read_split(split_file, records, allow_new=True)["test"]
        return chosen, {"split": "test", "from": str(split_file), "studies": len(chosen)}
    name = weights or DEFAULT_WEIGHTS
    if not Path(name).suffix and not Path(name).exists():
        config = registry_entry(name).get("config") or {}
        if "seed" in config and "data" in config:
            fractions = config["data"]["fractions"]
            chosen = split_by_patient(records, fractions, seed=int(config["seed"]))["test"]
            return chosen, {"split": "test", "seed": int(config["seed"]), "fractions": list(fractions),
                            "studies": len(chosen)}
    return list(records), {"split": "all", "reason": "no split known for these weights", "studies": len(records)}


def similarity_gains(rankings: dict[str, list[str]], lesions: dict[str, list]) -> dict[str, list[float]]:
    """Each query's ranked list as gains: {query: [case_similarity(query, each ranked study)]}.

    rankings: query study -> other patients' studies, most similar first; lesions: study -> lesion table.
    """
    return {query: [case_similarity(lesions[query], lesions[other]) for other in ranked]
            for query, ranked in rankings.items()}


def gain_scores(gains: dict[str, list[float]]) -> dict:
    """nDCG@k and precision@k (relevant at :data:`RELEVANT_SIMILARITY`) averaged over the queries of
    :func:`similarity_gains`; nDCG skips a query whose gains are all 0."""
    ndcg = {k: [] for k in NDCG_KS}
    precision = {k: [] for k in PRECISION_KS}
    for ranked in gains.values():
        for k in NDCG_KS:
            value = ndcg_at_k(ranked, k)
            if not np.isnan(value):
                ndcg[k].append(value)
        for k in PRECISION_KS:
            if k <= len(ranked):
                precision[k].append(precision_at_k([g >= RELEVANT_SIMILARITY for g in ranked], k))
    return {"queries": len(gains), **{f"ndcg_at_{k}": float(np.mean(v)) for k, v in ndcg.items() if v},
            **{f"precision_at_{k}": float(np.mean(v)) for k, v in precision.items() if v}}


def _ranking_scores(rankings: dict[str, list[str]], relevant_of) -> dict:
    """P@k, mAP and chance precision over queries with at least one relevant study.

    rankings: query study -> the other studies, most similar first; relevant_of(query, other) -> bool.
    precision@k averages the queries whose ranking holds at least k studies.
    """
    precision = {k: [] for k in PRECISION_KS}
    aps, chance = [], []
    for query, ranked in rankings.items():
        relevant = [relevant_of(query, other) for other in ranked]
        if not any(relevant):
            continue
        for k in precision:
            if k <= len(relevant):
                precision[k].append(precision_at_k(relevant, k))
        aps.append(average_precision(relevant))
        chance.append(sum(relevant) / len(relevant))
    if not aps:
        return {"queries": 0}
    return {"queries": len(aps), **{f"precision_at_{k}": float(np.mean(v)) for k, v in precision.items() if v},
            "map": float(np.mean(aps)), "chance_precision": float(np.mean(chance))}


def evaluate_ducn(data: Path, weights: Optional[str] = None, split_file: Optional[Path] = None, device: str = "auto",
                  batch_size: int = 16, progress=None) -> dict:
    """Detection and retrieval report of DuCN weights on a dataset (see the module docstring)."""
    from ..datasets import open_dataset
    from ..index import RANKINGS, CaseIndex
    from ..io import read_ct, read_image
    from ..weakseg.prepare import describe_input
    from .embed import covid_probabilities, recommendation_embeddings
    from .inputs import apply_ablation, study_inputs
    from .library import load_ducn, study_metadata

    loaded, device = load_ducn(weights, device)
    records, selection = select_test_records(open_dataset(data), weights, split_file)
    if len(records) < 2:
        raise InputError(f"only {len(records)} study selected from {data}: evaluation needs at least two")
    ablation = loaded.preprocess.get("ablation", "none")
    slice_truth, slice_p, study_truth, study_p, vectors, numbers = [], [], [], [], {}, {}
    shows_disease = []  # per slice: a lesion slice, or any slice of a normal study
    for done, record in enumerate(records):
        if progress is not None:
            progress.update(done, len(records), f"running DuCN on {record.study_id}")
        lungs = read_image(record.lung_mask_path) if record.lung_mask_path is not None else None
        inputs = study_inputs(read_ct(record.ct_path), lungs, loaded.preprocess)
        channels = apply_ablation(inputs.channels, ablation)
        p = covid_probabilities(loaded.model, channels, batch_size, device)
        truth = int(record.diagnosis == "covid")
        slice_truth.extend([truth] * len(p))
        slice_p.extend(p.tolist())
        flags = record.extra.get("slice_has_lesion")
        lesion = np.asarray(flags, bool)[inputs.slice_numbers] if flags is not None else np.ones(len(p), bool)
        shows_disease.extend((lesion | (record.diagnosis == "normal")).tolist())
        study_truth.append(truth)
        study_p.append(study_probability(p))
        vectors[record.study_id] = recommendation_embeddings(loaded.model, channels, batch_size, device)
        numbers[record.study_id] = inputs.slice_numbers
    if progress is not None:
        progress.update(len(records), len(records), "ranking")

    by_id = {r.study_id: r for r in records}
    by_ranking = {ranking: {} for ranking in RANKINGS}
    with tempfile.TemporaryDirectory(prefix="ducn-eval-") as folder:
        index = CaseIndex.create(Path(folder) / "index", loaded.sha256, dim=next(iter(vectors.values())).shape[1])
        index.add_studies([(study_metadata(by_id[sid]), vectors[sid], numbers[sid].tolist()) for sid in vectors])
        for ranking, ranked in by_ranking.items():
            for query in vectors:
                found = index.search_studies(vectors[query], len(index), ranking=ranking)
                ranked[query] = [hit["study_id"] for hit in found if hit["study_id"] != query]
    rankings = by_ranking[RANKINGS[0]]  # the index's default, what a user of `covidweak similar` gets

    patterns = {sid: lesion_pattern(r) for sid, r in by_id.items()}

    def same_patient(query: str, other: str) -> bool:
        return by_id[query].patient_id == by_id[other].patient_id

    # Studies without a follow-up have no same-patient answer; _ranking_scores skips them.
    retrieval = {"same_patient": _ranking_scores(rankings, same_patient)}
    similarity = {}
    if all(p is not None for p in patterns.values()):
        # Other patients only: a follow-up shares its patient's pattern and would make this the first score again.
        others_by = {r: {q: [o for o in ranked if not same_patient(q, o)] for q, ranked in by_ranking[r].items()}
                     for r in RANKINGS}
        others = others_by[RANKINGS[0]]
        retrieval["same_pattern"] = _ranking_scores(others, lambda q, o: patterns[q] == patterns[o])
        lesions = {sid: r.extra["lesions"] for sid, r in by_id.items()}
        volume = {sid: lesion_profile(table)[2] for sid, table in lesions.items()}
        by_volume = {q: sorted(ranked, key=lambda o: abs(np.log1p(volume[q]) - np.log1p(volume[o])))
                     for q, ranked in others.items()}
        named = {f"this model, {RANKING_NAMES[r]}": others_by[r] for r in RANKINGS}
        named["lesion volume only (true volumes)"] = by_volume
        similarity = {name: gain_scores(similarity_gains(ranked, lesions)) for name, ranked in named.items()}
    else:
        retrieval["same_pattern"] = {"queries": 0, "reason": "the dataset has no lesion table"}
    return {
        "model": {"name": str(weights or "ducn-light"), "sha256": loaded.sha256, "ablation": ablation,
                  "input": describe_input(loaded.preprocess)},
        "data": str(data), "selection": selection,
        "detection": {"slice": detection_metrics(slice_truth, slice_p),
                      "lesion_slice": detection_metrics(np.asarray(slice_truth)[shows_disease],
                                                        np.asarray(slice_p)[shows_disease]),
                      "study": detection_metrics(study_truth, study_p),
                      "slices": len(slice_truth), "studies": len(study_truth), "covid_studies": int(sum(study_truth))},
        "retrieval": retrieval,
        "lesion_similarity": similarity,
        "paper_table1_proposed": PAPER_TABLE1,
    }


def markdown_tables(report: dict) -> str:
    """Detection beside the paper's Table 1 and the retrieval scores, as Markdown."""
    keys = ("sensitivity", "specificity", "precision", "f1", "accuracy", "auc")
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    rows = [("DuCN paper (CC-CCII)", report["paper_table1_proposed"]),
            ("this model, per slice", report["detection"]["slice"]),
            ("this model, lesion slices (+ normal)", report["detection"]["lesion_slice"]),
            ("this model, per study", report["detection"]["study"])]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(f"{100 * values[k]:.2f}" for k in keys) + " |")
    lines += ["", "| ground truth | queries | P@1 | P@3 | P@5 | mAP | chance precision |", "|---|---|---|---|---|---|---|"]
    for name, scores in report["retrieval"].items():
        cells = [f"{scores[k]:.3f}" if k in scores else "-" for k in
                 ("precision_at_1", "precision_at_3", "precision_at_5", "map", "chance_precision")]
        lines.append(f"| {name} | {scores['queries']} | " + " | ".join(cells) + " |")
    if report.get("lesion_similarity"):
        lines += ["", f"| lesion similarity (other patients; hit: similarity >= {RELEVANT_SIMILARITY}) | queries | "
                      "nDCG@5 | nDCG@10 | P@1 | P@5 |", "|---|---|---|---|---|---|"]
        for name, scores in report["lesion_similarity"].items():
            cells = [f"{scores[k]:.3f}" if k in scores else "-" for k in
                     ("ndcg_at_5", "ndcg_at_10", "precision_at_1", "precision_at_5")]
            lines.append(f"| {name} | {scores['queries']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
