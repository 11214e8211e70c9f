"""Logs that help the person reading them: a repeated warning is counted, not repeated, and
a library's noise is filtered where the product calls that library.

- `RepeatedWarning(log, "resampler fell behind")`, for a warning that can come once per
  block, window, event or retry: the first occurrence is logged as it is, the ones after
  it are counted and logged as at most one line per `interval_seconds` ("resampler fell
  behind 538 more times in the last 60 s (latest: ...)"), and `close()` logs the total.
- `library_noise_filtered("torch.onnx.export", loggers={...})`, around one call into a
  third-party library: the warnings of the given categories it raises (deprecations
  inside the library, which its user cannot act on) and its named loggers' records below
  the given levels are dropped, and one DEBUG line says what was. Other warnings and
  errors pass as they would have; nothing is filtered outside the `with` block.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping

SUMMARY_INTERVAL_SECONDS = 60.0  # at most one line per minute for a warning that repeats
LIBRARY_DEPRECATIONS = (FutureWarning, DeprecationWarning, PendingDeprecationWarning)


def _times(count: int, more: str = "") -> str:
    return f"{count} {more}{'time' if count == 1 else 'times'}"


class RepeatedWarning:
    """One kind of warning that may repeat many times a second, logged at a bounded rate.

    `occurred(detail)` logs "<what>: <detail>" the first time, and again after a whole
    `interval_seconds` without one; in between, occurrences are counted and a summary
    "<what> N more times in the last S s (latest: <detail>)" is logged once the interval
    has passed (at the next occurrence or `poll()`). `close()` logs what is still counted
    and the total. Thread-safe; `clock` returns seconds (time.monotonic by default).
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        interval_seconds: float = SUMMARY_INTERVAL_SECONDS,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.logger = logger
        self.what = what
        self.interval_seconds = interval_seconds
        self.level = level
        self._clock = clock
        self._lock = threading.Lock()
        self._total = 0
        self._pending = 0  # counted since the last line, not logged yet
        self._latest = ""
        self._interval_start: float | None = None  # None: the next one is logged in full

    @property
    def total(self) -> int:
        """Occurrences since this was made."""
        return self._total

    def occurred(self, detail: str) -> None:
        """One more occurrence; `detail` says what happened this time (with numbers)."""
        with self._lock:
            now = self._clock()
            self._summarise_if_due(now)
            self._total += 1
            self._latest = detail
            if self._interval_start is None:
                self._interval_start = now
                self.logger.log(self.level, "%s: %s", self.what, detail)
            else:
                self._pending += 1

    def poll(self) -> None:
        """Log the summary if one is due; call it from a loop that runs when nothing occurs."""
        with self._lock:
            self._summarise_if_due(self._clock())

    def close(self) -> None:
        """Log the occurrences still counted and the total (when there was more than one)."""
        with self._lock:
            if self._pending:
                self.logger.log(
                    self.level,
                    "%s %s in all, %d of them since the last line (latest: %s)",
                    self.what,
                    _times(self._total),
                    self._pending,
                    self._latest,
                )
            elif self._total > 1:
                self.logger.log(self.level, "%s %s in all", self.what, _times(self._total))
            self._pending = 0
            self._interval_start = None

    def _summarise_if_due(self, now: float) -> None:
        start = self._interval_start
        if start is None or now - start < self.interval_seconds:
            return
        if self._pending == 0:  # a quiet interval: the next one is news again
            self._interval_start = None
            return
        self.logger.log(
            self.level,
            "%s %s in the last %.0f s (latest: %s)",
            self.what,
            _times(self._pending, "more "),
            now - start,
            self._latest,
        )
        self._pending = 0
        self._interval_start = now


@contextlib.contextmanager
def library_noise_filtered(
    library: str,
    loggers: Mapping[str, int] | None = None,
    categories: tuple[type[Warning], ...] = LIBRARY_DEPRECATIONS,
    log: logging.Logger | None = None,
) -> Iterator[None]:
    """Within the block, drop `library`'s noise: warnings of `categories`, and records of
    each logger in `loggers` below its level (name -> level, e.g. logging.ERROR).

    Only for a call the product makes into a library that talks to its own developers
    (deprecations of its internals, optional extras it skips). Other warnings are shown
    as they would have been, after the block; exceptions pass unchanged. One DEBUG line
    on `log` (this module's by default) lists the warnings dropped and the loggers quieted.
    """
    log = log or logging.getLogger(__name__)
    levels = dict(loggers or {})
    quieted = {name: logging.getLogger(name) for name in levels}
    levels_before = {name: logger.level for name, logger in quieted.items()}
    for name, logger in quieted.items():
        logger.setLevel(max(levels[name], logger.getEffectiveLevel()))
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield
    finally:
        for name, logger in quieted.items():
            logger.setLevel(levels_before[name])
        _show_the_rest(library, caught, categories, levels, log)


def _show_the_rest(
    library: str,
    caught: list[warnings.WarningMessage],
    categories: tuple[type[Warning], ...],
    levels: Mapping[str, int],
    log: logging.Logger,
) -> None:
    """Show the warnings not of `categories` again; one DEBUG line for what was filtered."""
    dropped = [w for w in caught if issubclass(w.category, categories)]
    for w in caught:
        if not issubclass(w.category, categories):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    if dropped or levels:
        log.debug(
            "%s: loggers quieted: %s; %d warning(s) dropped%s",
            library,
            ", ".join(f"{n} below {logging.getLevelName(lv)}" for n, lv in levels.items())
            or "none",
            len(dropped),
            "".join(f"\n  {w.category.__name__}: {w.message}" for w in dropped),
        )
