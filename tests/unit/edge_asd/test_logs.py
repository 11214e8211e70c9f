"""Logs that help: a repeated warning is counted, a library's noise is filtered around a call."""

from __future__ import annotations

import logging
import warnings

import pytest

from edge_asd.logs import RepeatedWarning, library_noise_filtered

log = logging.getLogger("tests.logs")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tests.logs"]


def test_a_repeated_warning_is_logged_once_then_summarised_with_its_count(caplog):
    clock = Clock()
    fell_behind = RepeatedWarning(log, "resampler fell behind", 60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="tests.logs"):
        for i in range(539):  # one every 0.1 s, for 53.9 s: within the first minute
            fell_behind.occurred(f"skipped {i} frames")
            clock.now += 0.1
        assert messages(caplog) == ["resampler fell behind: skipped 0 frames"]
        clock.now = 1060.5
        fell_behind.occurred("skipped 539 frames")  # the minute is over: the summary comes

    assert messages(caplog)[1:] == [
        "resampler fell behind 538 more times in the last 60 s (latest: skipped 538 frames)"
    ]
    assert caplog.records[-1].levelno == logging.WARNING


def test_the_final_count_is_logged_when_the_repeated_warning_stops(caplog):
    clock = Clock()
    full = RepeatedWarning(log, "outbox full", 60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="tests.logs"):
        for _ in range(5):
            full.occurred("dropped the oldest")
            clock.now += 1.0
        full.close()

    assert messages(caplog) == [
        "outbox full: dropped the oldest",
        "outbox full 5 times in all, 4 of them since the last line (latest: dropped the oldest)",
    ]
    assert full.total == 5


def test_a_warning_after_a_quiet_interval_is_news_again_and_a_single_one_has_no_count(caplog):
    clock = Clock()
    repeated = RepeatedWarning(log, "input gap", 60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="tests.logs"):
        repeated.occurred("first")
        clock.now += 61.0
        repeated.poll()  # nothing was counted: no summary line
        clock.now += 100.0
        repeated.occurred("second")
        repeated.close()

    assert messages(caplog) == ["input gap: first", "input gap: second", "input gap 2 times in all"]


def test_a_summary_is_due_by_poll_without_a_new_occurrence(caplog):
    clock = Clock()
    repeated = RepeatedWarning(log, "resampler fell behind", 60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="tests.logs"):
        for _ in range(3):
            repeated.occurred("x")
        clock.now += 60.0
        repeated.poll()
    assert messages(caplog)[-1] == "resampler fell behind 2 more times in the last 60 s (latest: x)"


def library_call() -> None:
    """A stand-in for a library: a deprecation of its internals, a real warning, log lines."""
    warnings.warn("`LeafSpec` is deprecated", FutureWarning, stacklevel=1)
    warnings.warn("the input is clipped", UserWarning, stacklevel=1)
    logging.getLogger("tests.library.registry").warning("torchvision is not installed")
    logging.getLogger("tests.library.registry").error("a real failure")


def test_library_noise_is_filtered_around_the_call_and_real_problems_still_show(caplog):
    registry = logging.getLogger("tests.library.registry")
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with library_noise_filtered(
            "the library", {"tests.library.registry": logging.ERROR}, log=log
        ):
            library_call()
        assert registry.level == logging.NOTSET  # restored: nothing filtered after the call
        warnings.warn("`LeafSpec` is deprecated", FutureWarning, stacklevel=1)

    assert [(w.category, str(w.message)) for w in shown] == [
        (UserWarning, "the input is clipped"),
        (FutureWarning, "`LeafSpec` is deprecated"),  # outside the call: shown
    ]
    library_lines = [r.getMessage() for r in caplog.records if r.name == registry.name]
    assert library_lines == ["a real failure"]
    (debug,) = [r for r in caplog.records if r.name == "tests.logs"]
    assert debug.levelno == logging.DEBUG
    assert "tests.library.registry below ERROR" in debug.getMessage()
    assert "FutureWarning: `LeafSpec` is deprecated" in debug.getMessage()
