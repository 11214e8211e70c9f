"""Recent: the audio tail is the stream's own samples, stitched from overlapping windows."""

from __future__ import annotations

import numpy as np

from edge_asd.daemon.recent import Recent, ScorePoint

RATE, WINDOW, HOP = 100, 1000, 2.0  # 10 s windows every 2 s at 100 Hz


def point(t: float, score: float = 1.0) -> ScorePoint:
    return ScorePoint(t, score, 2.0, "normal", None)


def feed(recent: Recent, stream: np.ndarray, ends: list[int]) -> None:
    for end in ends:
        recent.add(stream[end - WINDOW : end], end, point(end / RATE))


def test_the_audio_tail_of_overlapping_windows_is_the_stream_they_came_from():
    stream = np.arange(5000, dtype=np.float32)
    recent = Recent(RATE, WINDOW, HOP, n=3)  # keeps 10 s + 2 hops = 14 s
    feed(recent, stream, [1000, 1200, 1400, 1600, 1800])
    assert np.array_equal(recent.opening()[0], stream[1800 - 1400 : 1800])
    assert np.array_equal(recent.opening()[0][-300:], stream[1500:1800])


def test_a_gap_between_windows_restarts_the_tail_instead_of_joining_distant_audio():
    stream = np.arange(9000, dtype=np.float32)
    recent = Recent(RATE, WINDOW, HOP, n=3)
    feed(recent, stream, [1000, 1200, 4000])  # 28 s skipped: windows lost
    assert np.array_equal(recent.opening()[0], stream[3000:4000])


def test_the_trace_keeps_the_last_trace_seconds_and_the_latest_window_its_audio():
    stream = np.arange(5000, dtype=np.float32)
    recent = Recent(RATE, WINDOW, HOP, n=3, trace_seconds=5.0)
    feed(recent, stream, [1000, 1200, 1400, 1600, 1800])
    assert [p.time for p in recent.trace()] == [14.0, 16.0, 18.0]
    assert [p.time for p in recent.trace(since=15.0)] == [16.0, 18.0]
    latest = recent.latest()
    assert latest is not None and np.array_equal(latest.waveform, stream[800:1800])


def test_the_trace_stays_bounded_when_the_wall_clock_is_set_back_a_day():
    stream = np.zeros(1000, dtype=np.float32)
    recent = Recent(RATE, WINDOW, HOP, n=3, trace_seconds=10.0)  # 5 hops: at most 6 points
    now = 1_800_000_000.0
    for i in range(10):
        recent.add(stream, 1000 + 200 * i, point(now + HOP * i))
    for i in range(1000):  # NTP steps the clock back a day: every point is "future" then
        recent.add(stream, 3000 + 200 * i, point(now - 86400 + HOP * i))
    times = [p.time for p in recent.trace()]
    assert len(times) <= 6
    assert times == sorted(times) and times[-1] == now - 86400 + HOP * 999


def test_the_opening_audio_is_at_most_max_opening_seconds_with_a_long_n_and_hop():
    from edge_asd.daemon.recent import MAX_OPENING_SECONDS

    recent = Recent(RATE, WINDOW, hop_seconds=10.0, n=600)  # config allows 6000 s
    assert recent.tail_samples == round(MAX_OPENING_SECONDS * RATE)
    stream = np.arange(20_000, dtype=np.float32)
    feed(recent, stream, list(range(1000, 20_001, 1000)))
    assert np.array_equal(recent.opening()[0], stream[20_000 - 6000 : 20_000])


def test_the_opening_names_where_each_window_of_the_tail_ends():
    stream = np.arange(9000, dtype=np.float32)
    recent = Recent(RATE, WINDOW, HOP, n=3)  # 14 s: the last 3 windows lie in the tail
    feed(recent, stream, [1000, 1200, 1400, 1600, 3000, 3200, 3400])  # a gap before 3000
    tail, ends = recent.opening()
    assert np.array_equal(tail, stream[2000:3400])
    for end, scored in ends:
        frame = round(scored.time * RATE)  # point() puts the end frame in the time
        assert np.array_equal(tail[end - WINDOW : end], stream[frame - WINDOW : frame])
    assert [round(p.time * RATE) for _, p in ends] == [3000, 3200, 3400]
