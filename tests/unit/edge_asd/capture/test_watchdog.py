"""When the device watchdog declares a stream dead, and its reopen backoff."""

from __future__ import annotations

from edge_asd.capture.watchdog import Backoff, stream_problem


def test_a_stream_that_delivers_audio_is_healthy():
    assert stream_problem(100.0, 50.0, 99.5, False, stall_seconds=2.0) is None


def test_a_stream_without_audio_for_longer_than_the_stall_time_is_dead():
    problem = stream_problem(100.0, 50.0, 97.0, False, stall_seconds=2.0)
    assert problem == "no audio from the device for 3.0 s"


def test_a_fresh_stream_is_given_the_stall_time_to_deliver():
    assert stream_problem(100.0, 99.0, None, False, stall_seconds=2.0) is None
    assert stream_problem(100.0, 99.0, 40.0, False, stall_seconds=2.0) is None  # old stream's
    assert "for 2.5 s" in stream_problem(100.0, 97.5, None, False, stall_seconds=2.0)


def test_a_stream_portaudio_finished_is_dead_at_once():
    assert "stopped" in stream_problem(100.0, 99.9, 99.9, True, stall_seconds=2.0)


def test_backoff_doubles_up_to_its_cap_and_resets():
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
