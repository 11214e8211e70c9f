"""What every audio source offers the windower: a ring of 16 kHz frames, pacing, health."""

from __future__ import annotations

import abc
import threading
import time
from dataclasses import dataclass

from edge_asd.capture.ringbuffer import RingBuffer

REALTIME = "realtime"  # frames arrive at the sample rate, whether or not anyone reads them
FAST = "fast"  # frames are produced on demand, as fast as the reader asks (files, synthetic)
PACINGS = (REALTIME, FAST)

# Source states, as SourceHealth.state reports them.
STARTING = "starting"
RUNNING = "running"
REOPENING = "reopening"  # a device stream died; the watchdog is opening it again
FINISHED = "finished"  # a file reached its end, or a bounded capture its length
FAILED = "failed"  # a file source hit an error it cannot recover from
STOPPED = "stopped"


@dataclass(frozen=True)
class SourceHealth:
    """A snapshot of a source's state, for the daemon's machine states and stats.

    `seconds_since_audio` and `last_audio_time` (UNIX seconds of the newest block) are
    None before the first frame. `last_error` says why the source last reopened or
    failed (None while nothing went wrong; kept after a recovery, as history). `reason`
    says why the source is in `state` now: the error while reopening or failed, where
    and when it ended once finished, that it was asked to stop (None while running).
    `overflows` counts PortAudio input overflows (the device dropped frames because the
    callback came late).
    """

    state: str
    frames: int
    seconds_since_audio: float | None
    last_audio_time: float | None = None
    overflows: int = 0
    reopens: int = 0
    last_error: str | None = None
    reason: str | None = None

    @property
    def finished(self) -> bool:
        """True when the source will write no more frames (end of file, failure, stop)."""
        return self.state in (FINISHED, FAILED, STOPPED)

    @property
    def ok(self) -> bool:
        """True while audio flows normally (the daemon publishes `unknown` otherwise)."""
        return self.state == RUNNING


class Source(abc.ABC):
    """An audio input writing float32 frames at `sample_rate` into `ring`.

    `pacing` is REALTIME (a device, or a replay paced by the clock: frames come on their
    own and old ones are overwritten) or FAST (frames come only when `pump` asks for
    them). Start with `start()` (or `with source:`), end with `stop()`.
    """

    pacing: str = REALTIME

    def __init__(self, ring: RingBuffer) -> None:
        self.ring = ring
        self._lock = threading.Lock()  # guards the health fields, never held by a callback
        self._state = STARTING
        self._last_error: str | None = None
        self._reason: str | None = None
        self._reopens = 0

    @property
    def sample_rate(self) -> int:
        return self.ring.sample_rate

    @property
    def channels(self) -> int:
        return self.ring.channels

    @abc.abstractmethod
    def start(self) -> None:
        """Begin writing frames (REALTIME) or get ready for `pump` (FAST)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop writing and release the input; safe to call twice."""

    def pump(self, until_frame: int) -> None:
        """FAST sources: write frames until `ring.total_frames >= until_frame` or the end."""
        raise TypeError(f"{type(self).__name__} is paced in real time; it cannot be pumped")

    def overflows(self) -> int:
        """Input overflows so far (devices only)."""
        return 0

    def health(self) -> SourceHealth:
        last = self.ring.last_write_monotonic
        since = None if last is None else time.monotonic() - last
        with self._lock:
            return SourceHealth(
                state=self._state,
                frames=self.ring.total_frames,
                seconds_since_audio=since,
                last_audio_time=None if since is None else time.time() - since,
                overflows=self.overflows(),
                reopens=self._reopens,
                last_error=self._last_error,
                reason=self._reason,
            )

    def _set_state(self, state: str, reason: str | None = None) -> None:
        """Enter `state` because of `reason` (kept as `last_error` when it is a failure)."""
        with self._lock:
            self._state = state
            self._reason = reason
            if reason is not None and state in (REOPENING, FAILED):
                self._last_error = reason

    def _set_stopped(self) -> None:
        """`stop()` was called: STOPPED, unless the source had finished or failed first."""
        with self._lock:
            if self._state not in (FINISHED, FAILED):
                self._state = STOPPED
                self._reason = "capture stopped on request (the service is stopping)"

    def __enter__(self) -> Source:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
