"""What each machine sounded like lately: its audio tail, its last window and its score trace.

The scoring loop adds every window it scores (`Recent.add`); two readers use what it keeps:

- event evidence (edge_asd/evidence) takes the audio that opened an event, the last
  `window + (n - 1) * hop` seconds, with where each window in it ends (`opening`), and
  the score trace to draw;
- the page (edge_asd/web) shows the latest window's spectrogram and level and the trace.

Windows overlap, so the audio is kept once, in a ring of `tail_samples` allocated once:
each window writes the samples it adds past the previous window's end (its `end_frame` in
the source's stream), and a gap (skipped windows, a reopened source) restarts the tail
from the new window alone. The tail is `window + (n - 1) * hop` seconds, at most
MAX_OPENING_SECONDS (60 s) and at least one window: with a large n or hop the opening
clip is the last 60 s. Memory per machine: the ring (14 s at 16 kHz: 0.9 MB; 60 s:
3.8 MB), one window, and at most `trace_seconds / hop + 1` trace points.

The trace is bounded by count as well as by time: when the wall clock is set back, the
points before the step (now "in the future") are dropped, and the count bounds it whatever
the clock does.

Thread safety: the scoring loop writes, the page's threads read; one lock per machine,
held only to copy.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

TRACE_SECONDS = 600.0  # the score trace kept: ten minutes
MAX_OPENING_SECONDS = 60.0  # the longest audio tail (an event's opening clip) kept, s


@dataclass(frozen=True)
class ScorePoint:
    """One scored window: when it ended (Unix s), its score and the threshold then."""

    time: float
    score: float
    threshold: float
    state: str  # normal / anomaly / unknown / maintenance after this window
    level_offset_db: float | None  # the window's level minus calibration's, dB


@dataclass(frozen=True)
class Window:
    """The latest window: its audio (float32, shape (window_samples,), model rate) and point."""

    waveform: np.ndarray
    point: ScorePoint


class Recent:
    """One machine's recent audio and scores (see the module)."""

    def __init__(
        self,
        sample_rate: int,
        window_samples: int,
        hop_seconds: float,
        n: int,
        trace_seconds: float = TRACE_SECONDS,
    ) -> None:
        self.sample_rate = sample_rate
        self.window_samples = window_samples
        opening = window_samples + round((n - 1) * hop_seconds * sample_rate)
        cap = max(window_samples, round(MAX_OPENING_SECONDS * sample_rate))
        self.tail_samples = min(opening, cap)
        self.trace_seconds = trace_seconds
        self._ring = np.zeros(self.tail_samples, dtype=np.float32)
        self._filled = 0  # samples of the ring that hold the tail (the newest end at _next)
        self._next = 0  # where the next sample goes
        self._tail_end_frame: int | None = None
        self._tail_windows: deque[tuple[int, ScorePoint]] = deque()  # (end_frame, point)
        self._latest: Window | None = None
        self._trace: deque[ScorePoint] = deque(maxlen=math.ceil(trace_seconds / hop_seconds) + 1)
        self._lock = threading.Lock()

    def add(self, waveform: np.ndarray, end_frame: int, point: ScorePoint) -> None:
        """Keep a scored window: `waveform` (window_samples,) ends at `end_frame` of its stream."""
        waveform = np.asarray(waveform, dtype=np.float32)
        with self._lock:
            new = None if self._tail_end_frame is None else end_frame - self._tail_end_frame
            if new is None or new <= 0 or new > len(waveform):
                self._filled = self._next = 0  # the first window, or a gap: start afresh
                self._tail_windows.clear()
                self._write(waveform)
            else:
                self._write(waveform[len(waveform) - new :])
            self._tail_end_frame = int(end_frame)
            self._tail_windows.append((int(end_frame), point))
            while self._tail_windows[0][0] - len(waveform) < end_frame - self._filled:
                self._tail_windows.popleft()  # that window began before the tail
            self._latest = Window(waveform.copy(), point)
            if self._trace and point.time < self._trace[-1].time:
                self._trace.clear()  # the clock was set back: those points are "future"
            self._trace.append(point)
            while self._trace and self._trace[0].time < point.time - self.trace_seconds:
                self._trace.popleft()

    def _write(self, samples: np.ndarray) -> None:
        """Append `samples` to the ring (only its last tail_samples when longer)."""
        samples = samples[-self.tail_samples :]
        first = min(len(samples), self.tail_samples - self._next)
        self._ring[self._next : self._next + first] = samples[:first]
        self._ring[: len(samples) - first] = samples[first:]
        self._next = (self._next + len(samples)) % self.tail_samples
        self._filled = min(self.tail_samples, self._filled + len(samples))

    def _copy_tail(self, samples: int) -> np.ndarray:
        """The newest `samples` (at most those kept) of the ring, in order; a copy."""
        samples = min(samples, self._filled)
        start = self._next - samples
        if start >= 0:
            return self._ring[start : self._next].copy()
        return np.concatenate([self._ring[start:], self._ring[: self._next]])

    def opening(self) -> tuple[np.ndarray, list[tuple[int, ScorePoint]]]:
        """The whole audio tail and the windows scored within it: (tail, [(end, point)]),
        `end` the sample of the tail where that window ends (the last window: len(tail)).
        One consistent copy, for an event's opening clip and its peak."""
        with self._lock:
            tail = self._copy_tail(self.tail_samples)
            tail_end_frame = self._tail_end_frame or 0  # None only while no window is kept
            ends = [
                (len(tail) - (tail_end_frame - frame), point) for frame, point in self._tail_windows
            ]
        return tail, ends

    def latest(self) -> Window | None:
        """The last window scored (None before the first)."""
        with self._lock:
            return self._latest

    def trace(self, since: float | None = None) -> list[ScorePoint]:
        """The score trace, oldest first; only points after `since` (Unix s) when given."""
        with self._lock:
            points = list(self._trace)
        return points if since is None else [p for p in points if p.time > since]
