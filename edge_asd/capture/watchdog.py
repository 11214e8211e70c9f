"""When a device stream counts as dead, and how long to wait before reopening it."""

from __future__ import annotations


def stream_problem(
    now: float,
    opened_at: float,
    last_audio_at: float | None,
    stream_finished: bool,
    stall_seconds: float,
) -> str | None:
    """Why a running stream must be reopened, or None while it is healthy.

    Times are `time.monotonic()` seconds. The stream is dead when PortAudio finished it
    without being asked (device lost, or the callback raised: PortAudio then stops calling
    it), or when no audio arrived for `stall_seconds` since it opened or since the last
    block, whichever is later.
    """
    if stream_finished:
        return "the audio stream stopped (device lost or capture error)"
    quiet_since = opened_at if last_audio_at is None else max(opened_at, last_audio_at)
    quiet_seconds = now - quiet_since
    if quiet_seconds > stall_seconds:
        return f"no audio from the device for {quiet_seconds:.1f} s"
    return None


class Backoff:
    """Delays between reopen attempts: `first_seconds`, doubling up to `max_seconds`."""

    def __init__(self, first_seconds: float = 0.5, max_seconds: float = 30.0) -> None:
        if not 0 < first_seconds <= max_seconds:
            raise ValueError("backoff needs 0 < first_seconds <= max_seconds")
        self.first_seconds = first_seconds
        self.max_seconds = max_seconds
        self._next = first_seconds

    def next_delay(self) -> float:
        """The delay before the next attempt (seconds); each call doubles the following."""
        delay = self._next
        self._next = min(self._next * 2.0, self.max_seconds)
        return delay

    def reset(self) -> None:
        """Back to `first_seconds`, after a stream has run well for a while."""
        self._next = self.first_seconds
