"""The knn scorer and its memory bank (k-means centres plus a new-condition set)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.scoring.features import WindowFeatures
from edge_asd.scoring.knn import KnnScorer, build_bank, kmeans, knn_scores, l2_normalise
from edge_asd.scoring.registry import FitContext, FitData


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_distance_is_to_the_nearest_bank_entry():
    bank = np.stack([unit(1, 0, 0), unit(0, 1, 0)])
    queries = np.stack(
        [
            unit(1, 0, 0),  # on an entry
            unit(1, 1, 0),  # 45 degrees from both
            unit(0, 0, 1),  # orthogonal to both
            -unit(1, 0, 0),  # opposite one, orthogonal to the other
            unit(-1, -1, 0),  # opposite the midpoint of both
        ]
    )
    expected = [0.0, 1 - np.cos(np.pi / 4), 1.0, 1.0, 1 + np.cos(np.pi / 4)]
    np.testing.assert_allclose(knn_scores(queries, bank), expected, atol=1e-12)


def test_scale_of_embeddings_and_bank_does_not_matter():
    rng = np.random.default_rng(0)
    bank, queries = rng.normal(size=(6, 16)), rng.normal(size=(4, 16))
    np.testing.assert_allclose(
        knn_scores(queries * 7.0, bank * 0.01), knn_scores(queries, bank), atol=1e-12
    )


def test_a_zero_embedding_scores_one_not_nan():
    scores = knn_scores(np.zeros((1, 3)), np.eye(3))
    assert scores[0] == pytest.approx(1.0)


def test_empty_bank_and_wrong_dimension_are_refused():
    with pytest.raises(ValueError, match="empty"):
        knn_scores(np.ones((1, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="dimension"):
        knn_scores(np.ones((1, 3)), np.ones((2, 4)))


def clusters(rng: np.random.Generator, centres: np.ndarray, per_cluster: int) -> np.ndarray:
    points = [c + 0.02 * rng.normal(size=(per_cluster, centres.shape[1])) for c in centres]
    return np.concatenate(points)


def test_bank_centres_find_the_normal_clusters():
    rng = np.random.default_rng(1)
    true_centres = l2_normalise(rng.normal(size=(3, 32)))
    normal = clusters(rng, true_centres, 50) * rng.uniform(0.5, 5.0, size=(150, 1))
    bank = build_bank(normal, n_centres=3, seed=0)
    assert bank.shape == (3, 32) and bank.dtype == np.float32
    # each true centre is matched by one bank centre (cosine distance tiny)
    np.testing.assert_array_less(knn_scores(true_centres, bank), 1e-3)
    np.testing.assert_allclose(np.linalg.norm(bank, axis=1), 1.0, rtol=1e-6)


def test_bank_scores_normal_low_and_a_new_direction_high():
    rng = np.random.default_rng(2)
    true_centres = l2_normalise(rng.normal(size=(4, 32)))
    bank = build_bank(clusters(rng, true_centres, 40), n_centres=8)
    normal_scores = knn_scores(clusters(rng, true_centres, 10), bank)
    anomalous_scores = knn_scores(l2_normalise(rng.normal(size=(20, 32))), bank)
    assert normal_scores.max() < anomalous_scores.min()


def test_new_condition_embeddings_are_appended_raw():
    rng = np.random.default_rng(3)
    normal = clusters(rng, l2_normalise(rng.normal(size=(2, 8))), 30)
    new_condition = rng.normal(size=(5, 8)) * 3.0
    bank = build_bank(normal, n_centres=4, new_condition=new_condition)
    assert bank.shape == (4 + 5, 8)
    np.testing.assert_allclose(bank[4:], new_condition, rtol=1e-6)
    # so a window from the new condition is no longer anomalous
    assert np.all(knn_scores(new_condition, bank) < 1e-6)
    assert np.all(knn_scores(new_condition, bank[:4]) > 1e-3)


def test_centres_are_capped_at_the_number_of_embeddings():
    rng = np.random.default_rng(4)
    normal = rng.normal(size=(5, 8))
    bank = build_bank(normal, n_centres=64)
    assert bank.shape == (5, 8)
    np.testing.assert_allclose(knn_scores(normal, bank), 0.0, atol=1e-6)


def test_the_bank_is_reproducible_with_a_seed():
    normal = np.random.default_rng(5).normal(size=(100, 16))
    np.testing.assert_array_equal(build_bank(normal, 7, seed=3), build_bank(normal, 7, seed=3))


def test_kmeans_returns_k_centres_even_with_duplicate_points():
    x = np.repeat(np.eye(3), 10, axis=0)
    centres = kmeans(x, 5, seed=0)
    assert centres.shape == (5, 3)
    assert np.all(np.isfinite(centres))


def test_bank_from_nothing_or_bad_shapes_is_refused():
    with pytest.raises(ValueError, match="no embeddings"):
        build_bank(np.zeros((0, 4)), 3)
    with pytest.raises(ValueError, match="n_centres"):
        build_bank(np.ones((4, 4)), 0)
    with pytest.raises(ValueError, match="new_condition"):
        build_bank(np.ones((4, 4)), 2, new_condition=np.ones((2, 3)))


def test_a_bank_of_only_new_condition_embeddings_is_allowed():
    extra = np.eye(4)[:2]
    np.testing.assert_allclose(build_bank(np.zeros((0, 4)), 3, new_condition=extra), extra)


def features_of(embedding: np.ndarray) -> WindowFeatures:
    n = len(embedding)
    return WindowFeatures(
        embedding.astype(np.float32), np.zeros((n, 1), np.float32), np.zeros((n, 1, 4), np.float32)
    )


def normal_and_new(seed: int = 0) -> FitData:
    """40 windows around one direction (main) and 3 new-condition windows elsewhere."""
    rng = np.random.default_rng(seed)
    main = unit(1, 0, 0, 0) + 0.05 * rng.normal(size=(40, 4))
    new = unit(0, 0, 1, 0) + 0.05 * rng.normal(size=(3, 4))
    mask = np.r_[np.zeros(40, bool), np.ones(3, bool)]
    return FitData(features_of(np.concatenate([main, new])), mask)


def test_the_knn_kind_fits_centres_plus_the_new_condition_and_scores_a_fault_high():
    context = FitContext(("fan/section_00",), seed=3)
    scorer = KnnScorer.fit(normal_and_new(), {"n_centres": 5}, context)
    assert scorer.bank.shape == (5 + 3, 4) and scorer.bank.dtype == np.float32
    np.testing.assert_array_equal(scorer.bank[5:], normal_and_new().features.embedding[40:])
    probes = features_of(np.stack([unit(1, 0, 0, 0), unit(0, 0, 1, 0), unit(0, 1, 0, 0)]))
    normal, new_condition, fault = scorer.score(probes)
    assert normal < 0.05 and new_condition < 0.05 and fault > 0.9
    assert KnnScorer.fit(normal_and_new(), {}, context).n_centres == 16  # the default
    assert [c["n_centres"] for c in KnnScorer.candidates(context)] == [16, 64]
    assert KnnScorer.describe({"n_centres": 64}) == "knn(64 centres)"
    assert KnnScorer.describe({}) == "knn(16 centres)"


def test_a_fold_of_new_condition_windows_only_keeps_them_all_as_the_bank():
    data = normal_and_new()
    only_new = data.take(data.new_condition)
    scorer = KnnScorer.fit(only_new, {"n_centres": 16}, FitContext(("x",)))
    np.testing.assert_array_equal(scorer.bank, data.features.embedding[40:])


def test_the_knn_state_restores_to_the_same_scorer():
    context = FitContext(("fan/section_00",), embedding_dim=4)
    scorer = KnnScorer.fit(normal_and_new(), {"n_centres": 5}, context)
    params, arrays = scorer.state()
    assert params == {"n_centres": 5, "bank_entries": 8}
    restored = KnnScorer.restore(params, arrays, context)
    np.testing.assert_array_equal(restored.bank, scorer.bank)
    assert restored.n_centres == 5
    assert KnnScorer.restore({}, arrays, FitContext(("x",))).n_centres == 8  # older files


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({}, r"needs its memory bank \(array `bank`\)"),
        ({"bank": np.ones((3, 5), np.float32)}, r"has shape \(3, 5\), not \[entries, 4\]"),
        ({"bank": np.ones((0, 4), np.float32)}, r"has shape \(0, 4\), not \[entries, 4\]"),
        ({"bank": np.ones(4, np.float32)}, r"has shape \(4,\), not \[entries, 4\]"),
        ({"bank": np.full((2, 4), np.nan, np.float32)}, "NaN or infinite"),
    ],
)
def test_a_bank_that_cannot_serve_is_refused_saying_why(arrays, message):
    with pytest.raises(ValueError, match=message):
        KnnScorer.restore({"n_centres": 2}, arrays, FitContext(("x",), embedding_dim=4))
