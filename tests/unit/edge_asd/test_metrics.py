"""The DCASE metrics against cases computed by hand."""

from __future__ import annotations

import pytest

from edge_asd.metrics import (
    SectionResult,
    auc,
    harmonic_mean,
    official_score,
    pauc,
    section_result,
)


def test_perfect_scores_give_one():
    assert auc([0.1, 0.2, 0.3], [0.5, 0.9]) == 1.0
    assert pauc([0.1, 0.2, 0.3], [0.5, 0.9]) == 1.0


def test_inverted_scores_give_zero_auc_and_the_standardised_pauc_floor():
    assert auc([0.5, 0.9], [0.1, 0.2]) == 0.0
    # McClish: 0.5 * (1 + (0 - 0.005) / (0.1 - 0.005)) = 9 / 19
    assert pauc([0.5, 0.9], [0.1, 0.2]) == pytest.approx(9 / 19)


def test_ties_count_one_half():
    # pairs (normal, anomaly): (1,2) (1,3) (2,2) (2,3) -> 1 + 1 + 0.5 + 1 of 4
    assert auc([1.0, 2.0], [2.0, 3.0]) == pytest.approx(3.5 / 4)
    assert auc([1.0, 1.0], [1.0]) == pytest.approx(0.5)


def test_pauc_counts_only_the_lowest_false_positive_rates():
    # normals 0..9, anomalies 9.5 and 8.5: up to FPR 0.1 the ROC sits at TPR 0.5, so the
    # raw area is 0.05; standardised 0.5 * (1 + (0.05 - 0.005) / 0.095) = 14 / 19
    normals = [float(i) for i in range(10)]
    assert pauc(normals, [9.5, 8.5]) == pytest.approx(14 / 19)
    assert auc(normals, [9.5, 8.5]) == pytest.approx((1.0 + 0.9) / 2)


def test_source_and_target_auc_use_their_own_normals_against_all_anomalies():
    scores = [0.1, 0.2, 0.6, 0.7, 0.5, 0.9]
    anomalous = [False, False, False, False, True, True]
    domains = ["source", "source", "target", "target", "source", "target"]
    result = section_result(scores, anomalous, domains)
    assert result.auc_source == 1.0  # 0.1, 0.2 below both anomalies
    assert result.auc_target == pytest.approx(0.5)  # 0.6, 0.7 above 0.5, below 0.9
    assert result.pauc == pytest.approx(pauc([0.1, 0.2, 0.6, 0.7], [0.5, 0.9]))


def test_a_section_with_one_domain_has_no_target_auc_and_the_mean_skips_it():
    result = section_result([0.1, 0.2, 0.9], [False, False, True], ["source"] * 3)
    assert result.auc_target is None
    assert result.auc_source == 1.0
    assert official_score([result]) == 1.0


def test_official_score_is_the_harmonic_mean_of_every_value():
    a = SectionResult(auc_source=0.5, auc_target=1.0, pauc=1.0)
    b = SectionResult(auc_source=1.0, auc_target=0.5, pauc=0.5)
    # 6 / (2 + 1 + 1 + 1 + 2 + 2)
    assert official_score([a, b]) == pytest.approx(6 / 9)
    assert harmonic_mean([0.5, 1.0]) == pytest.approx(2 / 3)


def test_a_zero_value_drives_the_harmonic_mean_to_about_zero_without_failing():
    assert harmonic_mean([0.0, 1.0]) == pytest.approx(0.0, abs=1e-12)
    assert harmonic_mean([None, None]) is None


def test_no_anomalies_or_no_normals_give_no_value():
    assert auc([], [1.0]) is None
    assert pauc([1.0], []) is None


@pytest.mark.parametrize("seed", range(12))
def test_auc_and_pauc_equal_scikit_learn_the_dcase_evaluators_reference(seed):
    sklearn_metrics = pytest.importorskip(
        "sklearn.metrics", reason="scikit-learn (the train extra) is the reference here"
    )
    import numpy as np

    rng = np.random.default_rng(seed)
    normal = np.round(rng.normal(0.0, 1.0, rng.integers(1, 60)), 1)  # rounding makes ties
    anomaly = np.round(rng.normal(rng.uniform(-1, 2), 1.0, rng.integers(1, 60)), 1)
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomaly))]
    s = np.r_[normal, anomaly]
    assert auc(normal, anomaly) == pytest.approx(sklearn_metrics.roc_auc_score(y, s), abs=1e-12)
    for max_fpr in (0.05, 0.1, 0.5):
        expected = sklearn_metrics.roc_auc_score(y, s, max_fpr=max_fpr)
        assert pauc(normal, anomaly, max_fpr) == pytest.approx(expected, abs=1e-12)
