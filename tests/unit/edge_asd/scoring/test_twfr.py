"""The twfr scorer: GWRP pooling, the Gaussian mixture, and the normal-only model choice."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from edge_asd.engines.base import EngineOutput
from edge_asd.scoring.scorer import TwfrScorer, make_scorer
from edge_asd.scoring.twfr import (
    R_CANDIDATES,
    TwfrModel,
    fit_gmm,
    fit_twfr,
    gwrp,
    pool_candidates,
    select_pooled,
    select_twfr,
)


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
    model, choice = select_twfr(normal, groups)
    assert len(choice.held_out) == 45 and np.isfinite(list(choice.held_out.values())).all()
    assert (model.r, model.n_components) == (choice.r, choice.n_components)
    assert model.scores(clicked).min() > np.percentile(model.scores(normal), 99)
    again = TwfrModel.from_arrays(model.to_arrays())
    np.testing.assert_allclose(again.scores(clicked), model.scores(clicked))


def test_fit_twfr_uses_the_asked_pooling():
    rng = np.random.default_rng(4)
    logmel = rng.normal(size=(20, 3, 9))
    model = fit_twfr(logmel, r=0.0, n_components=1)
    np.testing.assert_allclose(model.feature_mean, logmel.max(axis=-1).mean(axis=0))


def test_pooling_every_candidate_at_once_matches_gwrp_at_each_r():
    logmel = np.random.default_rng(5).normal(size=(4, 6, 30))
    pooled = pool_candidates(logmel)
    assert pooled.shape == (4, len(R_CANDIDATES), 6)
    for i, r in enumerate(R_CANDIDATES):
        np.testing.assert_allclose(pooled[:, i], gwrp(logmel, r), rtol=1e-5, atol=1e-5)


def two_mode_logmel(rng, n: int, frames: int = 40) -> np.ndarray:
    """Log-mel of a machine with two operating modes: bands 0-3 loud, or bands 4-7 loud."""
    logmel = rng.normal(0.0, 0.3, size=(n, 8, frames))
    mode = rng.integers(0, 2, size=n)
    logmel[mode == 0, :4] += 3.0
    logmel[mode == 1, 4:] += 3.0
    return logmel


def test_the_twfr_scorer_scores_engine_outputs_and_flags_a_mix_of_the_two_modes():
    rng = np.random.default_rng(6)
    normal = two_mode_logmel(rng, 200)
    model, choice = select_twfr(normal, np.repeat(np.arange(10), 20))
    assert choice.n_components >= 2  # two modes need two components, judged on held-out data
    scorer = make_scorer("twfr", ("fan/section_00",), twfr=model)
    assert isinstance(scorer, TwfrScorer) and scorer.kind == "twfr"
    fresh = two_mode_logmel(rng, 50)
    between = rng.normal(0.0, 0.3, size=(5, 8, 40)) + 1.5  # every band half loud: neither mode
    embedding, logits = np.zeros((1, 4), np.float32), np.zeros((1, 1), np.float32)
    normal_scores = np.concatenate(
        [scorer(EngineOutput(embedding, logits, fresh[i : i + 1])) for i in range(50)]
    )
    fault_scores = scorer(EngineOutput(np.zeros((5, 4)), np.zeros((5, 1)), between))
    assert fault_scores.shape == (5,)
    assert fault_scores.min() > normal_scores.max()


def test_the_twfr_scorer_refuses_outputs_without_logmel():
    model = fit_twfr(np.random.default_rng(7).normal(size=(20, 3, 9)), r=1.0, n_components=1)
    with pytest.raises(ValueError, match="logmel"):
        TwfrScorer(model)(EngineOutput(np.zeros((1, 4)), np.zeros((1, 1))))


def test_few_windows_in_many_bands_choose_strong_regularisation_and_many_choose_weak():
    rng = np.random.default_rng(8)
    mixing = rng.normal(size=(4, 32))  # 32 bands driven by 4 sources: strongly correlated

    def pooled(n: int) -> np.ndarray:
        x = rng.normal(size=(n, 4)) @ mixing + 0.05 * rng.normal(size=(n, 32))
        return np.repeat(x[:, None, :], 2, axis=1)  # the same features at two r candidates

    _, few = select_pooled(pooled(12), np.arange(12), r_candidates=(0.0, 1.0))
    _, many = select_pooled(pooled(600), np.arange(600) // 60, r_candidates=(0.0, 1.0))
    assert few.reg_covar > many.reg_covar


def test_one_recording_is_split_into_halves_not_alternate_windows():
    # a slow drift: alternate windows would see the same part of it in both folds
    rng = np.random.default_rng(9)
    drift = np.linspace(0, 1, 40)[:, None, None]
    logmel = rng.normal(size=(40, 3, 10)) * 0.1 + drift
    _, choice = select_twfr(logmel, np.zeros(40), r_candidates=(1.0,), component_candidates=(1,))
    alternate = select_twfr(
        logmel, np.arange(40) % 2, r_candidates=(1.0,), component_candidates=(1,)
    )[1]
    # held out on the other half of a drift is a harder test than on interleaved neighbours
    assert max(choice.held_out.values()) < max(alternate.held_out.values())


def test_with_too_few_windows_to_judge_the_safest_candidate_is_taken():
    logmel = np.random.default_rng(10).normal(size=(2, 4, 20))
    model, choice = select_twfr(logmel, np.array([0, 1]))  # each fold would fit on one window
    assert not np.isfinite(list(choice.held_out.values())).any()
    assert (choice.r, choice.n_components, choice.reg_covar) == (1.0, 1, 1.0)
    assert np.isfinite(model.scores(logmel)).all()


def test_a_band_that_never_changes_does_not_turn_a_hundredth_of_a_db_into_an_alarm():
    rng = np.random.default_rng(11)
    logmel = rng.normal(size=(30, 4, 20))
    logmel[:, 0] = -100.0  # digital silence in band 0
    model = fit_twfr(logmel, r=1.0, n_components=1)
    nudged = logmel[:3].copy()
    nudged[:, 0] += 0.01
    change = model.scores(nudged) - model.scores(logmel[:3])
    assert np.abs(change).max() < 1.0  # nats; normal windows spread over several
    assert np.std(model.scores(logmel)) > 1.0
