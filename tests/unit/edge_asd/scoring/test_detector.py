"""A machine's detector: each component's scores standardised on its honest normal
scores, combined by mean or max, in z units."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.errors import UserError
from edge_asd.scoring.detector import Component, Detector, Standardiser, combine, single
from edge_asd.scoring.features import POOLING_R, WindowFeatures
from edge_asd.scoring.knn import KnnScorer
from edge_asd.scoring.registry import FitContext
from edge_asd.scoring.section import SectionScorer


def test_standardiser_maps_normal_scores_to_zero_mean_unit_spread():
    s = Standardiser.fit(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(s(np.array([2.0, 2.0 + np.sqrt(2 / 3)])), [0.0, 1.0])


def test_constant_or_too_few_normal_scores_cannot_be_standardised():
    with pytest.raises(ValueError, match="constant"):
        Standardiser.fit(np.full(50, 3.25))
    with pytest.raises(ValueError, match="constant"):
        Standardiser.fit(1e6 + np.r_[np.zeros(49), 1e-6])  # rounding noise, not a spread
    with pytest.raises(ValueError, match="at least two"):
        Standardiser.fit(np.array([1.0]))


def test_mean_combines_by_averaging_z_scores_and_max_takes_the_largest():
    z = np.array([[0.0, 2.0, -1.0], [4.0, 2.0, -3.0]])
    np.testing.assert_allclose(combine(z, "mean"), [2.0, 2.0, -2.0])
    np.testing.assert_allclose(combine(z, "max"), [4.0, 2.0, -1.0])
    with pytest.raises(ValueError, match="combiner"):
        combine(z, "median")


def test_mean_of_two_independent_scorers_narrows_the_normal_spread():
    rng = np.random.default_rng(0)
    a, b = rng.normal(5, 2, 5000), rng.normal(-1, 0.1, 5000)
    fused = combine(np.stack([Standardiser.fit(a)(a), Standardiser.fit(b)(b)]), "mean")
    assert 0.65 < fused.std() < 0.76  # 1/sqrt(2) for independent scorers


def features(embedding: list[list[float]], logits: list[list[float]]) -> WindowFeatures:
    n = len(embedding)
    return WindowFeatures(
        np.asarray(embedding, np.float32),
        np.asarray(logits, np.float32),
        np.zeros((n, len(POOLING_R), 4), np.float32),
    )


def test_a_detector_scores_its_components_z_scores_combined():
    knn = KnnScorer(np.array([[1.0, 0.0]], np.float32), n_centres=1)
    section = SectionScorer("fan/section_00", [0, 1], "max")
    windows = features([[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0, 0.0, 0.0], [5.0, 0.0, 0.0, 0.0]])
    knn_z = (np.array([0.0, 1.0]) - 0.5) / 0.25  # cosine distances 0 and 1
    p_own = np.array([0.25, np.exp(5) / (np.exp(5) + 3)])  # largest of the bound labels
    section_raw = np.log((1 - p_own) / p_own)
    section_z = (section_raw - 1.0) / 2.0
    components = (
        Component(knn, Standardiser(0.5, 0.25)),
        Component(section, Standardiser(1.0, 2.0)),
    )
    np.testing.assert_allclose(
        Detector(components, "mean").score(windows), (knn_z + section_z) / 2, rtol=1e-6
    )
    np.testing.assert_allclose(
        Detector(components, "max").score(windows), np.maximum(knn_z, section_z), rtol=1e-6
    )
    assert Detector(components).kind == "knn+section"


def test_one_component_is_its_own_z_score_standardised_on_honest_scores():
    knn = KnnScorer(np.array([[1.0, 0.0]], np.float32), n_centres=1)
    honest = np.array([0.1, 0.2, 0.3])
    detector = single(knn, honest)
    windows = features([[0.0, 1.0]], [[0.0]])
    assert detector.score(windows)[0] == pytest.approx((1.0 - 0.2) / np.std(honest))
    with pytest.raises(ValueError, match="constant"):
        single(knn, [0.2, 0.2, 0.2])


def test_a_detector_needs_a_component_and_a_known_combiner():
    with pytest.raises(ValueError, match="at least one component"):
        Detector(())
    knn = KnnScorer(np.ones((1, 2), np.float32), n_centres=1)
    with pytest.raises(ValueError, match="combiner"):
        Detector((Component(knn, Standardiser(0.0, 1.0)),), "median")


def two_component_detector() -> Detector:
    knn = KnnScorer(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), n_centres=2)
    section = SectionScorer("fan/section_00", [0], "mean")
    components = (Component(knn, Standardiser(0.5, 0.25)), Component(section, Standardiser(1, 2)))
    return Detector(components, "max")


def test_a_detector_state_names_each_component_and_restores_to_the_same_scores():
    detector = two_component_detector()
    state, arrays = detector.to_state()
    assert state == {
        "combiner": "max",
        "components": [
            {
                "kind": "knn",
                "params": {"n_centres": 2, "bank_entries": 2},
                "standardiser": {"mean": 0.5, "std": 0.25},
            },
            {
                "kind": "section",
                "params": {"label": "fan/section_00", "reduce": "mean"},
                "standardiser": {"mean": 1, "std": 2},
            },
        ],
    }
    assert sorted(arrays) == ["c0_bank"]
    context = FitContext(("fan/section_00", "fan/section_01"), embedding_dim=2)
    restored = Detector.from_state(state, arrays, context, "c.yaml")
    windows = features([[1.0, 0.0], [0.6, 0.8]], [[2.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(restored.score(windows), detector.score(windows))
    assert restored.kind == "knn+section" and restored.combiner == "max"


def test_a_state_that_cannot_be_restored_names_the_file_and_the_component():
    state, arrays = two_component_detector().to_state()
    wrong = FitContext(("fan/section_00",), embedding_dim=3)  # the bank is 2-dimensional
    with pytest.raises(UserError, match=r"^c\.yaml: detector component 0 \(knn\): the memory"):
        Detector.from_state(state, arrays, wrong, "c.yaml")
    context = FitContext(("fan/section_00", "fan/section_01"), embedding_dim=2)
    with pytest.raises(UserError, match=r"^c\.yaml: detector: combiner must be one of"):
        Detector.from_state({**state, "combiner": "median"}, arrays, context, "c.yaml")
    with pytest.raises(UserError, match=r"^c\.yaml: detector: a detector needs at least one"):
        Detector.from_state({"combiner": "mean"}, arrays, context, "c.yaml")


def test_two_normal_scores_are_enough_to_standardise():
    s = Standardiser.fit(np.array([1.0, 3.0]))
    assert (s.mean, s.std) == (2.0, 1.0)


def test_a_state_without_a_combiner_means_and_an_unknown_kind_names_the_file():
    state, arrays = two_component_detector().to_state()
    context = FitContext(("fan/section_00", "fan/section_01"), embedding_dim=2)
    older = {"components": state["components"]}  # written before combiners existed
    assert Detector.from_state(older, arrays, context, "c.yaml").combiner == "mean"
    psychic = {**state, "components": [{**state["components"][0], "kind": "psychic"}]}
    with pytest.raises(UserError, match=r"^c\.yaml: unknown scorer 'psychic'"):
        Detector.from_state(psychic, arrays, context, "c.yaml")
