"""DuCN evaluation: detection metrics, precision@k and average precision on hand-made rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from covidweak.errors import InputError
from covidweak.records import StudyRecord
from covidweak.similar.evaluate import _ranking_scores, lesion_pattern
from covidweak.similar.metrics import average_precision, detection_metrics, precision_at_k


def test_detection_metrics_by_hand():
    # tp 1 (0.9), fn 1 (0.4), fp 1 (0.6), tn 1 (0.1); AUC: 3 of 4 positive-negative pairs ordered right.
    metrics = detection_metrics([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1])
    assert metrics == pytest.approx({"sensitivity": 0.5, "specificity": 0.5, "precision": 0.5, "f1": 0.5,
                                     "accuracy": 0.5, "auc": 0.75})


def test_detection_metrics_undefined_values_are_nan():
    metrics = detection_metrics([0, 0], [0.1, 0.2])
    assert math.isnan(metrics["auc"]) and math.isnan(metrics["sensitivity"]) and math.isnan(metrics["precision"])
    assert metrics["specificity"] == 1.0 and metrics["accuracy"] == 1.0
    with pytest.raises(InputError):
        detection_metrics([1], [0.5, 0.5])


def test_precision_at_k_and_average_precision_by_hand():
    ranking = [False, True, False, True]
    assert [precision_at_k(ranking, k) for k in (1, 2, 4)] == [0.0, 0.5, 0.5]
    assert average_precision(ranking) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert average_precision(ranking, n_relevant=3) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert math.isnan(average_precision([False, False]))
    with pytest.raises(InputError):
        precision_at_k(ranking, 5)


def test_ranking_scores_skip_queries_without_relevant_studies():
    rankings = {"a": ["b", "c", "d"], "b": ["c", "a", "d"], "c": ["a", "b", "d"]}
    patient = {"a": 1, "b": 1, "c": 2, "d": 3}
    scores = _ranking_scores(rankings, lambda q, o: patient[q] == patient[o])
    # a finds b at rank 1 (AP 1), b finds a at rank 2 (AP 1/2); c has no other study and is skipped.
    assert scores["queries"] == 2
    assert scores["precision_at_1"] == pytest.approx(0.5) and scores["precision_at_3"] == pytest.approx(1 / 3)
    assert scores["map"] == pytest.approx(0.75) and scores["chance_precision"] == pytest.approx(1 / 3)
    assert "precision_at_5" not in scores  # no ranking holds five studies


def test_lesion_pattern_takes_the_largest_type_and_zone():
    lesions = [{"type_name": "ggo", "volume_ml": 1.0, "lung": "left", "zone": "upper"},
               {"type_name": "ggo", "volume_ml": 1.0, "lung": "right", "zone": "lower"},
               {"type_name": "consolidation", "volume_ml": 1.5, "lung": "right", "zone": "lower"}]
    record = StudyRecord("s", "p", "covid", ct_path=None, source="phantom", extra={"lesions": lesions})
    assert lesion_pattern(record) == ("covid", "ggo", "right lower")
    healthy = StudyRecord("n", "q", "normal", ct_path=None, source="phantom", extra={"lesions": []})
    assert lesion_pattern(healthy) == ("normal", "none", "none")
    assert lesion_pattern(StudyRecord("x", "y", "covid", ct_path=None, source="manifest")) is None


def test_study_probability_is_the_mean_of_the_top_quarter():
    from covidweak.similar.metrics import study_probability

    assert study_probability([0.9, 0.1, 0.2, 0.3, 0.0, 0.8, 0.1, 0.1]) == pytest.approx(0.85)  # top 2 of 8
    assert study_probability([0.4]) == pytest.approx(0.4)
    with pytest.raises(InputError):
        study_probability([])


def test_case_similarity_by_hand():
    from covidweak.similar.similarity import case_similarity, lesion_profile

    ggo_right = {"type": 1, "lung": "right", "zone": "lower", "volume_ml": 9.0}
    cons_left = {"type": 3, "lung": "left", "zone": "upper", "volume_ml": 9.0}
    types, zones, total = lesion_profile([ggo_right, cons_left])
    assert types.tolist() == [0.5, 0.0, 0.5] and zones[2] == 0.5 and zones[3] == 0.5 and total == 18.0
    assert case_similarity([], []) == 1.0 and case_similarity([ggo_right], [ggo_right]) == 1.0
    # half the type mix and half the zones shared; burden exp(-|ln 10 - ln 19|) = 10 / 19
    assert case_similarity([ggo_right], [ggo_right, cons_left]) == pytest.approx((0.5 + 0.5 + 10 / 19) / 3)
    # nothing in common but the burden; a lesion-free case shares only the burden term
    assert case_similarity([ggo_right], [cons_left]) == pytest.approx(1 / 3)
    assert case_similarity([], [ggo_right]) == pytest.approx((1 / 10) / 3)


def test_ndcg_at_k_by_hand():
    from covidweak.similar.similarity import ndcg_at_k

    assert ndcg_at_k([1.0, 0.5, 0.0], 2) == pytest.approx(1.0)  # already ideal
    # ranked [0, 1]: DCG@2 = 1 / log2(3); ideal [1, 0]: 1
    assert ndcg_at_k([0.0, 1.0], 2) == pytest.approx(1 / np.log2(3))
    assert ndcg_at_k([0.2, 0.8, 0.5], 1) == pytest.approx(0.25)
    assert np.isnan(ndcg_at_k([0.0, 0.0], 5))


def test_describe_lesions_names_the_similarity_terms():
    from covidweak.similar.similarity import describe_lesions

    lesions = [{"type": 1, "lung": "right", "zone": "lower", "volume_ml": 21.0},
               {"type": 3, "lung": "left", "zone": "lower", "volume_ml": 9.0},
               {"type": 2, "lung": "left", "zone": "upper", "volume_ml": 1.0}]  # 3 %: below the 10 % shown
    assert describe_lesions(lesions) == "31 mL: ground glass 68 %, consolidation 29 %; right lower 68 %, left lower 29 %"
    assert describe_lesions([]) == "no lesions"
