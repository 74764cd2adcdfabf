"""Lesion branch of Wu et al. with values worked out by hand: Otsu + 4-connectivity, lesion features,
hit rate (Sect. 4.3.2), Eq. 10 scores, the elbow rule, Hungarian matching (Table 7) and t-SNE placement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from covidweak.clusters.embedding import place
from covidweak.clusters.hitrate import box_iou, cam_regions, slice_hits, truth_components
from covidweak.clusters.kmeans import choose_k, elbow_k, lesion_scores
from covidweak.clusters.lam import (component_maxima, lesion_activation_map, lesion_components, lesion_features,
                                    normalise)
from covidweak.clusters.matching import confusion, match_clusters, type_table
from covidweak.errors import InputError


def test_otsu_and_four_connectivity_keep_diagonal_pixels_apart():
    # Two diagonal 2-pixel blobs touch only at a corner: 4-connectivity makes them two lesions.
    # The lone bright pixel at (4, 4) is one pixel and is dropped. Otsu splits 0 from 0.8-1.0.
    lahm = np.zeros((6, 6), dtype=np.float32)
    lahm[0, 0:2] = 1.0
    lahm[1, 2:4] = 0.9
    lahm[4, 4] = 0.8
    labels = lesion_components(lahm)
    assert labels.max() == 2
    assert set(labels[0, 0:2]) == {1} and set(labels[1, 2:4]) == {2}
    assert labels[4, 4] == 0


def test_flat_heatmap_has_no_lesions():
    assert lesion_components(np.zeros((4, 4))).max() == 0
    assert normalise(np.full((3, 3), 5.0)).max() == 0


def test_lesion_features_are_taken_at_each_component_maximum():
    lahm = np.array([[0.2, 0.9, 0, 0], [0.3, 0.1, 0, 0], [0, 0, 0, 0], [0, 0, 0.4, 0.7]], dtype=np.float32)
    labels = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 2, 2]], dtype=np.int32)
    maxima = component_maxima(lahm, labels)
    assert maxima.tolist() == [[0, 1], [3, 3]]
    features = np.arange(3 * 16, dtype=np.float32).reshape(3, 4, 4)  # channel c at (r, k) = 16c + 4r + k
    assert lesion_features(features, maxima).tolist() == [[1, 17, 33], [15, 31, 47]]


def test_lam_is_the_masked_heatmap_upsampled():
    lahm = np.array([[0.0, 1.0], [0.5, 0.0]], dtype=np.float32)
    labels = np.array([[0, 1], [0, 0]], dtype=np.int32)
    lam = lesion_activation_map(lahm, labels, (4, 4))
    assert lam.shape == (4, 4)
    assert lam[0, 3] == pytest.approx(1.0) and lam[3, 0] == pytest.approx(0.0)


def test_box_iou_by_hand():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 5)) == pytest.approx(0.5)
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((0, 0, 2, 2), (5, 5, 6, 6)) == 0.0


def test_hit_rate_thresholds_and_the_maximum_inside_the_overlap():
    truth = np.zeros((20, 20), dtype=np.int32)
    truth[0:10, 0:10] = 1  # ground-truth box (0, 0, 10, 10), area 100
    detected = np.zeros((20, 20), dtype=np.int32)
    detected[0:10, 0:5] = 1  # detected box (0, 0, 10, 5): IoU 50 / 100 = 0.5
    heat = np.zeros((20, 20), dtype=np.float32)
    heat[3, 2] = 1.0  # the detected region's maximum lies inside the overlap
    hits, lesions = slice_hits(detected, heat, truth, thresholds=(0.1, 0.4, 0.5, 0.6))
    assert lesions == 1
    assert hits.tolist() == [1, 1, 0, 0]  # "over the threshold": 0.5 is not over 0.5

    # The same boxes with the maximum outside the ground-truth box: no hit at any threshold.
    detected[10:12, 0:5] = 1  # box grows to (0, 0, 12, 5): IoU 50 / 110
    heat[:] = 0
    heat[11, 2] = 1.0
    hits, _ = slice_hits(detected, heat, truth, thresholds=(0.1, 0.4))
    assert hits.tolist() == [0, 0]


def test_hit_rate_counts_each_ground_truth_lesion_and_misses_without_detections():
    truth = truth_components(np.pad(np.eye(2, dtype=np.uint8), ((0, 4), (0, 4))))  # diagonal: two lesions
    assert truth.max() == 2
    hits, lesions = slice_hits(np.zeros((6, 6), np.int32), np.zeros((6, 6)), truth, thresholds=(0.1,))
    assert (hits.tolist(), lesions) == ([0], 2)


def test_cam_regions_use_twenty_percent_of_the_maximum():
    cam = np.array([[1.0, 0.25, 0.15, 0.0]], dtype=np.float32)
    assert cam_regions(cam).tolist() == [[1, 1, 0, 0]]


def test_lesion_scores_eq10_by_hand():
    centres = np.array([[0.0, 0.0], [3.0, 4.0]])
    scores = lesion_scores(np.array([[0.0, 0.0], [3.0, 4.0], [1.5, 2.0]]), centres)
    # Distances (0, 5): softmax(-d) = (1, e^-5) / (1 + e^-5).
    assert scores[0] == pytest.approx([1 / (1 + math.exp(-5)), math.exp(-5) / (1 + math.exp(-5))])
    assert scores[1] == pytest.approx(scores[0][::-1])
    assert scores[2] == pytest.approx([0.5, 0.5])  # equidistant


def test_elbow_rule_picks_the_knee():
    # Scaled curve: K 1..5 -> x 0, .25, .5, .75, 1; inertia 100, 60, 20, 15, 10 -> y 1, .556, .111, .056, 0.
    # x + y - 1 = 0, -.194, -.389, -.194, 0: farthest from the chord x + y = 1 at K = 3.
    assert elbow_k(np.arange(1, 6), np.array([100.0, 60.0, 20.0, 15.0, 10.0])) == 3
    # With inertia 40 at K = 2 instead, K = 2 is farther (-.417) and becomes the elbow.
    assert elbow_k(np.arange(1, 6), np.array([100.0, 40.0, 20.0, 15.0, 10.0])) == 2
    assert elbow_k(np.array([1, 2]), np.array([5.0, 1.0])) == 2
    assert elbow_k(np.arange(1, 5), np.full(4, 3.0)) == 1


def test_choose_k_refuses_more_clusters_than_lesions():
    features = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(InputError, match="larger than the 4 lesions"):
        choose_k(features, 5)
    assert choose_k(features, 2)[0] == 2
    with pytest.raises(InputError, match="at least 3 lesions"):
        choose_k(features[:2], "auto")


def test_auto_k_finds_three_separated_groups():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    features = np.concatenate([c + 0.1 * rng.normal(size=(10, 2)) for c in centres])
    assert choose_k(features, "auto")[0] == 3


def test_hungarian_matching_on_a_known_confusion():
    types = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3])
    clusters = np.array([2, 2, 2, 0, 1, 1, 2, 0, 0])
    table = confusion(types, clusters, 3, 3)
    assert table.tolist() == [[1, 0, 3], [0, 2, 1], [2, 0, 0]]
    assert match_clusters(table) == {0: 2, 1: 1, 2: 0}
    rows = type_table(table, ["ggo", "crazy-paving", "consolidation"])["rows"]
    assert rows[0]["counts"] == [3, 0, 1]  # columns in type order: clusters 2, 1, 0
    assert rows[0]["sensitivity"] == pytest.approx(3 / 4)
    assert rows[0]["specificity"] == pytest.approx(4 / 5)  # cluster 2 holds 1 of the 5 other lesions
    assert rows[0]["precision"] == pytest.approx(3 / 4)
    assert rows[2]["sensitivity"] == pytest.approx(1.0) and rows[2]["precision"] == pytest.approx(2 / 3)


def test_extra_clusters_stay_unmatched():
    table = confusion(np.array([1, 1, 2]), np.array([0, 3, 1]), 2, 4)
    rows = type_table(table, ["a", "b"])["rows"]
    assert rows[0]["cluster"] == 0 and rows[0]["unmatched_clusters"] == 1 and rows[0]["sensitivity"] == 0.5


def test_new_lesions_land_at_the_inverse_distance_weighted_mean_of_their_neighbours():
    library_svd = np.array([[0.0], [1.0], [3.0]])
    library_tsne = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 30.0]])
    # 0.25 is 0.25 from the first and 0.75 from the second: weights 4 and 4/3 -> (0*3 + 10*1) / 4 = 2.5.
    points = place(np.array([[0.25], [3.0]]), library_svd, library_tsne, neighbours=2)
    assert points[0] == pytest.approx([2.5, 0.0])
    assert points[1] == pytest.approx([0.0, 30.0])  # identical to a library lesion


def test_a_library_of_two_lesions_still_gets_display_coordinates():
    """Two lesions leave one SVD coordinate, which t-SNE's PCA initialisation cannot take."""
    from covidweak.clusters.embedding import fit_svd, fit_tsne, reduce

    features = np.random.default_rng(0).random((2, 64)).astype(np.float32)
    reduced = reduce(features, fit_svd(features))
    assert reduced.shape == (2, 1)
    points = fit_tsne(reduced)
    assert points.shape == (2, 2) and np.isfinite(points).all()


def test_component_means_average_the_features_over_each_component():
    from covidweak.clusters.lam import component_means

    labels = np.array([[1, 1, 0], [0, 2, 2], [0, 0, 2]], dtype=np.int32)
    features = np.stack([np.arange(9, dtype=np.float32).reshape(3, 3), np.ones((3, 3), dtype=np.float32)])
    # component 1: pixels 0, 1 -> mean 0.5; component 2: pixels 4, 5, 8 -> mean 17 / 3
    np.testing.assert_allclose(component_means(features, labels), [[0.5, 1.0], [17 / 3, 1.0]], rtol=1e-6)
    assert component_means(features, np.zeros((3, 3), dtype=np.int32)).shape == (0, 2)


def test_hu_statistics_by_hand():
    from covidweak.clusters.density import hu_statistics

    hu = np.array([[-900, -600, -400, 0], [-850, -600, -100, 0]], dtype=np.float32)
    regions = np.array([[1, 1, 1, 1], [1, 1, 1, 2]], dtype=np.int32)
    lungs = np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
    stats = hu_statistics(hu, regions, lungs, 3)
    # component 1: 7 lung pixels, 5 above -750 HU (-600, -400, 0, -600, -100), 2 of them above -300 HU
    abnormal = np.array([-600, -400, 0, -600, -100], dtype=np.float64)
    np.testing.assert_allclose(stats[0], [5 / 7, 2 / 5, abnormal.mean() / 1000, abnormal.std() / 1000], rtol=1e-6)
    # component 2 lies outside the lungs, and component 3 vanished on the slice grid: no statistics
    np.testing.assert_array_equal(stats[1:], np.zeros((2, 4)))


def test_a_perfect_map_hits_a_large_lesion_and_misses_a_tiny_one():
    from covidweak.clusters.evaluate import perfect_map
    from covidweak.clusters.hitrate import OVERLAP_THRESHOLDS

    truth = np.zeros((64, 64), dtype=np.uint8)
    truth[8:32, 8:32] = 1  # 24 x 24 pixels: six cells of a 16 x 16 grid each way
    hits = slice_hits(*perfect_map(truth, (16, 16), None), truth_components(truth))[0]
    assert hits[list(OVERLAP_THRESHOLDS).index(0.5)] == 1
    tiny = np.zeros((64, 64), dtype=np.uint8)
    tiny[40, 40] = 1  # one pixel: a sixteenth of one cell, which Otsu keeps as a lone cell and drops
    assert slice_hits(*perfect_map(tiny, (16, 16), None), truth_components(tiny))[0].sum() == 0


def test_boxed_lesions_leave_out_specks_and_renumber():
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[0:3, 0:3] = 2  # 9 pixels
    mask[6, 6] = 1  # a 1-pixel speck
    mask[5:7, 0:2] = 3  # 4 pixels
    everything = truth_components(mask)
    assert everything.max() == 3
    boxed = truth_components(mask, min_pixels=4)  # the speck goes; 9 and 4 pixels stay, labelled 1 and 2
    assert boxed.max() == 2 and boxed[6, 6] == 0
    assert np.count_nonzero(boxed == 1) == 9 and np.count_nonzero(boxed == 2) == 4
    assert np.array_equal(truth_components(mask, min_pixels=10) > 0, np.zeros((8, 8), bool))


def test_otsu_inside_the_lungs_ignores_the_cells_outside():
    """Most of the map lies outside the lungs at 0: Otsu over the whole map puts its threshold between 0
    and the lung's 0.4, so all the lung becomes one lesion; over the lung cells it separates the lesion."""
    lahm = np.zeros((10, 10), dtype=np.float32)
    lahm[:, 4:] = 0.4  # lung: 60 cells
    lahm[4:6, 6:8] = 1.0  # lesion: 4 cells
    inside = np.zeros((10, 10), dtype=bool)
    inside[:, 4:] = True
    whole = lesion_components(lahm)
    assert whole.max() == 1 and (whole > 0).sum() == 60
    lungs_only = lesion_components(lahm, inside)
    assert lungs_only.max() == 1 and (lungs_only > 0).sum() == 4 and lungs_only[4:6, 6:8].all()
    assert lesion_components(lahm, np.zeros((10, 10), dtype=bool)).max() == 0


def test_lung_cells_follow_the_weights_rule():
    from covidweak.clusters.ct import lung_cells

    lungs = np.zeros((8, 8), dtype=np.uint8)
    lungs[:, :4] = 1
    cells = lung_cells({"lam_threshold": "otsu_lungs"}, lungs, (4, 4), None)
    assert cells[:, :2].all() and not cells[:, 2:].any()
    assert lung_cells({}, lungs, (4, 4), None) is None  # the paper's whole-map Otsu
    with pytest.raises(InputError, match="unknown lam_threshold 'mean'"):
        lung_cells({"lam_threshold": "mean"}, lungs, (4, 4), None)


def test_attenuating_pieces_split_a_region_into_its_dense_parts():
    from covidweak.clusters.ct import attenuating_pieces, describe_lesions

    hu = np.full((8, 12), -850.0)
    hu[1:4, 1:5] = -500.0  # 12 dense pixels
    hu[5:7, 7:9] = -300.0  # 4 dense pixels
    hu[6, 1] = 40.0  # one vessel pixel
    lungs = np.ones((8, 12), dtype=np.uint8)
    regions = np.zeros((8, 12), dtype=np.int32)
    regions[0:8, 0:10] = 1  # one coarse region over all three
    regions[0:2, 10:12] = 2  # a region of aerated lung only
    # 2 mm^2 pixels: pieces of 24, 8 and 2 mm^2 against MIN_PIECE_MM2 = 19.6 -> only the first stays
    pieces, parents = attenuating_pieces(regions, hu, lungs, -700.0, 2.0)
    assert pieces.max() == 1 and np.array_equal(pieces > 0, hu == -500.0) and parents.tolist() == [1]
    # 5 mm^2 pixels: the 4-pixel piece (20 mm^2) stays too, in scan order
    pieces, parents = attenuating_pieces(regions, hu, lungs, -700.0, 5.0)
    assert pieces.max() == 2 and set(pieces[5:7, 7:9].ravel()) == {2} and parents.tolist() == [1, 1]
    # each piece carries its region's deep feature and its own density statistics
    features = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)  # kappa 2 on a 2 x 3 map
    components = np.array([[1, 1, 2], [1, 1, 2]])
    described = describe_lesions("peak", features, components, features[0], pieces, hu, lungs, parents)
    assert described.tolist() == [[4.0, 10.0], [4.0, 10.0]]  # A at component 1's maximum (1, 1)


def test_a_margin_lets_a_piece_reach_the_lesion_edge_that_a_cell_edge_cut():
    from covidweak.clusters.ct import attenuating_pieces, grown_regions

    hu = np.full((10, 10), -850.0)
    hu[2:8, 2:8] = -400.0  # a 6 x 6 lesion
    lungs = np.ones((10, 10), dtype=np.uint8)
    regions = np.zeros((10, 10), dtype=np.int32)
    regions[4:8, 4:8] = 1  # the map's component covers only its lower right 4 x 4
    regions[0, 9] = 2
    # grown by 1: a 6 x 6 square from (3, 3); region 2 keeps its pixel and takes its neighbours
    grown = grown_regions(regions, 1)
    assert (grown == 1).sum() == 36 and grown[3, 3] == 1 and grown[2, 2] == 0
    assert grown[0, 8] == 2 and grown[1, 9] == 2 and grown[0, 9] == 2
    assert grown_regions(regions, 0) is regions
    # 2 mm^2 pixels: without a margin the piece is the 16 pixels the cell kept, with 2 the whole lesion
    pieces, parents = attenuating_pieces(regions, hu, lungs, -700.0, 2.0)
    assert (pieces > 0).sum() == 16 and parents.tolist() == [1]
    pieces, parents = attenuating_pieces(regions, hu, lungs, -700.0, 2.0, margin=2)
    assert np.array_equal(pieces > 0, hu == -400.0) and parents.tolist() == [1]
