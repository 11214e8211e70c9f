"""Score fusion on hand-written score sets."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.scoring.fusion import Standardiser, fuse, parse_scorers


def test_standardiser_maps_normal_scores_to_zero_mean_unit_spread():
    s = Standardiser.fit(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(s(np.array([2.0, 2.0 + np.sqrt(2 / 3)])), [0.0, 1.0])


def test_mean_fusion_averages_z_scores_and_max_takes_the_largest():
    standardisers = {"knn": Standardiser(0.1, 0.05), "twfr": Standardiser(100.0, 10.0)}
    scores = {"knn": np.array([0.1, 0.3]), "twfr": np.array([120.0, 100.0])}
    np.testing.assert_allclose(fuse(scores, standardisers, "mean"), [1.0, 2.0])
    np.testing.assert_allclose(fuse(scores, standardisers, "max"), [2.0, 4.0])


def test_fusion_refuses_mismatched_scorers_and_unknown_combiners():
    with pytest.raises(ValueError, match="standardisers"):
        fuse({"knn": np.zeros(1)}, {"twfr": Standardiser(0, 1)})
    with pytest.raises(ValueError, match="combiner"):
        fuse({"knn": np.zeros(1)}, {"knn": Standardiser(0, 1)}, "median")


def test_mean_fusion_of_two_independent_scorers_narrows_the_normal_spread():
    rng = np.random.default_rng(0)
    a, b = rng.normal(5, 2, 5000), rng.normal(-1, 0.1, 5000)
    standardisers = {"a": Standardiser.fit(a), "b": Standardiser.fit(b)}
    fused = fuse({"a": a, "b": b}, standardisers)
    assert 0.65 < fused.std() < 0.76  # 1/sqrt(2) for independent scorers


def test_scorer_spec_parses_and_rejects_unknown_names():
    assert parse_scorers("knn+twfr", ("knn", "section", "twfr")) == ("knn", "twfr")
    with pytest.raises(ValueError, match="bogus"):
        parse_scorers("knn+bogus", ("knn", "twfr"))
    with pytest.raises(ValueError):
        parse_scorers("knn+knn", ("knn", "twfr"))
