"""Properties of the decider on random score streams (hypothesis), against a brute force.

The reference below re-derives every decision from the whole history of windows at each
step (which windows since the last reset are among the last n, how many of them are
above, where the run below the threshold began), rather than keeping the decider's
incremental state; the two must agree on every event, every field and every state.
Beside it, invariants a consumer relies on: an event starts before it ends, never two
starts without an end, updates and ends carry their start's id, nothing after `unknown`
counts towards k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_asd.decider import ANOMALY, END, NORMAL, START, UNKNOWN, UPDATE, Decider

THRESHOLD = 0.5
RMS_GATE = 0.01
SILENT = "silent"  # a window the RMS gate calls silent


@dataclass(frozen=True)
class Expected:
    """One event as the reference derives it (no id: ids are random)."""

    index: int
    type: str
    started_at: float
    ended_at: float | None
    score: float
    peak_score: float
    windows_above: int


@dataclass
class Opened:
    """The reference's current event: the first window above among the n that opened it,
    and the window of its last message."""

    first: int
    last_message: int


def finite(window) -> bool:
    return window != SILENT and math.isfinite(window)


def reference(
    windows: list, k: int, n: int, m_close: int, update_min: int, update_every: int
) -> tuple[list[Expected], list[str]]:
    """Every event and the state after each window, recomputed from the whole history."""
    events: list[Expected] = []
    states: list[str] = []
    reset = 0  # the first window that may count towards k: after the last end or unknown
    event: Opened | None = None

    def message(kind: str, i: int, last: int, ended_at: float | None = None) -> Expected:
        assert event is not None
        above = [j for j in range(event.first, last + 1) if windows[j] > THRESHOLD]
        return Expected(
            index=i,
            type=kind,
            started_at=float(event.first),
            ended_at=ended_at,
            score=windows[last],
            peak_score=max(windows[j] for j in above),
            windows_above=len(above),
        )

    for i, window in enumerate(windows):
        if not finite(window):
            if event is not None:  # unknown ends the event, stamped now
                events.append(message(END, i, last=i - 1, ended_at=float(i)))
            event, reset = None, i + 1
            states.append(UNKNOWN)
            continue
        if event is None:
            recent = range(max(reset, i - n + 1), i + 1)
            above = [j for j in recent if windows[j] > THRESHOLD]
            if len(above) >= k:
                event = Opened(first=above[0], last_message=i)
                events.append(message(START, i, last=i))
            states.append(NORMAL if event is None else ANOMALY)
            continue
        below = 0  # the run of windows not above the threshold that ends here
        while windows[i - below] <= THRESHOLD:
            below += 1
        if below >= m_close:
            events.append(message(END, i, last=i, ended_at=float(i - below + 1)))
            event, reset = None, i + 1
            states.append(NORMAL)
            continue
        if window > THRESHOLD:
            since = i - event.last_message
            earlier = [windows[j] for j in range(event.first, i) if windows[j] > THRESHOLD]
            new_peak = window > max(earlier)
            if (new_peak and since >= update_min) or since >= update_every:
                events.append(message(UPDATE, i, last=i))
                event.last_message = i
        states.append(ANOMALY)
    return events, states


def run_decider(decider: Decider, windows: list) -> tuple[list[tuple[int, object]], list[str]]:
    events, states = [], []
    for i, window in enumerate(windows):
        if window == SILENT:
            out = decider.feed(0.9, float(i), rms=RMS_GATE / 2)
        else:
            out = decider.feed(window, float(i), rms=1.0)
        events += [(i, event) for event in out]
        states.append(decider.state)
    return events, states


score = st.one_of(
    st.floats(0.0, 1.0, allow_nan=False),
    st.sampled_from([0.2, 0.8, THRESHOLD]),  # exactly at the threshold is not above
    st.just(math.nan),
    st.just(SILENT),
)
settings_ = st.tuples(
    st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), st.integers(1, 4), st.integers(1, 8)
)


@settings(max_examples=300, deadline=None)
@given(windows=st.lists(score, max_size=80), params=settings_)
def test_the_decider_agrees_with_a_brute_force_reference(windows, params):
    k, n, m_close, update_min, update_every = params
    k = min(k, n)
    decider = Decider(
        THRESHOLD, k, n, m_close, rms_gate=RMS_GATE,
        update_min_windows=update_min, update_every_windows=update_every,
    )  # fmt: skip
    got, states = run_decider(decider, windows)
    want, want_states = reference(windows, k, n, m_close, update_min, update_every)
    assert states == want_states
    assert [(i, e.type) for i, e in got] == [(e.index, e.type) for e in want]
    for (_, event), expected in zip(got, want, strict=True):
        assert event.started_at == expected.started_at
        assert event.ended_at == expected.ended_at
        assert event.score == expected.score
        assert event.peak_score == expected.peak_score
        assert event.windows_above == expected.windows_above
        assert event.threshold == THRESHOLD


@settings(max_examples=300, deadline=None)
@given(windows=st.lists(score, max_size=120), params=settings_)
def test_events_pair_up_start_before_end_and_never_overlap(windows, params):
    k, n, m_close, update_min, update_every = params
    k = min(k, n)
    decider = Decider(
        THRESHOLD, k, n, m_close, rms_gate=RMS_GATE,
        update_min_windows=update_min, update_every_windows=update_every,
    )  # fmt: skip
    events, states = run_decider(decider, windows)
    open_id = None
    last_message_at = None
    for i, event in events:
        if event.type == START:
            assert open_id is None, "two starts without an end"
            open_id, last_message_at = event.event_id, i
            assert event.started_at <= i and event.peak_score > THRESHOLD
            assert event.windows_above >= k
        else:
            assert event.event_id == open_id, f"{event.type} of an event that is not open"
            assert event.started_at <= (event.ended_at if event.type == END else i)
            if event.type == UPDATE:
                assert i - last_message_at >= min(update_min, update_every)
                assert windows[i] != SILENT and windows[i] > THRESHOLD
                last_message_at = i
            else:
                open_id = None
        assert event.peak_score >= event.threshold
    assert (open_id is not None) == (decider.state == ANOMALY)
    assert all(state in (NORMAL, ANOMALY, UNKNOWN) for state in states)


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(st.sampled_from([0.9, 0.1]), max_size=20),
    after=st.lists(st.sampled_from([0.9, 0.1]), max_size=20),
    k=st.integers(1, 5),
    n=st.integers(1, 8),
)
def test_windows_before_unknown_never_count_towards_k(before, after, k, n):
    k = min(k, n)
    decider = Decider(THRESHOLD, k, n, m_close=1)
    for i, value in enumerate(before):
        decider.feed(value, float(i))
    decider.input_down(100.0)
    for i, value in enumerate(after):
        for event in decider.feed(value, 200.0 + i):
            if event.type == START:
                recent = after[max(0, i - n + 1) : i + 1]
                assert sum(v > THRESHOLD for v in recent) >= k
                assert event.started_at >= 200.0  # opened by windows after the unknown
