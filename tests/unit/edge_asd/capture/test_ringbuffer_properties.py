"""Properties of the ring buffer and the windower, checked on random streams (hypothesis).

A reference keeps every frame ever written; whatever the block sizes, wraps, gaps and
reads, the ring must hand back exactly the reference's frames, or refuse. The windower
fed by a FAST source must cut exactly the windows `edge_asd.windows.sliding_windows` cuts
offline, whatever the block size of the source.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_asd.capture import FAST, FramesUnavailable, Machine, RingBuffer, Windower
from edge_asd.capture.producer import BlockSource
from edge_asd.windows import sliding_windows

CHANNELS = 2


class Reference:
    """Every frame written, and where the last gap was: what the ring should hold."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.frames = np.zeros((0, CHANNELS), dtype=np.float32)
        self.gap_at = 0

    def write(self, block: np.ndarray) -> None:
        self.frames = np.concatenate([self.frames, block])

    @property
    def total(self) -> int:
        return len(self.frames)

    def readable(self, end: int, n: int) -> bool:
        start = end - n
        return end <= self.total and start >= max(self.gap_at, self.total - self.capacity)


def block_of(first_frame: int, n_frames: int) -> np.ndarray:
    """Frames whose every sample says where it is: frame index and channel, exactly."""
    index = np.arange(first_frame, first_frame + n_frames, dtype=np.float32)[:, None]
    return index * CHANNELS + np.arange(CHANNELS, dtype=np.float32)


operation = st.one_of(
    st.tuples(st.just("write"), st.integers(1, 90)),
    st.tuples(st.just("gap"), st.just(0)),
    st.tuples(st.just("read"), st.integers(0, 120)),
)


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 40),
    operations=st.lists(operation, min_size=1, max_size=40),
    n_frames=st.integers(1, 40),
)
def test_every_read_is_the_frames_written_there_or_refused(capacity, operations, n_frames):
    ring = RingBuffer(capacity, CHANNELS)
    reference = Reference(capacity)
    n_frames = min(n_frames, capacity)
    for kind, value in operations:
        if kind == "write":
            block = block_of(reference.total, value)
            ring.write(block)
            reference.write(block)
        elif kind == "gap":
            ring.mark_gap()
            reference.gap_at = reference.total
        else:
            end = value
            if reference.readable(end, n_frames):
                window = ring.read(end, n_frames)
                np.testing.assert_array_equal(window, reference.frames[end - n_frames : end])
                channel = ring.read(end, n_frames, channel=1)
                np.testing.assert_array_equal(channel, reference.frames[end - n_frames : end, 1])
            else:
                with pytest.raises(FramesUnavailable):
                    ring.read(end, n_frames)
        assert ring.total_frames == reference.total
        assert ring.continuous_from == reference.gap_at
        assert ring.oldest_frame == max(reference.gap_at, reference.total - capacity)


@settings(max_examples=100, deadline=None)
@given(capacity=st.integers(2, 40), blocks=st.lists(st.integers(1, 100), min_size=1, max_size=20))
def test_the_latest_window_is_always_the_newest_contiguous_frames(capacity, blocks):
    ring = RingBuffer(capacity, CHANNELS)
    reference = Reference(capacity)
    n_frames = capacity // 2 + 1
    for size in blocks:
        block = block_of(reference.total, size)
        ring.write(block)
        reference.write(block)
        if reference.total < n_frames:
            with pytest.raises(FramesUnavailable):
                ring.read_latest(n_frames)
            continue
        end, window = ring.read_latest(n_frames)
        assert end == reference.total
        np.testing.assert_array_equal(window, reference.frames[-n_frames:])
        # contiguous: each frame follows the one before it
        np.testing.assert_array_equal(np.diff(window[:, 0]), np.full(n_frames - 1, CHANNELS))


@settings(max_examples=50, deadline=None)
@given(
    capacity=st.integers(1, 30),
    blocks=st.lists(st.integers(1, 60), min_size=1, max_size=10),
    seed=st.integers(0, 2**16),
)
def test_int16_blocks_land_in_the_ring_scaled_exactly(capacity, blocks, seed):
    rng = np.random.default_rng(seed)
    ring = RingBuffer(capacity, CHANNELS)
    written = []
    for size in blocks:
        pcm = rng.integers(-32768, 32768, (size, CHANNELS)).astype(np.int16)
        ring.write(pcm, 1.0 / 32768.0)
        written.append(pcm)
    everything = np.concatenate(written).astype(np.float32) / 32768.0
    n_frames = min(capacity, len(everything))
    end = ring.total_frames
    np.testing.assert_array_equal(ring.read(end, n_frames), everything[end - n_frames : end])


class ArraySource(BlockSource):
    """A FAST source replaying an array in blocks of `block_frames`."""

    def __init__(self, samples: np.ndarray, block_frames: int, capacity_frames: int) -> None:
        rate = 1000  # any rate: sizes below are in frames
        block_s, capacity_s = block_frames / rate, capacity_frames / rate
        super().__init__(1, rate, FAST, block_seconds=block_s, capacity_seconds=capacity_s)
        self.samples = samples
        self.position = 0

    def _next_block(self, n_frames: int) -> np.ndarray | None:
        if self.position >= len(self.samples):
            return None
        block = self.samples[self.position : self.position + n_frames, None]
        self.position += len(block)
        return block


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(2, 50),
    hop=st.integers(1, 20),
    length=st.integers(0, 400),
    block=st.integers(1, 70),
)
def test_fast_windows_are_exactly_the_offline_sliding_windows(window, hop, length, block):
    samples = np.arange(length, dtype=np.float32)
    source = ArraySource(samples, block, capacity_frames=window + hop)
    windower = Windower({"a": source}, [Machine("m", "a", 0)], window, hop_seconds=hop / 1000)
    with source:
        batches = list(windower)
    expected = sliding_windows(samples, window, hop)
    assert len(batches) == len(expected)
    for batch, want in zip(batches, expected, strict=True):
        np.testing.assert_array_equal(batch.waveforms[0], want)
        assert batch.end_frames[0] == want[-1] + 1  # the window ends where its frames end
    assert windower.stats.skipped == windower.stats.lost == 0
