"""The twfr scorer: GWRP pooling, the Gaussian mixture, and the normal-only model choice."""

from __future__ import annotations

import numpy as np
from scipy.stats import multivariate_normal

from edge_asd.scoring.twfr import TwfrModel, fit_gmm, fit_twfr, gwrp, select_twfr


def test_gwrp_is_the_max_at_r0_the_mean_at_r1_and_a_ranked_average_between():
    rng = np.random.default_rng(0)
    logmel = rng.normal(size=(3, 4, 7))
    np.testing.assert_allclose(gwrp(logmel, 0.0), logmel.max(axis=-1))
    np.testing.assert_allclose(gwrp(logmel, 1.0), logmel.mean(axis=-1))
    band = logmel[1, 2]
    ranked = sorted(band, reverse=True)
    weights = [0.5**k for k in range(len(ranked))]
    direct = sum(w * v for w, v in zip(weights, ranked, strict=True)) / sum(weights)
    assert np.isclose(gwrp(logmel, 0.5)[1, 2], direct)


def test_one_component_mixture_is_the_regularised_gaussian():
    rng = np.random.default_rng(1)
    x = rng.multivariate_normal([1.0, -2.0], [[2.0, 0.6], [0.6, 1.0]], size=400)
    gmm = fit_gmm(x, n_components=1)
    cov = np.cov(x.T, bias=True) + 1e-2 * np.eye(2)
    expected = multivariate_normal(x.mean(axis=0), cov).logpdf(x[:5])
    np.testing.assert_allclose(gmm.log_likelihood(x[:5]), expected, rtol=1e-6)


def test_two_clusters_get_two_components_and_the_gap_between_scores_low():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(-5, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    gmm = fit_gmm(x, n_components=2)
    assert sorted(np.round(gmm.means[:, 0])) == [-5.0, 5.0]
    inside, gap = gmm.log_likelihood(np.array([[-5.0, -5.0], [0.0, 0.0]]))
    assert inside > gap + 5


def test_twfr_scores_a_transient_click_above_normal_windows_and_round_trips():
    rng = np.random.default_rng(3)
    normal = rng.normal(0.0, 1.0, size=(60, 8, 50))
    clicked = rng.normal(0.0, 1.0, size=(5, 8, 50))
    clicked[:, :, 10] += 8.0  # one loud frame in every band
    groups = np.repeat(np.arange(6), 10)
    model, tried = select_twfr(normal, groups)
    assert len(tried) == 15 and np.isfinite(list(tried.values())).all()
    assert model.scores(clicked).min() > np.percentile(model.scores(normal), 99)
    again = TwfrModel.from_arrays(model.to_arrays())
    np.testing.assert_allclose(again.scores(clicked), model.scores(clicked))


def test_fit_twfr_uses_the_asked_pooling():
    rng = np.random.default_rng(4)
    logmel = rng.normal(size=(20, 3, 9))
    model = fit_twfr(logmel, r=0.0, n_components=1)
    np.testing.assert_allclose(model.feature_mean, logmel.max(axis=-1).mean(axis=0))
