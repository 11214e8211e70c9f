"""A preallocated ring of audio frames: one writer (an audio callback), many readers.

Frames are addressed by their absolute index in the stream (frame 0 is the first frame
ever written), so windows are defined by sample counts, not by wall-clock time.

Readers never take a lock the writer waits on. The writer announces the frames it is
about to overwrite (`_writing_until`) before it copies and publishes the new total
(`_total_frames`) after; a reader copies its frames and then re-checks the announcement:
if the writer reached into the frames it copied meanwhile, the copy is discarded and
`FramesUnavailable` is raised. This is a seqlock for a single writer; under CPython the
attribute stores are ordered by the GIL, and numpy may copy without it, which is why the
check comes after the copy.
"""

from __future__ import annotations

import time

import numpy as np

from edge_asd.audio import SAMPLE_RATE


class FramesUnavailable(LookupError):
    """The frames asked for are not written yet, were overwritten, or precede a gap."""


class RingBuffer:
    """`capacity_frames` x `channels` float32 frames, the newest overwriting the oldest.

    Exactly one thread may call `write` and `mark_gap` (the audio callback, or the thread
    that replaces it while a stream is closed); any number may read at the same time.
    """

    def __init__(self, capacity_frames: int, channels: int, sample_rate: int = SAMPLE_RATE):
        if capacity_frames < 1 or channels < 1:
            raise ValueError("a ring needs at least one frame and one channel")
        self.capacity_frames = int(capacity_frames)
        self.channels = int(channels)
        self.sample_rate = int(sample_rate)
        self._buffer = np.zeros((self.capacity_frames, self.channels), dtype=np.float32)
        self._writing_until = 0  # frames the writer may be overwriting: published first
        self._total_frames = 0  # frames completely written: published last
        self._valid_from = 0  # first frame continuous with the newest (after mark_gap)
        self._last_write_monotonic: float | None = None

    @property
    def total_frames(self) -> int:
        """Frames written since the ring was made (the end of the newest complete block)."""
        return self._total_frames

    @property
    def continuous_from(self) -> int:
        """The first frame continuous with the newest: `total_frames` at the last gap, or 0."""
        return self._valid_from

    @property
    def oldest_frame(self) -> int:
        """The oldest frame a reader can still read: after the last gap and not overwritten."""
        return max(self._valid_from, self._writing_until - self.capacity_frames)

    @property
    def last_write_monotonic(self) -> float | None:
        """`time.monotonic()` of the newest write, or None before the first."""
        return self._last_write_monotonic

    def write(self, block: np.ndarray, scale: float | None = None) -> None:
        """Append `block` [frames, channels]; samples are multiplied by `scale` when given.

        Allocates nothing: `block` is cast (int16 with scale 1/32768, or float) into the
        ring in place. A block longer than the ring keeps only its newest frames.
        """
        n_frames = block.shape[0]
        start = self._total_frames
        self._writing_until = start + n_frames
        if n_frames > self.capacity_frames:
            block = block[n_frames - self.capacity_frames :]
            start += n_frames - self.capacity_frames
        position = start % self.capacity_frames
        first = min(block.shape[0], self.capacity_frames - position)
        self._copy_in(self._buffer[position : position + first], block[:first], scale)
        if first < block.shape[0]:
            self._copy_in(self._buffer[: block.shape[0] - first], block[first:], scale)
        self._last_write_monotonic = time.monotonic()
        self._total_frames = self._writing_until

    @staticmethod
    def _copy_in(target: np.ndarray, source: np.ndarray, scale: float | None) -> None:
        if scale is None:
            np.copyto(target, source, casting="unsafe")
        else:
            np.multiply(source, np.float32(scale), out=target, dtype=np.float32, casting="unsafe")

    def mark_gap(self) -> None:
        """Declare that the next frames do not continue the previous ones (a reopened stream).

        Readers then refuse windows reaching back before this point.
        """
        self._valid_from = self._total_frames

    def read(
        self,
        end_frame: int,
        n_frames: int,
        channel: int | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The `n_frames` frames ending (exclusive) at absolute frame `end_frame`.

        Returns float32 [n_frames, channels], or [n_frames] for one `channel`; written
        into `out` when given (same shape). Raises FramesUnavailable when a frame is not
        written yet, was overwritten (before or during the copy), or precedes a gap.
        """
        start = end_frame - n_frames
        if not 0 < n_frames <= self.capacity_frames:
            raise ValueError(f"cannot read {n_frames} frames from a ring of {self.capacity_frames}")
        if end_frame > self._total_frames:
            raise FramesUnavailable(f"frame {end_frame} is not written yet")
        self._check_still_there(start)
        columns = slice(None) if channel is None else channel
        if out is None:
            shape = (n_frames,) if channel is not None else (n_frames, self.channels)
            out = np.empty(shape, dtype=np.float32)
        position = start % self.capacity_frames
        first = min(n_frames, self.capacity_frames - position)
        np.copyto(out[:first], self._buffer[position : position + first, columns])
        if first < n_frames:
            np.copyto(out[first:], self._buffer[: n_frames - first, columns])
        self._check_still_there(start)  # the writer may have reached our frames meanwhile
        return out

    def _check_still_there(self, start: int) -> None:
        if start < self._valid_from:
            raise FramesUnavailable(f"frame {start} precedes a gap in the input")
        if start < self._writing_until - self.capacity_frames:
            raise FramesUnavailable(f"frame {start} was overwritten")

    def read_latest(self, n_frames: int, channel: int | None = None) -> tuple[int, np.ndarray]:
        """(end_frame, frames) of the newest `n_frames`; see `read` for shapes and errors."""
        while True:
            end_frame = self._total_frames
            if end_frame - n_frames < self._valid_from:
                raise FramesUnavailable(f"fewer than {n_frames} continuous frames written")
            try:
                return end_frame, self.read(end_frame, n_frames, channel)
            except FramesUnavailable:
                continue  # overwritten while we copied: the newest frames moved on

    def frame_time(self, frame: int) -> float:
        """Estimated UNIX time (s) at which absolute `frame` was captured."""
        last = self._last_write_monotonic
        if last is None:
            return time.time()
        wall_at_last = time.time() - (time.monotonic() - last)
        return wall_at_last - (self._total_frames - frame) / self.sample_rate
