"""The twfr scorer: a Gaussian mixture over GWRP-pooled log-mel, its options and its state."""

from __future__ import annotations

import re

import numpy as np
import pytest
import threadpoolctl
from scipy.stats import multivariate_normal

from edge_asd.scoring.features import POOLING_R, WindowFeatures, pool
from edge_asd.scoring.registry import FitContext, FitData
from edge_asd.scoring.twfr import TwfrScorer, _squared_distances, fit_gmm, one_blas_thread

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
        ({"params": {"r": 0.3}}, "^twfr r 0.3 is not one of " + re.escape(f"{POOLING_R}") + "$"),
        ({"params": {"r": None}}, "^twfr r None is not one of " + re.escape(f"{POOLING_R}") + "$"),
        ({"drop": ("means", "weights")}, r"^the twfr scorer needs the arrays weights, means$"),
        (
            {"arrays": {"means": np.zeros((1, 4))}},
            r"^twfr arrays: means shape \(1, 4\) is not \(1, 3\)$",
        ),
        (
            {"arrays": {"means": np.zeros((1, 4)), "feature_std": np.ones(2)}},
            r"^twfr arrays: feature_std shape \(2,\) is not \(3,\); means shape \(1, 4\) "
            r"is not \(1, 3\)$",
        ),
        (
            {"arrays": {"weights": np.zeros(0), "means": np.zeros((0, 3))}},
            r"^twfr arrays: precision_chols shape \(1, 3, 3\) is not \(0, 3, 3\)$",
        ),
        (
            {
                "arrays": {
                    "weights": np.zeros(0),
                    "means": np.zeros((0, 3)),
                    "precision_chols": np.zeros((0, 3, 3)),
                }
            },
            r"^twfr arrays: no mixture component$",
        ),
        (
            {"arrays": {"feature_std": np.array([1.0, np.nan, 1.0])}},
            r"^the twfr arrays hold NaN or infinite values$",
        ),
        (
            {"arrays": {"feature_std": np.array([1.0, 0.0, 1.0])}},
            r"^twfr feature_std and weights must be positive$",
        ),
        (
            {"arrays": {"weights": np.array([0.0])}},
            r"^twfr feature_std and weights must be positive$",
        ),
    ],
)
def test_a_damaged_state_is_refused_saying_what_is_wrong(change, message):
    logmel = np.random.default_rng(8).normal(size=(20, 3, 9)).astype(np.float32)
    params, arrays = fit(logmel, r=POOLING_R[0]).state()
    params = {k: v for k, v in {**params, **change.get("params", {})}.items() if v is not None}
    arrays = {**arrays, **change.get("arrays", {})}
    for name in change.get("drop", ()):
        del arrays[name]
    with pytest.raises(ValueError, match=message):
        TwfrScorer.restore(params, arrays, FitContext(CONTEXT.labels, n_mels=3))


def test_a_two_component_likelihood_is_the_weighted_sum_of_its_gaussians():
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.normal(-2, 1, (150, 2)), rng.normal(2, 1, (150, 2))])
    gmm = fit_gmm(x, n_components=2, reg_covar=1e-2)
    covs = [np.linalg.inv(u @ u.T) for u in gmm.precision_chols]
    points = np.array([[-2.0, -2.0], [0.0, 0.0], [2.0, 1.0], [6.0, -6.0]])
    density = sum(
        w * multivariate_normal(m, c).pdf(points)
        for w, m, c in zip(gmm.weights, gmm.means, covs, strict=True)
    )
    np.testing.assert_allclose(gmm.log_likelihood(points), np.log(density), rtol=1e-9)


def test_a_far_outlier_scored_with_normal_windows_gets_the_score_it_gets_alone():
    # log-likelihoods 1e6 apart in one batch: each row needs its own shift
    rng = np.random.default_rng(13)
    gmm = fit_gmm(rng.normal(size=(100, 2)), n_components=2, reg_covar=1e-2)
    far = np.array([[1000.0, -1000.0]])
    together = gmm.log_likelihood(np.concatenate([rng.normal(size=(3, 2)), far]))
    assert np.isfinite(together).all()
    assert together[-1] == pytest.approx(gmm.log_likelihood(far)[0])


def test_two_clusters_are_found_from_any_seed():
    x = np.array([[-5.0, 0.0], [-5.2, 0.1], [5.0, 0.0], [5.1, -0.1]])
    for seed in range(20):
        gmm = fit_gmm(x, n_components=2, seed=seed, reg_covar=1e-2)
        np.testing.assert_allclose(sorted(gmm.weights), [0.5, 0.5], atol=1e-6)
        np.testing.assert_allclose(sorted(gmm.means[:, 0]), [-5.1, 5.05], atol=1e-6)


def test_the_same_windows_and_seed_give_the_same_scorer():
    logmel = two_mode_logmel(np.random.default_rng(14), 60)
    context = FitContext(CONTEXT.labels, seed=3)
    first, second = (
        TwfrScorer.fit(FitData(features(logmel)), {"r": 1.0, "n_components": 2}, context)
        for _ in range(2)
    )
    for name, array in first.state()[1].items():
        np.testing.assert_array_equal(second.state()[1][name], array, err_msg=name)


def test_the_mixture_is_fitted_on_bands_standardised_by_their_own_spread_plus_reg_covar():
    rng = np.random.default_rng(15)
    logmel = (rng.normal(size=(200, 3, 9)) * np.array([0.5, 1.0, 5.0])[:, None]).astype(np.float32)
    scorer = fit(logmel, r=1.0, n_components=1, reg_covar=0.3)
    pooled = logmel.mean(axis=-1).astype(np.float64)
    np.testing.assert_allclose(scorer.feature_std, pooled.std(axis=0), rtol=1e-4)
    standardised = (pooled - pooled.mean(axis=0)) / pooled.std(axis=0)
    u = scorer.gmm.precision_chols[0]
    np.testing.assert_allclose(
        np.linalg.inv(u @ u.T), np.cov(standardised.T, bias=True) + 0.3 * np.eye(3), atol=1e-3
    )


def test_without_options_the_scorer_is_the_mean_pooled_single_gaussian():
    logmel = np.random.default_rng(16).normal(size=(20, 3, 9)).astype(np.float32)
    params, _ = fit(logmel).state()
    assert params == {"r": 1.0, "n_components": 1, "reg_covar": 1.0, "level_norm": False}


def test_two_windows_are_enough_to_fit_and_one_is_refused_saying_so():
    logmel = np.random.default_rng(17).normal(size=(2, 4, 10)).astype(np.float32)
    assert np.isfinite(fit(logmel, r=1.0).score(features(logmel))).all()
    with pytest.raises(
        ValueError, match=r"^the twfr scorer needs at least two windows of normal sound$"
    ):
        fit(logmel[:1], r=1.0)


def test_a_level_normalised_scorer_scores_its_normal_windows_as_normal():
    # a machine 20 dB above the front end's zero: its level must be removed when fitting too
    rng = np.random.default_rng(18)
    spectrum = 20.0 + np.linspace(3.0, -3.0, 8)[:, None]
    normal = (spectrum + rng.normal(0.0, 0.3, size=(80, 8, 30))).astype(np.float32)
    fresh = (spectrum + rng.normal(0.0, 0.3, size=(20, 8, 30))).astype(np.float32)
    plain = fit(normal, r=1.0, n_components=1, reg_covar=0.1)
    normalised = fit(normal, r=1.0, n_components=1, reg_covar=0.1, level_norm=True)
    assert (
        np.median(normalised.score(features(fresh))) < np.median(plain.score(features(fresh))) + 5.0
    )


def test_calibration_tries_every_pooling_component_count_regularisation_and_level_norm():
    tried = {
        (c["r"], c["n_components"], c["reg_covar"], c["level_norm"])
        for c in TwfrScorer.candidates(CONTEXT)
    }
    assert tried == {
        (r, k, reg, norm)
        for r in (0.0, 0.5, 0.9, 1.0)
        for k in (1, 2)
        for reg in (0.1, 1.0)
        for norm in (False, True)
    }


def test_a_candidate_is_described_in_the_words_calibrate_prints():
    options = {"r": 0.5, "n_components": 2, "reg_covar": 0.1, "level_norm": True}
    assert TwfrScorer.describe(options) == "twfr(r=0.5, 2 comp, reg 0.1, level-normalised)"
    assert TwfrScorer.describe({}) == "twfr(r=1, 1 comp, reg 1)"


def test_the_twfr_state_restores_to_a_scorer_that_scores_alike():
    rng = np.random.default_rng(19)
    scorer = fit(two_mode_logmel(rng, 100), r=0.5, n_components=2, reg_covar=0.1, level_norm=True)
    params, arrays = scorer.state()
    fresh = features(two_mode_logmel(rng, 10))
    for n_mels in (8, 0):  # 0: the model's mel count unknown, taken from the arrays
        restored = TwfrScorer.restore(params, arrays, FitContext(CONTEXT.labels, n_mels=n_mels))
        assert (restored.r, restored.level_norm, restored.reg_covar) == (0.5, True, 0.1)
        np.testing.assert_allclose(restored.score(fresh), scorer.score(fresh), rtol=1e-12)


def test_a_state_without_level_norm_or_reg_covar_restores_unnormalised():
    logmel = np.random.default_rng(20).normal(size=(20, 3, 9)).astype(np.float32)
    scorer = fit(logmel, r=1.0)
    _, arrays = scorer.state()
    restored = TwfrScorer.restore({"r": 1.0}, arrays, FitContext(CONTEXT.labels, n_mels=3))
    assert restored.level_norm is False
    np.testing.assert_allclose(
        restored.score(features(logmel)), scorer.score(features(logmel)), rtol=1e-12
    )


def test_a_state_of_another_models_mel_count_is_refused():
    logmel = np.random.default_rng(21).normal(size=(20, 4, 9)).astype(np.float32)
    params, arrays = fit(logmel, r=1.0).state()
    with pytest.raises(ValueError, match=r"^twfr arrays: feature_mean shape \(4,\) is not \(3,\);"):
        TwfrScorer.restore(params, arrays, FitContext(CONTEXT.labels, n_mels=3))


def test_the_mixture_fits_on_one_blas_thread():
    with one_blas_thread():
        blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)


def test_the_mixture_starts_from_each_window_s_nearest_seed_by_squared_distance():
    rng = np.random.default_rng(22)
    x, centres = rng.normal(size=(6, 3)), rng.normal(size=(2, 3))
    brute = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1)
    np.testing.assert_allclose(_squared_distances(x, centres), brute, atol=1e-12)
