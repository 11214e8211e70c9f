"""The ring buffer: exact frames by absolute index, and no torn reads under concurrency."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from edge_asd.capture.ringbuffer import FramesUnavailable, RingBuffer

RAMP_PERIOD = 1 << 20  # ramp values stay exact in float32 (below 2**24)


def ramp(start: int, n_frames: int, channels: int) -> np.ndarray:
    """Frame f, channel c holds (f mod RAMP_PERIOD) + c * RAMP_PERIOD."""
    frames = (np.arange(start, start + n_frames) % RAMP_PERIOD)[:, None]
    return (frames + np.arange(channels)[None, :] * RAMP_PERIOD).astype(np.float32)


def test_reads_return_the_frames_written_at_those_indices_across_the_wrap():
    ring = RingBuffer(capacity_frames=1000, channels=2)
    written = 0
    for size in (300, 450, 999, 7, 620):
        ring.write(ramp(written, size, 2))
        written += size
    assert ring.total_frames == written
    window = ring.read(written, 900)  # spans the physical end of the buffer
    np.testing.assert_array_equal(window, ramp(written - 900, 900, 2))
    np.testing.assert_array_equal(
        ring.read(written - 5, 100, channel=1), ramp(written - 105, 100, 2)[:, 1]
    )


def test_a_block_longer_than_the_ring_keeps_its_newest_frames():
    ring = RingBuffer(capacity_frames=100, channels=1)
    ring.write(ramp(0, 250, 1))
    assert ring.total_frames == 250
    np.testing.assert_array_equal(ring.read(250, 100), ramp(150, 100, 1))
    with pytest.raises(FramesUnavailable, match="overwritten"):
        ring.read(200, 100)


def test_frames_not_yet_written_or_overwritten_are_refused():
    ring = RingBuffer(capacity_frames=100, channels=1)
    ring.write(ramp(0, 80, 1))
    with pytest.raises(FramesUnavailable, match="not written yet"):
        ring.read(81, 10)
    ring.write(ramp(80, 80, 1))
    with pytest.raises(FramesUnavailable, match="overwritten"):
        ring.read(100, 50)  # frames 50..59 were overwritten by frames 150..159
    np.testing.assert_array_equal(ring.read(160, 100), ramp(60, 100, 1))


def test_no_window_reaches_back_across_a_gap():
    ring = RingBuffer(capacity_frames=1000, channels=1)
    ring.write(ramp(0, 400, 1))
    ring.mark_gap()  # a reopened stream: what follows does not continue frame 399
    ring.write(ramp(400, 300, 1))
    assert ring.continuous_from == 400
    with pytest.raises(FramesUnavailable, match="gap"):
        ring.read(700, 301)
    np.testing.assert_array_equal(ring.read(700, 300), ramp(400, 300, 1))
    with pytest.raises(FramesUnavailable):
        ring.read_latest(301)


def test_int16_blocks_are_scaled_into_floats_exactly():
    ring = RingBuffer(capacity_frames=10, channels=2)
    pcm = np.array([[-32768, 32767], [0, 1], [-1, 16384]], dtype=np.int16)
    ring.write(pcm, scale=1 / 32768)
    np.testing.assert_array_equal(ring.read(3, 3), pcm.astype(np.float32) / 32768)


def test_concurrent_readers_only_ever_see_contiguous_windows():
    """A writer streams a ramp in random blocks into a small ring while readers read
    windows as large as most of the ring: every window a reader gets must be one
    contiguous stretch of the ramp (a torn read would mix old and new frames)."""
    channels, capacity, total_to_write = 2, 4096, 3_000_000
    ring = RingBuffer(capacity_frames=capacity, channels=channels)
    done = threading.Event()
    results: list[tuple[int, int, list[str]]] = []

    def writer() -> None:
        rng = np.random.default_rng(0)
        written = 0
        while written < total_to_write:
            size = int(rng.integers(1, 800))
            ring.write(ramp(written, size, channels))
            written += size
        done.set()

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        good = refused = 0
        errors: list[str] = []
        while not done.is_set():
            n_frames = int(rng.integers(1, capacity - 200))
            try:
                if rng.random() < 0.5:
                    end, window = ring.read_latest(n_frames)
                else:
                    end = ring.total_frames - int(rng.integers(0, 300))
                    window = ring.read(end, n_frames)
            except FramesUnavailable:
                refused += 1
                continue
            if not np.array_equal(window, ramp(end - n_frames, n_frames, channels)):
                errors.append(f"window of {n_frames} ending at {end} is not contiguous")
            good += 1
        results.append((good, refused, errors))

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the threads as often as CPython allows
    try:
        threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(3)]
        threads.append(threading.Thread(target=writer))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(old_interval)
    assert len(results) == 3
    assert [errors for _, _, errors in results] == [[], [], []]
    assert all(good > 50 for good, _, _ in results), results


@pytest.mark.parametrize(("capacity", "channels"), [(0, 2), (10, 0)])
def test_a_ring_without_a_frame_or_a_channel_is_refused(capacity: int, channels: int):
    with pytest.raises(ValueError, match=r"^a ring needs at least one frame and one channel$"):
        RingBuffer(capacity, channels)


def test_a_read_of_no_frames_or_more_than_the_ring_holds_is_refused_saying_so():
    ring = RingBuffer(capacity_frames=100, channels=1)
    ring.write(ramp(0, 100, 1))
    for n_frames in (0, 101):
        with pytest.raises(ValueError, match=f"^cannot read {n_frames} frames from a ring of 100$"):
            ring.read(100, n_frames)


def test_reads_are_float32_whatever_was_written():
    ring = RingBuffer(capacity_frames=10, channels=2)
    ring.write(np.full((10, 2), 1000, dtype=np.int16), scale=1 / 32768)
    assert ring.read(10, 4).dtype == np.float32
    assert ring.read(10, 4, channel=1).dtype == np.float32


def test_the_latest_frames_of_one_channel_and_too_few_frames_said_so():
    ring = RingBuffer(capacity_frames=100, channels=3)
    with pytest.raises(FramesUnavailable, match=r"^fewer than 10 continuous frames written$"):
        ring.read_latest(10)
    ring.write(ramp(0, 50, 3))
    end, frames = ring.read_latest(10, channel=2)
    assert end == 50
    np.testing.assert_array_equal(frames, ramp(40, 10, 3)[:, 2])


def test_frame_times_count_back_from_the_newest_write_at_the_sample_rate():
    ring = RingBuffer(capacity_frames=16000, channels=1, sample_rate=8000)
    before = time.time()
    assert before <= ring.frame_time(0) <= time.time() + 1e-3  # nothing written: now
    ring.write(np.zeros((16000, 1), np.float32))
    written_at = time.time()
    time.sleep(0.05)  # the estimate is of when the frames came, not of when it is asked
    newest = ring.frame_time(16000)
    assert before - 0.01 <= newest <= written_at + 0.01
    assert ring.frame_time(8000) == pytest.approx(newest - 1.0, abs=1e-3)
