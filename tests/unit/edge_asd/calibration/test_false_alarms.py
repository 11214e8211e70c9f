"""The false-alarm arithmetic: hand-checked cases, simulation, the correlation estimate, and
the promise kept by the decider the daemon runs on long generated normal streams."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.calibration.false_alarms import (
    SECONDS_PER_DAY,
    AlarmModel,
    correlation_windows,
    onset_probability,
)
from edge_asd.calibration.threshold import choose_threshold
from edge_asd.decider import START, Decider


def count_onsets(above: np.ndarray, k: int, n: int) -> int:
    """Steps at which `k of the last n above` becomes true (it was false one step before)."""
    counts = np.convolve(above.astype(int), np.ones(n, dtype=int))[: len(above)]
    condition = counts >= k
    return int(np.sum(condition[1:] & ~condition[:-1]) + condition[0])


def test_one_of_one_at_one_second_counts_up_crossings():
    model = AlarmModel(hop_seconds=1.0, k=1, n=1)
    p = 1e-4
    assert model.false_alarms_per_day(p) == pytest.approx(86400 * p * (1 - p))


def test_three_of_five_on_independent_windows_is_binomial():
    model = AlarmModel(hop_seconds=1.0, k=3, n=5)
    p = 0.01
    # C(4, 2) p^3 (1-p)^3 per window, 86400 windows a day
    assert model.false_alarms_per_day(p) == pytest.approx(86400 * 6 * p**3 * (1 - p) ** 3)


def test_a_block_as_long_as_the_window_makes_any_exceeding_block_an_alarm():
    model = AlarmModel(hop_seconds=1.0, k=3, n=5, block_windows=10)
    assert (model.block_k, model.block_n) == (1, 1)
    assert model.false_alarms_per_day(1e-3) == pytest.approx(8640 * 1e-3 * (1 - 1e-3))


def test_half_second_hop_doubles_the_windows_a_day():
    fast = AlarmModel(hop_seconds=0.5, k=1, n=1)
    slow = AlarmModel(hop_seconds=1.0, k=1, n=1)
    assert fast.false_alarms_per_day(1e-5) == pytest.approx(2 * slow.false_alarms_per_day(1e-5))


@pytest.mark.parametrize(("k", "n", "block"), [(1, 1, 1), (3, 5, 1), (2, 4, 1), (4, 10, 2)])
def test_onset_rate_matches_a_simulated_k_of_n_condition(k: int, n: int, block: int):
    rng = np.random.default_rng(k * 100 + n)
    p, n_blocks = 0.08, 400_000
    blocks = rng.random(n_blocks) < p
    above = np.repeat(blocks, block)  # each block's exceedance lasts `block` windows
    model = AlarmModel(hop_seconds=1.0, k=k, n=n, block_windows=block)
    expected_per_window = model.false_alarms_per_day(p) / SECONDS_PER_DAY
    observed_per_window = count_onsets(above, k, n) / len(above)
    assert observed_per_window == pytest.approx(expected_per_window, rel=0.05)


def normal_scores(rng: np.random.Generator, windows: int, overlap: int) -> np.ndarray:
    """Gamma-distributed window scores, each the mean of `overlap` consecutive draws: as
    correlated as windows that share audio over `overlap` hops."""
    draws = rng.gamma(4.0, 1.0, size=windows + overlap - 1)
    return np.convolve(draws, np.ones(overlap) / overlap, "valid")


def decider_starts(scores: np.ndarray, threshold: float, k: int, n: int) -> int:
    """Events the daemon's decider opens over the scores (m_close as calibrate's default)."""
    decider = Decider(threshold, k, n, m_close=5)
    return sum(
        event.type == START
        for i, score in enumerate(scores.tolist())
        for event in decider.feed(score, float(i))
    )


# (overlap windows, k, n, promised false alarms a day, allowed factor either way).
# Independent scores: the model is exact up to the m_close hysteresis, 1.25 is noise
# (about 200-500 events counted). Scores overlapping over 10 windows (a 10 s window at a
# 1 s hop): the block model is an approximation that measures 1.3-1.7 times the promise
# here, so 2 is the factor the calibration can honestly promise.
PROMISES = [(1, 1, 1, 50.0, 1.25), (1, 3, 5, 20.0, 1.25), (10, 3, 5, 20.0, 2.0)]


@pytest.mark.parametrize(("overlap", "k", "n", "per_day", "factor"), PROMISES)
def test_the_daemons_decider_raises_the_promised_false_alarms_a_day(
    overlap: int, k: int, n: int, per_day: float, factor: float
):
    rng = np.random.default_rng(overlap * 10 + k)
    calibration = [normal_scores(rng, 3600, overlap) for _ in range(20)]  # 20 h of normal sound
    choice = choose_threshold(
        calibration, hop_seconds=1.0, window_seconds=10.0, k=k, n=n, false_alarms_per_day=per_day
    )
    days = 10 if overlap == 1 else 20
    stream = normal_scores(rng, int(days * SECONDS_PER_DAY), overlap)
    measured = decider_starts(stream, choice.threshold, k, n) / days
    assert per_day / factor <= measured <= per_day * factor, (measured, choice.params)


def test_onset_probability_is_exact_for_independent_steps():
    # k = n = 2: onset at t needs x_t = x_{t-1} = 1 and x_{t-2} = 0
    assert onset_probability(0.3, 2, 2) == pytest.approx(0.3 * 0.3 * 0.7)
    with pytest.raises(ValueError):
        onset_probability(0.1, 3, 2)


@pytest.mark.parametrize("per_day", [0.1, 1.0, 24.0])
def test_exceedance_for_inverts_the_rate(per_day: float):
    model = AlarmModel(hop_seconds=1.0, k=3, n=5, block_windows=2)
    p = model.exceedance_for(per_day)
    assert 0 < p < model.max_exceedance
    assert model.false_alarms_per_day(p) == pytest.approx(per_day, rel=1e-9)


def test_one_alarm_a_day_at_one_of_one_needs_a_one_in_86400_window():
    p = AlarmModel(hop_seconds=1.0, k=1, n=1).exceedance_for(1.0)
    assert p == pytest.approx(1 / 86400, rel=1e-4)


def test_a_rate_beyond_what_the_decider_can_raise_is_refused():
    model = AlarmModel(hop_seconds=1.0, k=1, n=1)
    with pytest.raises(ValueError, match="more than"):
        model.exceedance_for(50_000.0)  # at most 86400 * 0.25 up-crossings a day


def test_independent_scores_have_a_correlation_of_one_window():
    scores = np.random.default_rng(0).normal(size=5000)
    assert correlation_windows([scores], max_windows=10) == 1.0


def test_a_ten_window_moving_average_is_correlated_over_the_whole_window():
    noise = np.random.default_rng(1).normal(size=5009)
    scores = np.convolve(noise, np.ones(10), "valid")
    assert correlation_windows([scores], max_windows=10) == 10.0


def test_an_ar1_process_gives_its_integrated_autocorrelation_time():
    rng = np.random.default_rng(2)
    scores = np.zeros(20000)
    for i in range(1, len(scores)):
        scores[i] = 0.5 * scores[i - 1] + rng.normal()
    # tau = (1 + rho) / (1 - rho) = 3, truncated where the lags sink into noise
    assert correlation_windows([scores], max_windows=10) == pytest.approx(3.0, abs=0.35)


def test_too_few_scores_give_the_pessimistic_correlation():
    scores = np.random.default_rng(3).normal(size=12)
    assert correlation_windows([scores], max_windows=10) == 10.0
    assert correlation_windows([np.ones(100)], max_windows=10) == 10.0


def test_a_level_that_differs_between_recordings_counts_as_correlation():
    # each recording sits at its own level: a persistent state, as correlated as it gets
    rng = np.random.default_rng(4)
    shifted = [rng.normal(size=300) + 5, rng.normal(size=300) - 5]
    assert correlation_windows(shifted, max_windows=10) == 10.0
    assert correlation_windows([rng.normal(size=300) for _ in range(2)], 10) == 1.0


def test_recordings_of_one_window_each_are_independent():
    # five 10 s clips: no two windows share audio, whatever the hop
    from edge_asd.calibration.false_alarms import correlation_windows

    runs = [np.array([float(i)]) for i in range(5)]
    assert correlation_windows(runs, 10) == 1.0
