"""The decider: k-of-n confirmation, m-window hysteresis, rate-limited updates, unknown."""

from __future__ import annotations

import math

import pytest

from edge_asd.decider import ANOMALY, END, NORMAL, START, UNKNOWN, UPDATE, Decider

LOW, HIGH = 0.1, 0.9  # scores either side of the threshold 0.5


def run(decider: Decider, scores: list[float], first_ts: float = 0.0, rms=None) -> list[tuple]:
    """Feed scores at 1 s apart; returns (window index, event) for every event."""
    out = []
    for i, score in enumerate(scores):
        for event in decider.feed(score, first_ts + i, rms=rms):
            out.append((i, event))
    return out


def types(events: list[tuple]) -> list[tuple[int, str]]:
    return [(i, e.type) for i, e in events]


def test_fewer_than_k_of_n_above_opens_nothing():
    decider = Decider(0.5, k=3, n=5, m_close=2)
    # never 3 above in any 5 consecutive windows
    scores = [HIGH, LOW, LOW, LOW, HIGH, LOW, LOW, LOW, HIGH, HIGH, LOW, LOW, LOW, HIGH]
    assert run(decider, scores) == []
    assert decider.state == NORMAL


def test_k_of_n_above_opens_an_event_at_the_kth_window():
    decider = Decider(0.5, k=3, n=5, m_close=2)
    events = run(decider, [LOW, HIGH, LOW, HIGH, LOW, HIGH, LOW])
    assert types(events) == [(5, START)]
    start = events[0][1]
    assert start.started_at == 1.0  # the first above-threshold window among the n
    assert start.ended_at is None
    assert start.score == HIGH and start.peak_score == HIGH and start.threshold == 0.5
    assert start.windows_above == 3
    assert decider.state == ANOMALY


def test_windows_above_that_fell_out_of_the_last_n_do_not_count():
    decider = Decider(0.5, k=2, n=3, m_close=1)
    assert run(decider, [HIGH, LOW, LOW, HIGH, LOW, LOW, HIGH]) == []


def test_equal_to_threshold_is_not_above():
    decider = Decider(0.5, k=1, n=1, m_close=1)
    assert run(decider, [0.5, 0.5, 0.5]) == []


def test_m_consecutive_below_close_it_and_fewer_do_not():
    decider = Decider(0.5, k=2, n=2, m_close=3)
    scores = [HIGH, HIGH, LOW, LOW, HIGH, LOW, LOW, LOW, LOW]
    events = run(decider, scores)
    assert types(events) == [(1, START), (7, END)]
    start, end = events[0][1], events[1][1]
    assert end.event_id == start.event_id
    assert end.started_at == 0.0 and end.ended_at == 5.0  # first of the 3 closing windows
    assert end.score == LOW
    assert decider.state == NORMAL


def test_hysteresis_keeps_a_borderline_machine_from_flapping():
    # alternating above/below: with k=n=1 and m=1 every pair would open and close an
    # event; a 2-window close keeps one event open throughout
    flappy = Decider(0.5, k=1, n=1, m_close=1)
    steady = Decider(0.5, k=1, n=1, m_close=2)
    scores = [HIGH, LOW] * 10
    assert sum(e.type == START for _, e in run(flappy, scores)) == 10
    assert types(run(steady, scores)) == [(0, START)]
    assert steady.state == ANOMALY


def test_after_an_end_a_new_event_needs_k_fresh_windows_above():
    decider = Decider(0.5, k=3, n=5, m_close=2)
    scores = [HIGH, HIGH, HIGH, LOW, LOW, HIGH, HIGH, HIGH]
    events = run(decider, scores)
    assert types(events) == [(2, START), (4, END), (7, START)]
    assert events[0][1].event_id != events[2][1].event_id
    assert events[2][1].started_at == 5.0


def test_peak_score_follows_the_highest_window_and_updates_are_rate_limited():
    decider = Decider(0.5, k=1, n=1, m_close=1, update_min_windows=3, update_every_windows=100)
    scores = [0.6, 0.7, 0.8, 0.9, 0.85, 0.95, 0.8, 0.8, 0.8, 0.99, LOW]
    events = run(decider, scores)
    # new peaks at 1, 2 and 3 are too soon after the start; the peak at 3 is the first 3
    # windows after it; 5 is a new peak only 2 windows after 3; 9 is one 6 windows after
    assert types(events) == [(0, START), (3, UPDATE), (9, UPDATE), (10, END)]
    assert [e.peak_score for _, e in events] == [0.6, 0.9, 0.99, 0.99]
    assert [e.score for _, e in events] == [0.6, 0.9, 0.99, LOW]


def test_a_long_anomaly_sends_a_heartbeat_update_every_n_windows():
    decider = Decider(0.5, k=1, n=1, m_close=1, update_min_windows=5, update_every_windows=10)
    events = run(decider, [HIGH] * 35)
    assert types(events) == [(0, START), (10, UPDATE), (20, UPDATE), (30, UPDATE)]
    assert {e.event_id for _, e in events} == {events[0][1].event_id}
    assert events[-1][1].windows_above == 31


def test_below_threshold_windows_inside_an_event_give_no_update():
    decider = Decider(0.5, k=1, n=1, m_close=50, update_min_windows=1, update_every_windows=2)
    events = run(decider, [HIGH] + [LOW] * 20)
    assert types(events) == [(0, START)]


def test_silent_input_is_unknown_and_ends_an_open_event():
    decider = Decider(0.5, k=1, n=2, m_close=3, rms_gate=0.01)
    assert decider.state == UNKNOWN  # nothing heard yet
    assert decider.feed(HIGH, 0.0, rms=0.2)[0].type == START
    events = decider.feed(HIGH, 1.0, rms=0.001)
    assert [e.type for e in events] == [END]
    assert events[0].ended_at == 1.0
    assert decider.state == UNKNOWN
    # silence again: still unknown, nothing more to end
    assert decider.feed(LOW, 2.0, rms=0.0) == []
    assert decider.state == UNKNOWN
    assert decider.feed(LOW, 3.0, rms=0.2) == []
    assert decider.state == NORMAL


def test_windows_before_unknown_do_not_count_towards_k():
    decider = Decider(0.5, k=2, n=5, m_close=1, rms_gate=0.01)
    assert decider.feed(HIGH, 0.0, rms=0.5) == []
    decider.feed(HIGH, 1.0, rms=0.0)  # silent
    assert decider.feed(HIGH, 2.0, rms=0.5) == []
    assert [e.type for e in decider.feed(HIGH, 3.0, rms=0.5)] == [START]


def test_without_a_gate_or_an_rms_silence_is_scored_normally():
    decider = Decider(0.5, k=1, n=1, m_close=1)
    assert [e.type for e in decider.feed(HIGH, 0.0, rms=0.0)] == [START]
    gated = Decider(0.5, k=1, n=1, m_close=1, rms_gate=0.01)
    assert [e.type for e in gated.feed(HIGH, 0.0)] == [START]


def test_input_down_makes_the_state_unknown():
    decider = Decider(0.5, k=1, n=1, m_close=1)
    decider.feed(LOW, 0.0)
    assert decider.input_down(1.0) == []
    assert decider.state == UNKNOWN


def test_a_non_finite_score_is_unknown_not_an_alarm():
    decider = Decider(0.5, k=1, n=1, m_close=1)
    assert decider.feed(math.nan, 0.0) == []
    assert decider.feed(math.inf, 1.0) == []
    assert decider.state == UNKNOWN


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"k": 0, "n": 3}, r"^need 1 <= k <= n, got k=0, n=3$"),
        ({"k": 4, "n": 3}, r"^need 1 <= k <= n, got k=4, n=3$"),
        ({"m_close": 0}, r"^m_close and the update intervals must be >= 1$"),
        ({"update_min_windows": 0}, r"^m_close and the update intervals must be >= 1$"),
        ({"update_every_windows": 0}, r"^m_close and the update intervals must be >= 1$"),
        ({"threshold": math.inf}, r"^threshold must be finite, got inf$"),
    ],
)
def test_impossible_settings_are_refused_saying_which(settings, message):
    # the daemon puts this message after the config's place (daemon/wiring.py)
    with pytest.raises(ValueError, match=message):
        Decider(**{"threshold": 0.5, "k": 1, "n": 3, "m_close": 1, **settings})


def test_the_daemons_update_cadence_is_a_new_peak_after_five_windows_or_every_thirty():
    decider = Decider(0.5, k=1, n=1, m_close=1)  # the intervals as the daemon leaves them
    rising = [0.6 + 0.01 * i for i in range(8)]
    assert types(run(decider, rising)) == [(0, START), (5, UPDATE)]
    flat = Decider(0.5, k=1, n=1, m_close=1)
    assert types(run(flat, [HIGH] * 62)) == [(0, START), (30, UPDATE), (60, UPDATE)]


def test_a_level_exactly_at_the_gate_is_heard_not_silent():
    decider = Decider(0.5, k=1, n=1, m_close=1, rms_gate=0.01)
    assert [e.type for e in decider.feed(HIGH, 0.0, rms=0.01)] == [START]
    assert decider.state == ANOMALY


def test_every_end_says_why_the_event_ended():
    closed = Decider(0.5, k=1, n=1, m_close=2)
    ends = [e for _, e in run(closed, [HIGH, LOW, LOW]) if e.type == END]
    assert [e.reason for e in ends] == ["normal"]  # m_close windows below
    silenced = Decider(0.5, k=1, n=1, m_close=2, rms_gate=0.01)
    silenced.feed(HIGH, 0.0, rms=0.5)
    assert [e.reason for e in silenced.feed(HIGH, 1.0, rms=0.0)] == ["unknown"]
    started = [e for _, e in run(Decider(0.5, k=1, n=1, m_close=2), [HIGH])]
    assert [e.reason for e in started] == [None]  # a start has no reason


@pytest.mark.parametrize("reason", ["stopped", "maintenance"])
def test_reset_ends_the_open_event_with_the_callers_reason_and_forgets_k_of_n(reason):
    decider = Decider(0.5, k=2, n=3, m_close=5)
    run(decider, [HIGH, HIGH])
    opened = decider.event_id
    (end,) = decider.reset(7.0, reason)
    assert (end.type, end.event_id, end.reason, end.ended_at) == (END, opened, reason, 7.0)
    assert decider.state == UNKNOWN and decider.event_id is None
    # The two windows above before the reset do not count: one more is not k=2.
    assert decider.feed(HIGH, 8.0) == []
    assert [e.type for e in decider.feed(HIGH, 9.0)] == [START]
    assert decider.reset(10.0, reason)[0].reason == reason
    assert decider.reset(11.0, reason) == []  # nothing open: nothing to end


def test_reset_refuses_a_reason_consumers_do_not_know():
    with pytest.raises(ValueError, match=r"^unknown end reason 'later'; expected one of \("):
        Decider(0.5, k=1, n=1, m_close=1).reset(0.0, "later")
