"""Thresholds: the gamma path, the empirical fallback, and the false-alarm target."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from edge_asd.calibration.false_alarms import correlation_windows
from edge_asd.calibration.threshold import NotEnoughAudio, choose_threshold, fit_gamma
from edge_asd.errors import UserError

WINDOW_S = 10.0


def gamma_runs(n_recordings: int, windows: int, seed: int = 0) -> list[np.ndarray]:
    """Independent gamma(3, scale 0.05) scores shifted by 0.2, as separate recordings."""
    rng = np.random.default_rng(seed)
    return [0.2 + rng.gamma(3.0, 0.05, windows) for _ in range(n_recordings)]


def choose(runs, **target):
    return choose_threshold(runs, hop_seconds=1.0, window_seconds=WINDOW_S, k=3, n=5, **target)


def test_gamma_scores_get_the_gamma_quantile():
    runs = gamma_runs(10, 400)
    choice = choose(runs, quantile=0.9)
    assert choice.method == "gamma_quantile"
    assert choice.fit is not None and choice.fit.good
    truth = stats.gamma.ppf(0.9, 3.0, loc=0.2, scale=0.05)
    assert choice.threshold == pytest.approx(truth, rel=0.03)
    assert choice.threshold == pytest.approx(choice.fit.ppf(0.9))
    scores = np.concatenate(runs)
    assert np.mean(scores > choice.threshold) == pytest.approx(0.1, abs=0.015)
    assert choice.params["quantile"] == 0.9 and choice.params["fit_good"] is True


def test_the_dcase_quantile_would_alarm_hundreds_of_times_a_day():
    choice = choose(gamma_runs(10, 400), quantile=0.9)
    assert choice.window_exceedance == pytest.approx(0.1)
    assert choice.expected_false_alarms_per_day > 100


def test_bimodal_scores_fall_back_to_the_empirical_quantile():
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(1.0, 0.05, 2000), rng.normal(3.0, 0.05, 2000)])
    rng.shuffle(scores)
    choice = choose([scores], quantile=0.9)
    assert choice.method == "empirical_quantile"
    assert choice.fit is None or not choice.fit.good
    assert choice.threshold == pytest.approx(np.quantile(scores, 0.9))
    assert any("empirical" in w for w in choice.warnings)


def test_constant_scores_cannot_be_fitted_and_use_the_empirical_quantile():
    assert fit_gamma(np.full(50, 0.3)) is None
    choice = choose([np.full(50, 0.3)], quantile=0.9)
    assert choice.method == "empirical_quantile"
    assert choice.threshold == pytest.approx(0.3)


def test_the_fit_reports_its_ks_statistic_against_a_limit():
    fit = fit_gamma(np.concatenate(gamma_runs(1, 2000)))
    assert fit is not None
    assert 0 <= fit.ks_statistic < fit.ks_limit
    assert fit.ks_limit == pytest.approx(0.05)  # the floor, at 2000 windows


def test_false_alarm_target_sets_the_gamma_tail_at_the_decider_exceedance():
    runs = gamma_runs(20, 500)
    choice = choose(runs, false_alarms_per_day=1.0)
    assert choice.method == "gamma_false_alarms"
    model = choice.alarm_model
    assert model.block_windows == 1  # independent scores
    assert choice.expected_false_alarms_per_day == pytest.approx(1.0, rel=1e-6)
    p = choice.window_exceedance
    assert 86400 * 6 * p**3 * (1 - p) ** 3 == pytest.approx(1.0, rel=1e-6)
    assert choice.threshold == pytest.approx(choice.fit.isf(p))
    assert choice.threshold > choose(runs, quantile=0.9).threshold


def test_correlated_scores_need_a_higher_threshold_for_the_same_rate():
    rng = np.random.default_rng(5)
    independent = 0.2 + rng.gamma(3.0, 0.05, 20000)
    # the same marginal, but each value held for 10 windows (as heavy overlap does)
    correlated = np.repeat(independent[::10], 10)
    free = choose([independent], false_alarms_per_day=1.0)
    held = choose([correlated], false_alarms_per_day=1.0)
    assert held.alarm_model.block_windows == 10
    assert held.window_exceedance < free.window_exceedance / 10
    assert held.threshold > free.threshold


def needed_seconds(message: str) -> float:
    needed = re.search(r"about (\d+(?:\.\d+)?) (s|min|h) of normal sound is needed", message)
    assert needed is not None, message
    return float(needed.group(1)) * {"s": 1, "min": 60, "h": 3600}[needed.group(2)]


def test_too_little_audio_for_the_rate_says_how_much_is_needed():
    # two minutes of windows correlated as 90% overlap makes them: a moving sum of 10
    # gamma(3) draws is gamma(30) at every window, and shares 9 draws with its neighbour
    draws = np.random.default_rng(7).gamma(3.0, 0.01, 129)
    runs = [np.convolve(draws, np.ones(10), "valid")]
    block = math.ceil(correlation_windows(runs, 10))
    assert block >= 8
    with pytest.raises(NotEnoughAudio) as caught:
        choose(runs, false_alarms_per_day=1.0)
    message = str(caught.value)
    assert "the fitted gamma tail" in message and "--quantile" in message
    # 1 a day at 3-of-5 with b-window blocks: p = b / 86400 (any exceeding block alarms);
    # a fitted tail is trusted 100x beyond the data: 864 / b blocks = 864 windows, ~14.5 min
    assert "only 120 windows" in message
    assert needed_seconds(message) == pytest.approx(873, abs=31)


def test_a_poor_fit_is_not_extrapolated_so_a_day_of_audio_is_needed():
    # twelve values, each held for ten windows: a step function no gamma fits
    runs = [np.repeat(gamma_runs(1, 12)[0], 10)]
    with pytest.raises(NotEnoughAudio) as caught:
        choose(runs, false_alarms_per_day=1.0)
    message = str(caught.value)
    assert "the empirical tail (the gamma fit is poor; a tail fit needs at least 300 " in message
    assert needed_seconds(message) == pytest.approx(86400, rel=0.01)


def test_too_little_audio_with_a_quantile_is_only_a_warning():
    runs = gamma_runs(2, 12)  # a small DCASE-like set: 24 windows
    choice = choose(runs, quantile=0.9)
    assert np.isfinite(choice.threshold)
    assert any("rough estimate" in w for w in choice.warnings)


def test_out_of_range_targets_are_user_errors():
    with pytest.raises(UserError, match="between 0 and 1"):
        choose(gamma_runs(1, 100), quantile=1.5)
    with pytest.raises(UserError, match="false-alarms-per-day"):
        choose(gamma_runs(1, 100), false_alarms_per_day=-1.0)
    with pytest.raises(ValueError):
        choose(gamma_runs(1, 100))


def test_the_calibration_records_the_gamma_fit_under_its_parameter_names():
    runs = gamma_runs(2, 500)
    choice = choose(runs, quantile=0.99)
    fit = choice.fit
    assert choice.params["gamma"] == {
        "shape": fit.shape,
        "loc": fit.loc,
        "scale": fit.scale,
        "ks_statistic": fit.ks_statistic,
        "ks_limit": fit.ks_limit,
    }
    assert choice.params["fit_good"] is True and choice.params["block_windows"] == 1
    assert choice.params["quantile"] == 0.99
