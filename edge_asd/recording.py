"""A recording of any length, read from its files block by block: its windows and its level.

The files of a recording are played end to end, as the daemon would have heard them, and
cut into windows exactly as `edge_asd.windows.sliding_windows` cuts the joined signal:
window k ends (exclusive) at sample `window_samples + k * hop_samples`. Memory is bounded
by the window, the block and the batch, never by the recording's length, so a day-long
recording is scored in the same few megabytes as a ten-second clip.

A recording shorter than one window is the one rule of `score`, `calibrate` and
`edge-asd-train evaluate` (`short_recording`): at least half a window (5 s of a 10 s
window) is tiled (repeated) to one window, with a warning; anything shorter is refused.
Repeating a stationary machine sound keeps its spectrum; below half a window the repeats
would dominate what the model hears.

`LevelMeter` measures the level (silent seconds, clipped samples) and the length of the
same blocks on the way, so the checks need no second read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from edge_asd.audio import READ_BLOCK_SECONDS, SAMPLE_RATE, read_blocks

MIN_TILE_FRACTION = 0.5  # of a window: the shortest recording that is tiled, not refused


@dataclass(frozen=True)
class WindowBatch:
    """Consecutive windows of one recording.

    `waveforms` float32 [B, window_samples], C-contiguous, not shared with anything else
    (a caller may keep it); `end_samples` int64 [B], each window's end (exclusive) in
    samples at the model rate from the start of the joined recording.
    """

    waveforms: np.ndarray
    end_samples: np.ndarray

    def __len__(self) -> int:
        return len(self.end_samples)


@dataclass(frozen=True)
class ShortRecording:
    """How a recording shorter than a window is treated: `tiled` to one window, or
    refused with `problem` (None when it is long enough or tiled); `warning` says why."""

    tiled: bool
    problem: str | None
    warning: str | None


def short_recording(name: str, seconds: float, window_seconds: float) -> ShortRecording:
    """The one rule for recordings shorter than a window (see the module), with messages."""
    if seconds >= window_seconds:
        return ShortRecording(False, None, None)
    if seconds >= MIN_TILE_FRACTION * window_seconds:
        warning = (
            f"{name}: {seconds:.1f} s is shorter than a {window_seconds:g} s window; "
            "tiled (repeated) to one window"
        )
        return ShortRecording(True, None, warning)
    problem = (
        f"{name}: {seconds:.1f} s is too short (a window is {window_seconds:g} s; at least "
        f"{MIN_TILE_FRACTION * window_seconds:g} s can be tiled to one)"
    )
    return ShortRecording(False, problem, None)


def tile_from_samples(window_samples: int) -> int:
    """The fewest samples a recording needs to be tiled to one window."""
    return math.ceil(MIN_TILE_FRACTION * window_samples)


def read_recording(
    files: Sequence[str | os.PathLike],
    *,
    channel: int | None = None,
    sample_rate: int = SAMPLE_RATE,
    block_seconds: float = READ_BLOCK_SECONDS,
) -> Iterator[np.ndarray]:
    """The files' samples joined, as float32 mono blocks at `sample_rate` (see read_blocks).

    Each file at another rate is resampled on its own, as `read_audio` would. Raises
    AudioFileError, naming the file, when that file is reached and cannot be used.
    """
    for path in files:
        yield from read_blocks(
            path, channel=channel, sample_rate=sample_rate, block_seconds=block_seconds
        )


def stream_windows(
    files: Sequence[str | os.PathLike],
    *,
    window_samples: int,
    hop_samples: int,
    channel: int | None = None,
    sample_rate: int = SAMPLE_RATE,
    batch_size: int = 8,
    block_seconds: float = READ_BLOCK_SECONDS,
    on_block: Callable[[np.ndarray], object] | None = None,
    tile_short: bool = False,
) -> Iterator[WindowBatch]:
    """Every full window of the files joined end to end, `batch_size` at a time.

    One channel (`channel`, from 0) or the channel mean when None, at `sample_rate`. The
    windows are those of `sliding_windows` on the joined signal; a recording shorter than
    one window gives none, or with `tile_short` one window of it repeated when it holds
    at least `tile_from_samples` (see `short_recording`). `on_block`, when given, sees
    every block of the joined signal once, in order (e.g. `LevelMeter.feed`), before
    the windows it completes are yielded.
    Raises AudioFileError, naming the file, when that file is reached and cannot be used;
    ValueError at once when a size is below 1.
    """
    blocks = read_recording(
        files, channel=channel, sample_rate=sample_rate, block_seconds=block_seconds
    )
    if on_block is not None:
        blocks = _observed(blocks, on_block)
    return windows_of_blocks(
        blocks,
        window_samples=window_samples,
        hop_samples=hop_samples,
        batch_size=batch_size,
        tile_short=tile_short,
    )


def windows_of_blocks(
    blocks: Iterable[np.ndarray],
    *,
    window_samples: int,
    hop_samples: int,
    batch_size: int = 8,
    tile_short: bool = False,
) -> Iterator[WindowBatch]:
    """The windows of a mono signal that arrives in blocks of any lengths, batched.

    `tile_short`: as in `stream_windows`. Lazy: `blocks` is consumed as the batches are;
    ValueError at once when a size is below 1.
    """
    tile_from = tile_from_samples(window_samples) if tile_short else None
    return _cut(_WindowCutter(window_samples, hop_samples, batch_size, tile_from), blocks)


def _cut(cutter: _WindowCutter, blocks: Iterable[np.ndarray]) -> Iterator[WindowBatch]:
    for block in blocks:
        yield from cutter.push(np.asarray(block, dtype=np.float32))
    yield from cutter.finish()


def _observed(
    blocks: Iterable[np.ndarray], on_block: Callable[[np.ndarray], object]
) -> Iterator[np.ndarray]:
    for block in blocks:
        on_block(block)
        yield block


class _WindowCutter:
    """Cuts windows from pushed blocks, keeping only the samples the next window needs.

    `_buffer[_lo:_hi]` holds the joined signal's samples from `_start` to `_seen`, which
    is fewer than a window once the windows they complete are cut. The buffer is reused,
    its kept samples moved to the front when a block does not fit after them.
    """

    def __init__(
        self, window_samples: int, hop_samples: int, batch_size: int, tile_from: int | None
    ) -> None:
        for name, value in (
            ("window_samples", window_samples),
            ("hop_samples", hop_samples),
            ("batch_size", batch_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.window = window_samples
        self.hop = hop_samples
        self.batch_size = batch_size
        self.tile_from = tile_from  # samples from which a signal shorter than a window is tiled
        self._buffer = np.empty(0, dtype=np.float32)
        self._lo = self._hi = 0
        self._start = 0  # index in the joined signal of _buffer[_lo]
        self._seen = 0  # samples pushed so far
        self._next_end = window_samples  # end (exclusive) of the next window
        self._waveforms: np.ndarray | None = None
        self._ends = np.empty(0, dtype=np.int64)
        self._filled = 0

    def push(self, block: np.ndarray) -> Iterator[WindowBatch]:
        first = self._seen
        self._seen += len(block)
        if self._lo == self._hi:  # nothing kept: skip what lies before the next window
            skip = max(0, self._next_end - self.window - first)
            if skip >= len(block):
                return
            block = block[skip:]
            self._start = first + skip
        self._append(block)
        while self._next_end <= self._seen:
            at = self._lo + self._next_end - self.window - self._start
            yield from self._add(self._buffer[at : at + self.window], self._next_end)
            self._next_end += self.hop
        drop = min(self._next_end - self.window - self._start, self._hi - self._lo)
        self._lo += drop
        self._start += drop

    def finish(self) -> Iterator[WindowBatch]:
        """The last, partly filled batch, if any; or the tiled window of a short signal."""
        never_cut = self._next_end == self.window
        if never_cut and self.tile_from is not None and self._seen >= self.tile_from:
            # nothing was dropped: the buffer holds the whole signal
            tiled = np.resize(self._buffer[self._lo : self._hi], self.window)
            ends = np.array([self.window], dtype=np.int64)
            yield WindowBatch(np.ascontiguousarray(tiled[None, :], dtype=np.float32), ends)
            return
        if self._filled:
            n = self._filled
            yield WindowBatch(self._waveforms[:n], self._ends[:n])
            self._waveforms, self._filled = None, 0

    def _append(self, block: np.ndarray) -> None:
        if self._hi + len(block) > len(self._buffer):
            kept = self._hi - self._lo
            needed = kept + len(block)
            if needed > len(self._buffer) // 2:  # room for at least as much again
                grown = np.empty(2 * needed, dtype=np.float32)
                grown[:kept] = self._buffer[self._lo : self._hi]
                self._buffer = grown
            else:
                self._buffer[:kept] = self._buffer[self._lo : self._hi]  # numpy handles the overlap
            self._lo, self._hi = 0, kept
        self._buffer[self._hi : self._hi + len(block)] = block
        self._hi += len(block)

    def _add(self, window: np.ndarray, end: int) -> Iterator[WindowBatch]:
        if self._waveforms is None:
            self._waveforms = np.empty((self.batch_size, self.window), dtype=np.float32)
            self._ends = np.empty(self.batch_size, dtype=np.int64)
        self._waveforms[self._filled] = window
        self._ends[self._filled] = end
        self._filled += 1
        if self._filled == self.batch_size:
            yield WindowBatch(self._waveforms, self._ends)
            self._waveforms, self._filled = None, 0


class LevelMeter:
    """Length and level of a mono signal fed in blocks of any lengths, in one pass.

    The level is measured on whole seconds (`sample_rate` samples; the last, partial
    second is left out, unless the signal is shorter than a second: then it is the one
    block): how many are silent (RMS below `silent_rms`), and the fraction of all
    samples at or above `clip_level` in magnitude. Memory: under a second of samples.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, *, silent_rms: float, clip_level: float):
        self.sample_rate = sample_rate
        self.silent_rms = silent_rms
        self.clip_level = clip_level
        self.samples = 0
        self.full_seconds = 0
        self._silent_full = 0
        self._clipped = 0
        self._pending = np.zeros(0, dtype=np.float32)  # the unfinished second

    def feed(self, block: np.ndarray) -> None:
        """Measure the next samples of the signal (float32 [n])."""
        block = np.asarray(block, dtype=np.float32)
        self.samples += len(block)
        self._clipped += int(np.count_nonzero(np.abs(block) >= self.clip_level))
        joined = np.concatenate([self._pending, block]) if len(self._pending) else block
        n_full = len(joined) // self.sample_rate
        if n_full:
            seconds = joined[: n_full * self.sample_rate].reshape(n_full, self.sample_rate)
            self._silent_full += int(np.count_nonzero(_rms(seconds) < self.silent_rms))
            self.full_seconds += n_full
        self._pending = joined[n_full * self.sample_rate :].copy()

    @property
    def seconds(self) -> float:
        """Length of what was fed, in seconds at `sample_rate`."""
        return self.samples / self.sample_rate

    @property
    def blocks(self) -> int:
        """Blocks the level is measured on: whole seconds, or 1 for a shorter signal."""
        return max(1, self.full_seconds)

    @property
    def silent_blocks(self) -> int:
        if self.full_seconds or not len(self._pending):
            return self._silent_full
        return int(_rms(self._pending[None, :])[0] < self.silent_rms)

    @property
    def clipped_fraction(self) -> float:
        return self._clipped / self.samples if self.samples else 0.0


def _rms(rows: np.ndarray) -> np.ndarray:
    """RMS of each row of float32 [n, m], accumulated in float64."""
    return np.sqrt(np.mean(np.square(rows, dtype=np.float64), axis=1))
