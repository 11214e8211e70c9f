"""Thresholds: the gamma path, the empirical fallback, and the false-alarm target."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from edge_asd.calibration.false_alarms import AlarmModel, correlation_windows
from edge_asd.calibration.tail import fit_tail
from edge_asd.calibration.threshold import (
    NotEnoughAudio,
    _duration,
    choose_threshold,
    fit_gamma,
    ks_limit,
)
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
    assert (
        "the empirical tail (the gamma fit is poor; a tail fit needs at least 300 windows, "
        "120 were given)" in message
    )
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


def bimodal(seed: int = 1, per_mode: int = 2000, held: int = 1) -> np.ndarray:
    """Two narrow modes (1 and 3), shuffled, each value held for `held` windows: no gamma
    fits them, but the upper mode's tail is a smooth bump a Pareto tail can follow."""
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(1.0, 0.05, per_mode), rng.normal(3.0, 0.05, per_mode)])
    rng.shuffle(scores)
    return np.repeat(scores, held)


def test_a_missing_or_doubled_target_and_no_scores_are_refused_saying_so():
    one_of = r"^give exactly one of quantile and false_alarms_per_day$"
    with pytest.raises(ValueError, match=one_of):
        choose(gamma_runs(1, 100))
    with pytest.raises(ValueError, match=one_of):
        choose(gamma_runs(1, 100), quantile=0.9, false_alarms_per_day=1.0)
    for runs in ([], [np.array([0.2, np.nan, 0.3])]):
        with pytest.raises(ValueError, match=r"^need finite scores from at least one window$"):
            choose(runs, quantile=0.9)


@pytest.mark.parametrize("quantile", [0.0, 1.0])
def test_a_quantile_of_zero_or_one_is_a_usage_error(quantile):
    with pytest.raises(
        UserError, match=rf"^--quantile must be between 0 and 1, not {quantile}$"
    ) as caught:
        choose(gamma_runs(1, 100), quantile=quantile)
    assert caught.value.exit_code == 2  # a bad option, not a bad input file
    with pytest.raises(UserError, match=r"^--false-alarms-per-day: ") as caught:
        choose(gamma_runs(1, 100), false_alarms_per_day=0.0)
    assert caught.value.exit_code == 2


def test_thirty_independent_windows_are_enough_for_a_fitted_tail_and_twenty_nine_are_not():
    # windows that do not overlap (window = hop) are independent: one block each
    def at(n_windows, **target):
        scores = 0.2 + np.random.default_rng(0).gamma(3.0, 0.05, n_windows)
        return choose_threshold([scores], hop_seconds=1.0, window_seconds=1.0, k=3, n=5, **target)

    thirty = at(30, quantile=0.9)
    assert thirty.params["block_windows"] == 1 and thirty.warnings == ()
    # 1000 a day needs p = 0.15 per window: a gamma tail fitted on 30 windows is enough
    assert at(30, false_alarms_per_day=1000.0).method == "gamma_false_alarms"
    assert at(29, quantile=0.9).warnings == (
        "only about 29 independent windows of normal sound (fewer than 30): the 0.9 "
        "quantile is a rough estimate",
    )
    with pytest.raises(NotEnoughAudio, match=r"\(30 windows\), but only 29 windows were given"):
        at(29, false_alarms_per_day=1000.0)


def test_half_overlapping_windows_too_few_to_measure_count_as_blocks_of_two():
    # 30 windows give too few pairs to measure a correlation: assume the overlap's worst
    scores = 0.2 + np.random.default_rng(0).gamma(3.0, 0.05, 30)
    choice = choose_threshold([scores], hop_seconds=0.5, window_seconds=1.0, k=3, n=5, quantile=0.9)
    assert choice.params["block_windows"] == 2 and choice.params["independent_windows"] == 15.0
    assert choice.alarm_model.block_windows == 2


def test_calibration_yaml_records_the_measured_correlation_readably():
    runs = [np.repeat(gamma_runs(1, 1000)[0], 2)]  # tau about 2.03: blocks of 3
    choice = choose(runs, quantile=0.9)
    tau = correlation_windows(runs, 10)
    recorded = choice.params["correlation_windows"]
    assert recorded == pytest.approx(tau, abs=5e-4) and recorded == round(recorded, 3)
    independent = choice.params["independent_windows"]
    assert independent == pytest.approx(2000 / 3, abs=5e-3)
    assert independent == round(independent, 2)


def test_constant_scores_exceed_their_empirical_threshold_never_as_the_decider_counts():
    # the decider counts a window above the threshold, not at it
    choice = choose([np.full(50, 0.3)], quantile=0.9)
    assert choice.window_exceedance == 0.0 and choice.expected_false_alarms_per_day == 0.0
    assert choice.alarm_model.k == 3 and choice.alarm_model.n == 5
    assert choice.warnings[-1] == (
        "no gamma distribution could be fitted to the scores: using the empirical quantile"
    )


def test_a_poor_gamma_fit_warns_with_its_ks_statistic_and_limit():
    choice = choose([bimodal()], quantile=0.9)
    fit = choice.fit
    assert choice.warnings == (
        f"the gamma fit is poor (KS statistic {fit.ks_statistic:.3f} > {fit.ks_limit:.3f}): "
        "using the empirical quantile",
    )


def test_a_poor_gamma_fit_with_a_good_pareto_tail_sets_the_threshold_from_the_tail():
    scores = bimodal()
    choice = choose([scores], false_alarms_per_day=1.0)
    assert choice.method == "tail_false_alarms" and choice.warnings == ()
    p = choice.window_exceedance
    tail = fit_tail(scores, ks_limit)
    assert choice.threshold == pytest.approx(tail.isf(p))
    assert choice.params["tail"] == tail.to_dict() and choice.params["false_alarms_per_day"] == 1.0
    # about p of the normal windows exceed it (4000 p is about 50)
    assert np.mean(scores > choice.threshold) == pytest.approx(p, rel=0.3)


def test_when_both_fits_are_poor_the_empirical_tail_is_used_with_a_warning():
    scores = bimodal()
    # 1000 a day asks p = 0.15, beyond the Pareto tail's 10 %: the empirical quantile
    choice = choose([scores], false_alarms_per_day=1000.0)
    assert choice.method == "empirical_false_alarms"
    p = choice.window_exceedance
    assert choice.threshold == pytest.approx(np.quantile(scores, 1.0 - p))
    assert np.mean(scores > choice.threshold) == pytest.approx(p, abs=1e-3)
    assert choice.warnings == (
        f"the gamma fit is poor (KS statistic {choice.fit.ks_statistic:.3f} > "
        f"{choice.fit.ks_limit:.3f}): using the empirical quantile",
    )


def test_too_little_audio_says_which_tail_it_would_be_read_from():
    held = bimodal(per_mode=100, held=3)  # gamma poor, the Pareto tail good
    with pytest.raises(
        NotEnoughAudio, match=r"from the fitted Pareto tail \(the gamma fit is poor\), "
    ):
        choose_threshold(
            [held], hop_seconds=1.0, window_seconds=3.0, k=3, n=5, false_alarms_per_day=1.0
        )
    rng = np.random.default_rng(2)  # forty values held ten windows each: no tail fits them
    steps = np.repeat(np.concatenate([rng.normal(1.0, 0.05, 20), rng.normal(3.0, 0.05, 20)]), 10)
    with pytest.raises(NotEnoughAudio) as caught:
        choose([steps], false_alarms_per_day=1.0)
    assert (
        "from the empirical tail (the gamma fit is poor; the Pareto tail fit is poor too), "
        in str(caught.value)
    )


def test_too_little_audio_says_how_long_to_record_to_the_second():
    # 20 windows at a 0.5 s hop, 2.25 s long: blocks of 5 (too few pairs to measure); 20 a
    # day asks p = 0.0006, within 100x of 30 blocks: 150 windows, 149 hops + one window
    scores = 0.2 + np.random.default_rng(0).gamma(3.0, 0.05, 20)
    with pytest.raises(NotEnoughAudio) as caught:
        choose_threshold(
            [scores], hop_seconds=0.5, window_seconds=2.25, k=3, n=5, false_alarms_per_day=20.0
        )
    model = AlarmModel(0.5, 3, 5, block_windows=5)
    assert str(caught.value) == (
        f"20 false alarm(s) a day with {model.describe()} needs a per-window exceedance of "
        f"{model.exceedance_for(20.0):.2g}; to set that from the fitted gamma tail, about 77 s "
        "of normal sound is needed (150 windows), but only 20 windows were given. Record "
        "longer, add recordings, ask for more false alarms a day, or use --quantile."
    )


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(119, "119 s"), (120, "2 min"), (7199, "120 min"), (7200, "2.0 h"), (8101, "2.3 h")],
)
def test_how_much_audio_is_needed_is_said_in_seconds_minutes_or_hours(seconds, said):
    assert _duration(seconds) == said


def test_the_fit_describes_the_tail_and_density_of_the_fitted_gamma():
    fit = fit_gamma(np.concatenate(gamma_runs(1, 2000)))
    frozen = stats.gamma(fit.shape, loc=fit.loc, scale=fit.scale)
    x = np.array([0.25, 0.35, 0.5])
    np.testing.assert_allclose(fit.sf(x), frozen.sf(x))  # the report draws these
    np.testing.assert_allclose(fit.pdf(x), frozen.pdf(x))
    assert fit.sf(np.array([fit.ppf(0.9)]))[0] == pytest.approx(0.1)


def test_three_varying_scores_are_enough_to_fit_a_gamma_two_are_not():
    assert fit_gamma(np.array([0.2, 0.3, 0.5])) is not None
    assert fit_gamma(np.array([0.2, 0.3])) is None


def test_scores_of_a_gamma_anchored_at_zero_get_a_fit_anchored_at_zero():
    # shape below one: most scores near 0 (distances of a well-matched machine, say);
    # the zero-location fit describes them better than the free one
    scores = np.random.default_rng(0).gamma(0.6, 0.1, 2000)
    fit = fit_gamma(scores)
    assert fit.loc == 0.0 and fit.good
    assert fit.shape == pytest.approx(0.6, abs=0.05)
