"""A thread moving frames from a ring at the device's rate to a ring at the model's rate."""

from __future__ import annotations

import logging
import threading

import numpy as np

from edge_asd.capture.ringbuffer import FramesUnavailable, RingBuffer
from edge_asd.logs import RepeatedWarning

log = logging.getLogger(__name__)


class RingResampler:
    """Resamples everything written to `source` into `target` (soxr HQ, streaming).

    The audio callback writes the device-rate ring without allocating; the resampling
    (which allocates) happens here, every `poll_seconds`. When this thread falls so far
    behind that frames were overwritten, or `source` has a gap, it restarts the filter
    and marks a gap in `target`: a window never spans the jump. Falling behind is logged
    once, then counted (edge_asd.logs.RepeatedWarning): an input that comes faster than
    real time falls behind at every step.
    """

    def __init__(self, source: RingBuffer, target: RingBuffer, poll_seconds: float = 0.02):
        import soxr

        if source.channels != target.channels:
            raise ValueError("source and target rings must have the same channels")
        self.source = source
        self.target = target
        self.poll_seconds = poll_seconds
        self._stream = soxr.ResampleStream(
            source.sample_rate, target.sample_rate, source.channels, dtype="float32", quality="HQ"
        )
        self._position = source.total_frames  # the next source frame to resample
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ring-resampler", daemon=True)
        self._fell_behind = RepeatedWarning(log, "resampler fell behind")

    def start(self) -> None:
        self._thread.start()

    def stop(self, flush: bool = False) -> None:
        """Stop the thread; with `flush`, resample what is left and the filter's tail."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        if flush:
            self.step()
            tail = self._stream.resample_chunk(
                np.zeros((0, self.source.channels), np.float32), last=True
            )
            self.target.write(tail)
        self._fell_behind.close()

    def _run(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            self.step()
            self._fell_behind.poll()

    def step(self) -> None:
        """Resample the frames written since the last step."""
        total = self.source.total_frames
        if self._position < self.source.oldest_frame:
            half_ring = total - self.source.capacity_frames // 2
            skipped_frames = max(self.source.oldest_frame, half_ring) - self._position
            self._position += skipped_frames
            self._stream.clear()
            self.target.mark_gap()
            self._fell_behind.occurred(
                f"skipped {skipped_frames / self.source.sample_rate:.2f} s of "
                f"{self.source.sample_rate} Hz input, overwritten before it was resampled "
                "(it comes faster than real time, or this thread had no CPU); windows "
                "across the gap are lost"
            )
        if total <= self._position:
            return
        try:
            block = self.source.read(total, total - self._position)
        except FramesUnavailable:
            return  # overwritten while read: the next step restarts past the gap
        self.target.write(self._stream.resample_chunk(block))
        self._position = total
