"""The section scorer: minus the log-odds of the machine's own label(s), log((1 - p) / p)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edge_asd.errors import UserError
from edge_asd.scoring.features import POOLING_R, WindowFeatures
from edge_asd.scoring.registry import FitContext, FitData
from edge_asd.scoring.section import SectionScorer, section_scores, usable_binding

ATTRIBUTE_LABELS = (
    "fan/section_00/speed_100",
    "fan/section_00/speed_118",
    "fan/section_01/speed_100",
    "fan/section_01/speed_118",
)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """The softmax, computed naively in float64 (fine for moderate logits)."""
    e = np.exp(np.asarray(logits, dtype=np.float64))
    return e / e.sum(axis=1, keepdims=True)


def log_odds_against(p: np.ndarray) -> np.ndarray:
    """log((1 - p) / p), naively (fine for moderate probabilities)."""
    return np.log((1.0 - p) / p)


def features_of(logits: np.ndarray) -> WindowFeatures:
    n = len(logits)
    return WindowFeatures(
        np.zeros((n, 4), np.float32),
        np.asarray(logits, np.float32),
        np.zeros((n, len(POOLING_R), 8), np.float32),
    )


def test_single_label_score_is_minus_the_log_odds_and_ranks_as_minus_log_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=5.0, size=(16, 7))
    for index in range(7):
        p = probabilities(logits)[:, index]
        scores = section_scores(logits, [index])
        np.testing.assert_allclose(scores, log_odds_against(p), rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(np.argsort(scores), np.argsort(-np.log(p)))


def test_several_labels_score_minus_the_log_odds_of_their_largest_or_mean_probability():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(8, 9))
    p = probabilities(logits)[:, [2, 3, 4]]
    np.testing.assert_allclose(
        section_scores(logits, [2, 3, 4]), log_odds_against(p.max(axis=1)), atol=1e-9
    )
    np.testing.assert_allclose(
        section_scores(logits, [2, 3, 4], reduce="mean"),
        log_odds_against(p.mean(axis=1)),
        atol=1e-9,
    )
    with pytest.raises(ValueError, match="reduce"):
        section_scores(logits, [2], reduce="sum")


def test_a_section_bound_by_prefix_scores_its_most_likely_attribute_class():
    scorer = SectionScorer.fit(
        FitData(features_of(np.zeros((0, 4)))), {}, FitContext(ATTRIBUTE_LABELS, "fan/section_00")
    )
    assert scorer.label_indices == (0, 1) and scorer.reduce == "max"
    # sure of speed_100; torn between the two speeds; sure of the other section
    logits = np.array([[20.0, 0.0, 0.0, 0.0], [10.0, 10.0, 0.0, 0.0], [0.0, 0.0, 20.0, 0.0]])
    scores = scorer.score(features_of(logits))
    p = probabilities(logits)
    np.testing.assert_allclose(scores, log_odds_against(p[:, :2].max(axis=1)), rtol=1e-5)
    assert scores[0] == pytest.approx(np.log(3.0) - 20.0, abs=1e-3)  # sure: very negative
    assert scores[1] == pytest.approx(0.0, abs=1e-3)  # either speed is normal: even odds
    assert scores[2] == pytest.approx(20.0, abs=1e-3)


def test_a_confident_own_label_scores_low_and_another_label_high():
    logits = np.array([[30.0, 0.0, 0.0], [0.0, 30.0, 0.0]])
    scores = section_scores(logits, [0])
    assert scores[0] == pytest.approx(np.log(2.0) - 30.0, abs=1e-9)
    assert scores[1] == pytest.approx(30.0, abs=1e-6)


def test_a_saturated_classifier_still_gives_scores_that_differ():
    # p = 1 - 1e-13: -log p rounds to about 1e-13 for both; the log-odds keep them apart
    logits = np.array([[30.0, 0.0, 0.0], [30.0, 1.0, 0.0]])
    scores = section_scores(logits, [0])
    assert scores[1] - scores[0] == pytest.approx(np.log((np.e + 1) / 2), abs=1e-9)


def test_extreme_logits_do_not_overflow():
    # ArcFace logits are scaled cosines (scale ~30-64); fp16 engines can give larger
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]])
    for reduce in ("max", "mean"):
        scores = section_scores(logits, [0, 2], reduce=reduce)
        assert np.all(np.isfinite(scores))
    scores = section_scores(logits, [0])
    assert scores[0] == pytest.approx(-1000.0)
    assert scores[1] == pytest.approx(2000.0)


def test_a_label_named_twice_counts_once():
    logits = np.random.default_rng(2).normal(size=(4, 5))
    np.testing.assert_allclose(section_scores(logits, [1, 1]), section_scores(logits, [1]))
    np.testing.assert_allclose(
        section_scores(logits, [1, 1, 2], reduce="mean"),
        section_scores(logits, [1, 2], reduce="mean"),
    )


@pytest.mark.parametrize("indices", [[], [5], [-1]])
def test_bad_label_indices_are_refused(indices):
    with pytest.raises(ValueError):
        section_scores(np.zeros((2, 5)), indices)


def test_logits_must_be_a_batch():
    with pytest.raises(ValueError, match="batch"):
        section_scores(np.zeros(5), [0])


def test_a_binding_covering_every_label_is_refused_by_candidates_fit_and_restore():
    # summed over every label the probability is 1 for every window: the score is constant
    context = FitContext(ATTRIBUTE_LABELS, "fan")
    _, why_not = usable_binding(ATTRIBUTE_LABELS, "fan")
    assert "covers every label" in why_not and "not of this machine's" in why_not
    assert SectionScorer.candidates(context) == []
    with pytest.raises(ValueError, match="covers every label"):
        SectionScorer.fit(FitData(features_of(np.zeros((0, 4)))), {}, context)
    with pytest.raises(ValueError, match="covers every label"):
        SectionScorer.restore({"label": "fan", "reduce": "max"}, {}, context)
    one_label = FitContext(("pump/section_00",), "pump/section_00")
    assert SectionScorer.candidates(one_label) == []


def test_a_missing_or_unknown_binding_is_refused():
    assert "needs a label binding" in usable_binding(ATTRIBUTE_LABELS, None)[1]
    assert SectionScorer.candidates(FitContext(ATTRIBUTE_LABELS, None)) == []
    with pytest.raises(UserError, match="matches none"):
        usable_binding(ATTRIBUTE_LABELS, "valve")
    context = FitContext(ATTRIBUTE_LABELS, "fan/section_00")
    with pytest.raises(ValueError, match="reduce"):
        SectionScorer.restore({"label": "fan/section_00", "reduce": "sum"}, {}, context)


def test_bad_label_indices_are_refused_naming_them_and_the_label_count():
    with pytest.raises(ValueError, match=r"^label_indices is empty$"):
        section_scores(np.zeros((2, 5)), [])
    with pytest.raises(ValueError, match=r"^label_indices \[-1, 2\] out of range for 5 labels$"):
        section_scores(np.zeros((2, 5)), [2, -1])


def test_a_missing_binding_is_refused_naming_the_option():
    assert usable_binding(ATTRIBUTE_LABELS, "") == (
        [],
        "the section scorer needs a label binding (--label): none was given",
    )


def test_a_one_label_model_is_certain_of_it_and_scores_minus_infinity_without_a_warning():
    # p = 1 exactly: log((1 - p) / p) = -inf, quietly (the other labels' sum is empty)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = section_scores(np.array([[3.0], [-2.0]]), [0])
    assert np.all(scores == -np.inf)


def test_a_usable_binding_offers_calibration_the_max_of_its_classes():
    context = FitContext(ATTRIBUTE_LABELS, "fan/section_01")
    assert SectionScorer.candidates(context) == [{"reduce": "max"}]
    scorer = SectionScorer.fit(FitData(features_of(np.zeros((0, 4)))), {}, context)
    assert (scorer.binding, scorer.label_indices, scorer.reduce) == (
        "fan/section_01",
        (2, 3),
        "max",
    )


def test_a_scorer_built_without_a_reduction_scores_its_most_likely_class():
    logits = np.random.default_rng(3).normal(scale=3.0, size=(6, 4))
    scores = SectionScorer("fan/section_00", [0, 1]).score(features_of(logits))
    np.testing.assert_allclose(scores, section_scores(logits, [0, 1], reduce="max"), rtol=1e-6)


def test_the_mean_reduction_fitted_is_scored_recorded_and_restored():
    context = FitContext(ATTRIBUTE_LABELS, "fan/section_00")
    scorer = SectionScorer.fit(FitData(features_of(np.zeros((0, 4)))), {"reduce": "mean"}, context)
    # calibration.yaml keeps these names: files written before must restore
    params, arrays = scorer.state()
    assert (params, arrays) == ({"label": "fan/section_00", "reduce": "mean"}, {})
    logits = np.array([[5.0, 1.0, 0.0, 0.0], [1.0, 5.0, 0.0, 3.0]])
    mean = section_scores(logits, [0, 1], reduce="mean")
    assert not np.allclose(mean, section_scores(logits, [0, 1], reduce="max"))
    np.testing.assert_allclose(scorer.score(features_of(logits)), mean, rtol=1e-6)
    restored = SectionScorer.restore(params, arrays, context)
    assert (restored.binding, restored.label_indices, restored.reduce) == (
        "fan/section_00",
        (0, 1),
        "mean",
    )
    np.testing.assert_allclose(restored.score(features_of(logits)), mean, rtol=1e-6)


def test_a_state_without_a_reduction_restores_as_the_max():
    # `reduce` may be left out of calibration.yaml (edited by hand, say): the default, max
    context = FitContext(ATTRIBUTE_LABELS, "fan/section_00")
    restored = SectionScorer.restore({"label": "fan/section_00"}, {}, context)
    assert restored.reduce == "max" and restored.label_indices == (0, 1)
