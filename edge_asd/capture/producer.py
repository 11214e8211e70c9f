"""Sources that make their own blocks (files, generated sound), paced in real time or fast."""

from __future__ import annotations

import abc
import logging
import threading
import time

import numpy as np

from edge_asd.capture.ringbuffer import RingBuffer
from edge_asd.capture.source import FAILED, FAST, FINISHED, PACINGS, RUNNING, Source
from edge_asd.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SECONDS = 0.1
DEFAULT_CAPACITY_SECONDS = 20.0


class BlockSource(Source):
    """A source whose subclass returns the next block of frames from `_next_block(n)`.

    REALTIME: a thread writes each block once the clock says its last frame is due, as a
    sound card would; it never waits for a reader. FAST: nothing runs on its own;
    `pump(until_frame)` (called by the windower) writes just enough frames, so no frame
    is ever overwritten before it was read.
    """

    def __init__(
        self,
        channels: int,
        sample_rate: int,
        pacing: str,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
        capacity_seconds: float = DEFAULT_CAPACITY_SECONDS,
    ) -> None:
        if pacing not in PACINGS:
            raise ValueError(f"pacing must be one of {PACINGS}, not {pacing!r}")
        super().__init__(RingBuffer(round(capacity_seconds * sample_rate), channels, sample_rate))
        self.pacing = pacing
        self.block_frames = max(1, round(block_seconds * sample_rate))
        self._exhausted = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def _next_block(self, n_frames: int) -> np.ndarray | None:
        """About `n_frames` new frames, float32 [frames, channels]; None at the end."""

    def _close(self) -> None:
        """Release what the subclass holds (an open file)."""

    def _end_reason(self) -> str:
        """Why the source finished, for its health and the daemon's log."""
        return f"{type(self).__name__} ended after {self._seconds_written():.1f} s"

    def _seconds_written(self) -> float:
        return self.ring.total_frames / self.sample_rate

    def start(self) -> None:
        self._set_state(RUNNING)
        if self.pacing != FAST and self._thread is None:
            self._thread = threading.Thread(
                target=self._run_realtime, name=f"{type(self).__name__}-producer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._close()
        self._set_stopped()

    def pump(self, until_frame: int) -> None:
        """Write frames until `ring.total_frames >= until_frame` or the source ends.

        Raises TypeError for a REALTIME source, and whatever `_next_block` raised (after
        recording it in `health()`) when the input fails.
        """
        if self.pacing != FAST:
            super().pump(until_frame)
        while not self._exhausted and self.ring.total_frames < until_frame:
            self._produce(min(self.block_frames, until_frame - self.ring.total_frames))

    def _produce(self, n_frames: int) -> None:
        try:
            block = self._next_block(n_frames)
        except Exception as exc:
            self._exhausted = True
            self._set_state(FAILED, f"{type(exc).__name__}: {exc}")
            raise
        if block is None:
            self._exhausted = True
            self._set_state(FINISHED, self._end_reason())
        else:
            self.ring.write(block)

    def _run_realtime(self) -> None:
        """Write each block when its last frame is due by the clock, from the start time."""
        started = time.monotonic()
        rate = self.sample_rate
        while not self._exhausted and not self._stopping.is_set():
            due_frames = (time.monotonic() - started) * rate
            try:
                while (
                    not self._exhausted and self.ring.total_frames + self.block_frames <= due_frames
                ):
                    self._produce(self.block_frames)
            except UserError as exc:  # a file that breaks mid-way: its message names it
                log.error("%s failed: %s", type(self).__name__, exc)
                return
            except Exception:
                log.exception("%s failed", type(self).__name__)
                return
            next_due = started + (self.ring.total_frames + self.block_frames) / rate
            self._stopping.wait(max(0.0, next_due - time.monotonic()))
