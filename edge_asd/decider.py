"""The decider: turns one machine's stream of window scores into anomaly events.

A single window above the threshold is not an alarm: `k` of the last `n` windows must be
above it to open an event (`start`), and `m_close` consecutive windows below it to close
it (`end`); the gap between the two rules is the hysteresis that keeps a borderline
machine from flapping. While an event is open, anomalous windows give `update` events,
rate-limited so that an alarm lasting hours does not flood the broker:

- a window above the threshold whose score is a new peak of the event gives an update
  when at least `update_min_windows` windows have passed since the last message;
- otherwise an anomalous window gives an update when `update_every_windows` windows have
  passed since the last message (a heartbeat saying the fault goes on).

Windows below the threshold never give updates. The state is `normal`, `anomaly` or
`unknown`: unknown before the first window, while the RMS gate says the input is silent
(a stopped machine or a dead microphone says nothing about faults), when a score is not
finite, or when the caller says the input is down. Entering unknown ends an open event
and forgets the k-of-n history, so the windows after it must confirm an event afresh;
`reset` does the same for the caller's reasons (stop, maintenance). Every `end` says why
in `reason` (END_REASONS).

Pure logic, no I/O and no clock: timestamps are whatever the caller passes (the daemon
uses the window's end time in Unix seconds) and come back in the events unchanged.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from dataclasses import dataclass

NORMAL = "normal"
ANOMALY = "anomaly"
UNKNOWN = "unknown"

START = "start"
UPDATE = "update"
END = "end"

# Why an event ended (the `reason` of an `end`): m_close windows below the threshold, the
# input became unknown (silent, unusable or down), the daemon stopped cleanly, a restarted
# daemon found it open (the one before was killed or crashed), maintenance mode began.
END_NORMAL = "normal"
END_UNKNOWN = "unknown"
END_STOPPED = "stopped"
END_RESTART = "restart"
END_MAINTENANCE = "maintenance"
END_REASONS = (END_NORMAL, END_UNKNOWN, END_STOPPED, END_RESTART, END_MAINTENANCE)


@dataclass(frozen=True)
class DecisionEvent:
    """One event of an anomaly: `type` is start, update or end; `event_id` joins them.

    started_at is the timestamp of the first above-threshold window among the `n` that
    opened the event; ended_at (end only, else None) that of the first of the windows
    below the threshold that closed it, or the moment the input became unknown. score is
    the current window's score (the last one for an end), peak_score the event's highest.
    """

    type: str
    event_id: str
    started_at: float
    ended_at: float | None
    score: float
    peak_score: float
    threshold: float
    windows_above: int  # windows above the threshold since the event started
    reason: str | None = None  # end only: one of END_REASONS


class Decider:
    """k-of-n confirmation with m-window hysteresis over one machine's window scores."""

    def __init__(
        self,
        threshold: float,
        k: int,
        n: int,
        m_close: int,
        rms_gate: float | None = None,
        update_min_windows: int = 5,
        update_every_windows: int = 30,
    ) -> None:
        """threshold: a score above it is anomalous; rms_gate: full-scale RMS (0..1) below
        which a window counts as silent (None: no gate). Raises ValueError unless
        1 <= k <= n, m_close >= 1 and both update intervals are >= 1."""
        if not (1 <= k <= n):
            raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
        if m_close < 1 or update_min_windows < 1 or update_every_windows < 1:
            raise ValueError("m_close and the update intervals must be >= 1")
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        self.threshold = float(threshold)
        self.k, self.n, self.m_close = k, n, m_close
        self.rms_gate = rms_gate
        self.update_min_windows = update_min_windows
        self.update_every_windows = update_every_windows
        self.state = UNKNOWN
        self._recent: deque[tuple[bool, float, float]] = deque(maxlen=n)  # above, ts, score
        self._event: _OpenEvent | None = None

    @property
    def event_id(self) -> str | None:
        """The id of the open event, or None."""
        return self._event.event_id if self._event else None

    def feed(self, score: float, timestamp: float, rms: float | None = None) -> list[DecisionEvent]:
        """Take one window's score; returns the events it causes (often none)."""
        silent = self.rms_gate is not None and rms is not None and rms < self.rms_gate
        if silent or not math.isfinite(score):
            return self.input_down(timestamp)
        above = score > self.threshold
        self._recent.append((above, timestamp, score))
        if self._event is None:
            return self._while_normal(score)
        return self._while_anomalous(score, above, timestamp)

    def input_down(self, timestamp: float) -> list[DecisionEvent]:
        """The input is silent, dead or unusable: state unknown; ends an open event."""
        return self.reset(timestamp, END_UNKNOWN)

    def reset(self, timestamp: float, reason: str) -> list[DecisionEvent]:
        """Forget the k-of-n history and end an open event (its `end` names `reason`).

        The state becomes unknown until the next window, so only fresh windows can open
        an event. Used when the input goes down, the daemon stops, maintenance begins or
        ends. Raises ValueError for a reason not in END_REASONS.
        """
        if reason not in END_REASONS:
            raise ValueError(f"unknown end reason {reason!r}; expected one of {END_REASONS}")
        self.state = UNKNOWN
        self._recent.clear()
        if self._event is None:
            return []
        event, self._event = self._event, None
        return [event.message(END, self.threshold, ended_at=timestamp, reason=reason)]

    def _while_normal(self, score: float) -> list[DecisionEvent]:
        self.state = NORMAL
        above_scores = [(ts, s) for above, ts, s in self._recent if above]
        if len(above_scores) < self.k:
            return []
        self._event = _OpenEvent(
            event_id=str(uuid.uuid4()),
            started_at=above_scores[0][0],
            score=score,
            peak_score=max(s for _, s in above_scores),
            windows_above=len(above_scores),
        )
        self.state = ANOMALY
        return [self._event.message(START, self.threshold)]

    def _while_anomalous(self, score: float, above: bool, timestamp: float) -> list[DecisionEvent]:
        event = self._event
        assert event is not None
        event.last_score = score
        event.windows_since_message += 1
        if not above:
            event.below_run += 1
            if event.below_run == 1:
                event.first_below_at = timestamp
            if event.below_run < self.m_close:
                return []
            self._event = None
            self._recent.clear()  # the next event needs k fresh windows above
            self.state = NORMAL
            end = event.message(END, self.threshold, event.first_below_at, END_NORMAL)
            return [end]
        event.below_run = 0
        event.windows_above += 1
        new_peak = score > event.peak_score
        event.peak_score = max(event.peak_score, score)
        since = event.windows_since_message
        if (new_peak and since >= self.update_min_windows) or since >= self.update_every_windows:
            return [event.message(UPDATE, self.threshold)]
        return []


class _OpenEvent:
    """What the decider remembers about the event in progress."""

    def __init__(
        self, event_id: str, started_at: float, score: float, peak_score: float, windows_above: int
    ) -> None:
        self.event_id = event_id
        self.started_at = started_at
        self.last_score = score
        self.peak_score = peak_score
        self.windows_above = windows_above
        self.below_run = 0
        self.first_below_at = started_at
        self.windows_since_message = 0

    def message(
        self,
        kind: str,
        threshold: float,
        ended_at: float | None = None,
        reason: str | None = None,
    ) -> DecisionEvent:
        """The event as of now; counts as the last message sent (for rate limiting)."""
        self.windows_since_message = 0
        return DecisionEvent(
            type=kind,
            event_id=self.event_id,
            started_at=self.started_at,
            ended_at=ended_at,
            score=self.last_score,
            peak_score=self.peak_score,
            threshold=threshold,
            windows_above=self.windows_above,
            reason=reason,
        )
