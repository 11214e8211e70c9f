"""The section scorer: minus the log softmax probability of the machine's own label(s)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.scoring.section import section_scores


def direct_scores(logits: np.ndarray, indices: list[int]) -> np.ndarray:
    """The definition, computed naively in float64 (fine for moderate logits)."""
    logits = np.asarray(logits, dtype=np.float64)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.log(probabilities[:, indices].sum(axis=1))


def test_single_label_score_is_minus_log_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=5.0, size=(16, 7)).astype(np.float32)
    for index in range(7):
        np.testing.assert_allclose(
            section_scores(logits, [index]), direct_scores(logits, [index]), rtol=1e-6
        )


def test_finer_labels_sum_their_probabilities():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(8, 9))
    got = section_scores(logits, [2, 3, 4])
    np.testing.assert_allclose(got, direct_scores(logits, [2, 3, 4]), rtol=1e-9)
    # summing more labels can only make the machine's probability larger, its score lower
    assert np.all(got <= section_scores(logits, [2]) + 1e-12)


def test_a_confident_own_label_scores_near_zero_and_another_label_high():
    logits = np.array([[30.0, 0.0, 0.0], [0.0, 30.0, 0.0]])
    scores = section_scores(logits, [0])
    assert scores[0] < 1e-9
    assert scores[1] == pytest.approx(30.0, abs=1e-6)


def test_extreme_logits_do_not_overflow():
    # ArcFace logits are scaled cosines (scale ~30-64); fp16 engines can give larger
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]])
    scores = section_scores(logits, [0])
    assert np.all(np.isfinite(scores))
    assert scores[0] == pytest.approx(0.0, abs=1e-9)
    assert scores[1] == pytest.approx(2000.0)


def test_a_label_named_twice_counts_once():
    logits = np.random.default_rng(2).normal(size=(4, 5))
    np.testing.assert_allclose(section_scores(logits, [1, 1]), section_scores(logits, [1]))


@pytest.mark.parametrize("indices", [[], [5], [-1]])
def test_bad_label_indices_are_refused(indices):
    with pytest.raises(ValueError):
        section_scores(np.zeros((2, 5)), indices)


def test_logits_must_be_a_batch():
    with pytest.raises(ValueError, match="batch"):
        section_scores(np.zeros(5), [0])
