"""The phantom's cohort is calibrated to MosMedData's burden classes and keeps small lesions."""

import numpy as np
import pytest

from covidweak.errors import InputError
from covidweak.phantom import PhantomConfig, generate_dataset
from covidweak.phantom.burden import (CT_BANDS, MILDEST_INVOLVEMENT, MOSMED_CT_SHARES, draw_burden,
                                      involvement_category)
from covidweak.phantom import cohort_stats, cohort_table
from covidweak.phantom.config import GENERATOR_VERSION


def test_mosmed_shares_are_the_published_positive_counts():
    # 684, 125, 45 and 2 of MosMedData's 856 positive studies
    assert [round(100 * MOSMED_CT_SHARES[k], 1) for k in (1, 2, 3, 4)] == [79.9, 14.6, 5.3, 0.2]


def test_burden_draws_follow_mosmed_and_stay_in_their_band():
    rng = np.random.default_rng(0)
    draws = [draw_burden(rng) for _ in range(4000)]
    categories = np.array([c for c, _ in draws])
    for k, share in MOSMED_CT_SHARES.items():
        assert abs(np.mean(categories == k) - share) < 0.02, k
    for category, target in draws:
        lo, hi = CT_BANDS[category]
        assert max(lo, MILDEST_INVOLVEMENT) <= target < hi
        assert involvement_category(target) == category
    assert [involvement_category(v) for v in (0.0, 0.01, 0.25, 0.5, 0.74, 0.9)] == [0, 1, 2, 3, 3, 4]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """30 patients, one study each, default mix, at 96 x 96 x 24 (seconds)."""
    out = tmp_path_factory.mktemp("cohort")
    generate_dataset(out, patients=30, studies_per_patient=1, seed=5, config=PhantomConfig(size=96, slices=24))
    return out, cohort_stats(out)


def test_cohort_involvement_is_a_hospital_mix_with_small_lesions(cohort):
    folder, stats = cohort
    assert GENERATOR_VERSION == "1.2"
    assert '"generator_version": "1.2"' in next(folder.glob("*/meta.json")).read_text()
    involvement = np.array(stats["involvement"])
    assert stats["positive_studies"] >= 20 and len(involvement) >= 12  # involvement: COVID-19 studies
    assert involvement.min() > 0  # every positive baseline study shows lesions
    # MosMedData: 80 % of positives under 25 % of the lung, the rest mostly 25-75 %;
    # the 1.1 generator put the median at 1.2 % and nothing above 25 %.
    assert 0.02 < stats["median"] < 0.2
    assert 0.55 <= stats["ct_shares"][1] <= 0.95 and involvement.max() > 0.25
    assert involvement.max() < 0.9
    # small lesions stay: in nearly every COVID-19 patient, and a good share of all lesions
    assert stats["small_per_patient"] >= 0.8 and stats["small_share"] >= 0.15
    assert stats["slices_positive"] > stats["slices_all"] > 0
    mix = stats["types"]["covid"]["volume"]
    assert mix["ggo"] > 0.3 and mix["consolidation"] > 0
    assert stats["types"]["cap"]["volume"]["consolidation"] > 0.5


def test_cohort_table_sets_the_phantom_beside_the_references(cohort):
    table = cohort_table(cohort[1])
    assert table.startswith("| figure | phantom | reference |")
    assert "MosMedData 79.9 %" in table and "19.4 %" in table and "20.8 %" in table
    assert len({line.count("|") for line in table.splitlines()}) == 1  # a well-formed table


def test_cohort_stats_refuses_a_folder_without_manifest(tmp_path):
    with pytest.raises(InputError, match="manifest"):
        cohort_stats(tmp_path)


def test_measured_categories_are_the_drawn_ones(cohort):
    # the plan's lattice estimate must reach each patient's target on the rendered masks
    assert cohort[1]["category_agreement"] >= 0.85
