"""The twfr scorer: a Gaussian mixture over GWRP-pooled log-mel, its options and its state."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from edge_asd.scoring.features import POOLING_R, WindowFeatures, pool
from edge_asd.scoring.registry import FitContext, FitData
from edge_asd.scoring.twfr import TwfrScorer, fit_gmm

CONTEXT = FitContext(("fan/section_00",))


def features(logmel: np.ndarray) -> WindowFeatures:
    """Features of log-mel windows [B, n_mels, frames] (no network outputs needed)."""
    n = len(logmel)
    return WindowFeatures(np.zeros((n, 4), np.float32), np.zeros((n, 1), np.float32), pool(logmel))


def fit(logmel: np.ndarray, **options) -> TwfrScorer:
    return TwfrScorer.fit(FitData(features(logmel)), options, CONTEXT)


def test_one_component_mixture_is_the_regularised_gaussian():
    rng = np.random.default_rng(1)
    x = rng.multivariate_normal([1.0, -2.0], [[2.0, 0.6], [0.6, 1.0]], size=400)
    gmm = fit_gmm(x, n_components=1, reg_covar=1e-2)
    cov = np.cov(x.T, bias=True) + 1e-2 * np.eye(2)
    expected = multivariate_normal(x.mean(axis=0), cov).logpdf(x[:5])
    np.testing.assert_allclose(gmm.log_likelihood(x[:5]), expected, rtol=1e-6)


def test_two_clusters_get_two_components_and_the_gap_between_scores_low():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(-5, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    gmm = fit_gmm(x, n_components=2, reg_covar=1e-2)
    assert sorted(np.round(gmm.means[:, 0])) == [-5.0, 5.0]
    inside, gap = gmm.log_likelihood(np.array([[-5.0, -5.0], [0.0, 0.0]]))
    assert inside > gap + 5


def test_max_pooling_flags_a_transient_click_that_mean_pooling_hardly_sees():
    rng = np.random.default_rng(3)
    normal = rng.normal(0.0, 1.0, size=(60, 8, 50)).astype(np.float32)
    clicked = rng.normal(0.0, 1.0, size=(5, 8, 50)).astype(np.float32)
    clicked[:, :, 10] += 8.0  # one loud frame in every band
    fresh = rng.normal(0.0, 1.0, size=(40, 8, 50)).astype(np.float32)

    def separation(r: float) -> float:
        scorer = fit(normal, r=r, n_components=1, reg_covar=0.1)
        return scorer.score(features(clicked)).min() - np.quantile(
            scorer.score(features(fresh)), 0.99
        )

    assert separation(0.0) > 0 > separation(1.0)


def test_the_scorer_fits_the_asked_pooling_and_its_options_are_its_state():
    logmel = np.random.default_rng(4).normal(size=(20, 3, 9)).astype(np.float32)
    scorer = fit(logmel, r=0.0, n_components=1, reg_covar=0.1, level_norm=False)
    np.testing.assert_allclose(scorer.feature_mean, logmel.max(axis=-1).mean(axis=0), rtol=1e-5)
    params, arrays = scorer.state()
    assert params == {"r": 0.0, "n_components": 1, "reg_covar": 0.1, "level_norm": False}
    assert arrays["means"].shape == (1, 3) and arrays["precision_chols"].shape == (1, 3, 3)


def two_mode_logmel(rng, n: int, frames: int = 40) -> np.ndarray:
    """Log-mel of a machine with two operating modes: bands 0-3 loud, or bands 4-7 loud."""
    logmel = rng.normal(0.0, 0.3, size=(n, 8, frames))
    mode = rng.integers(0, 2, size=n)
    logmel[mode == 0, :4] += 3.0
    logmel[mode == 1, 4:] += 3.0
    return logmel.astype(np.float32)


def test_two_components_flag_a_mix_of_a_machines_two_modes():
    rng = np.random.default_rng(6)
    scorer = fit(two_mode_logmel(rng, 200), r=1.0, n_components=2, reg_covar=0.1)
    fresh = two_mode_logmel(rng, 50)
    between = (rng.normal(0.0, 0.3, size=(5, 8, 40)) + 1.5).astype(np.float32)  # neither mode
    assert scorer.score(features(between)).min() > scorer.score(features(fresh)).max()


def test_level_normalisation_ignores_a_gain_change_and_without_it_a_gain_change_shows():
    rng = np.random.default_rng(7)
    spectrum = np.linspace(3.0, -3.0, 8)[:, None]
    normal = (spectrum + rng.normal(0.0, 0.3, size=(80, 8, 30))).astype(np.float32)
    window = normal[:4]
    louder = window + 6.0  # +6 dB in every band and frame: a gain change
    plain = fit(normal, r=1.0, n_components=1, reg_covar=0.1, level_norm=False)
    normalised = fit(normal, r=1.0, n_components=1, reg_covar=0.1, level_norm=True)
    np.testing.assert_allclose(
        normalised.score(features(louder)), normalised.score(features(window)), rtol=1e-5
    )
    assert plain.score(features(louder)).min() > plain.score(features(window)).max() + 10


def test_a_band_that_never_changes_does_not_turn_a_hundredth_of_a_db_into_an_alarm():
    rng = np.random.default_rng(11)
    logmel = rng.normal(size=(30, 4, 20)).astype(np.float32)
    logmel[:, 0] = -100.0  # digital silence in band 0
    scorer = fit(logmel, r=1.0, n_components=1, reg_covar=0.1)
    nudged = logmel[:3].copy()
    nudged[:, 0] += 0.01
    change = scorer.score(features(nudged)) - scorer.score(features(logmel[:3]))
    spread = np.std(scorer.score(features(logmel)))  # of normal windows: about a nat
    assert np.isfinite(change).all() and np.abs(change).max() < 0.1 * spread


def test_fewer_than_two_windows_cannot_be_fitted():
    with pytest.raises(ValueError, match="at least two windows"):
        fit(np.zeros((1, 4, 10), np.float32), r=1.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"params": {"r": 0.3}}, "is not one of"),
        ({"drop": "means"}, "needs the arrays means"),
        ({"arrays": {"means": np.zeros((1, 4))}}, r"means shape \(1, 4\) is not \(1, 3\)"),
        ({"arrays": {"feature_std": np.array([1.0, np.nan, 1.0])}}, "NaN or infinite"),
        ({"arrays": {"feature_std": np.array([1.0, 0.0, 1.0])}}, "must be positive"),
    ],
)
def test_a_damaged_state_is_refused_saying_what_is_wrong(change, message):
    logmel = np.random.default_rng(8).normal(size=(20, 3, 9)).astype(np.float32)
    params, arrays = fit(logmel, r=POOLING_R[0]).state()
    params = {**params, **change.get("params", {})}
    arrays = {**arrays, **change.get("arrays", {})}
    arrays.pop(change.get("drop", ""), None)
    with pytest.raises(ValueError, match=message):
        TwfrScorer.restore(params, arrays, FitContext(CONTEXT.labels, n_mels=3))
