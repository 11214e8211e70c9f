"""What each machine sounded like lately: its audio tail, its last window and its score trace.

The scoring loop adds every window it scores (`Recent.add`); two readers use what it keeps:

- event evidence (edge_asd/evidence) takes the audio that opened an event, the last
  `window + (n - 1) * hop` seconds (`audio_tail`), and the score trace to draw;
- the page (edge_asd/web) shows the latest window's spectrogram and level and the trace.

Windows overlap, so the audio is kept once: each window appends the samples it adds past
the previous window's end (its `end_frame` in the source's stream), and a gap (skipped
windows, a reopened source) restarts the tail from the new window alone. Memory per
machine: `tail_seconds` of float32 audio at the model's rate (14 s at 16 kHz: 0.9 MB),
one window, and `trace_seconds / hop` trace points.

Thread safety: the scoring loop writes, the page's threads read; one lock per machine,
held only to copy.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

TRACE_SECONDS = 600.0  # the score trace kept: ten minutes


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
        self.tail_samples = window_samples + round((n - 1) * hop_seconds * sample_rate)
        self.trace_seconds = trace_seconds
        self._tail = np.zeros(0, dtype=np.float32)
        self._tail_end_frame: int | None = None
        self._latest: Window | None = None
        self._trace: deque[ScorePoint] = deque()
        self._lock = threading.Lock()

    def add(self, waveform: np.ndarray, end_frame: int, point: ScorePoint) -> None:
        """Keep a scored window: `waveform` (window_samples,) ends at `end_frame` of its stream."""
        waveform = np.asarray(waveform, dtype=np.float32)
        with self._lock:
            new = None if self._tail_end_frame is None else end_frame - self._tail_end_frame
            if new is None or new <= 0 or new > len(waveform):
                tail = waveform.copy()  # the first window, or a gap: start afresh
            else:
                tail = np.concatenate([self._tail, waveform[len(waveform) - new :]])
            self._tail = tail[-self.tail_samples :]
            self._tail_end_frame = int(end_frame)
            self._latest = Window(waveform.copy(), point)
            self._trace.append(point)
            while self._trace and self._trace[0].time < point.time - self.trace_seconds:
                self._trace.popleft()

    def audio_tail(self, seconds: float | None = None) -> np.ndarray:
        """The last `seconds` of contiguous audio (all that is kept when None); float32 copy."""
        with self._lock:
            tail = self._tail
        if seconds is None:
            return tail.copy()
        return tail[-round(seconds * self.sample_rate) :].copy()

    def latest(self) -> Window | None:
        """The last window scored (None before the first)."""
        with self._lock:
            return self._latest

    def trace(self, since: float | None = None) -> list[ScorePoint]:
        """The score trace, oldest first; only points after `since` (Unix s) when given."""
        with self._lock:
            points = list(self._trace)
        return points if since is None else [p for p in points if p.time > since]
