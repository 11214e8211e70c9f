"""Recordings streamed from files: the daemon's windows, in memory that does not grow."""

from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_asd.audio import SAMPLE_RATE, WINDOW_SAMPLES, read_audio, resample
from edge_asd.errors import AudioFileError
from edge_asd.recording import LevelMeter, stream_windows, windows_of_blocks
from edge_asd.synth import write_wav
from edge_asd.windows import sliding_windows, window_starts

RESAMPLED_ATOL = 1e-6  # stream vs read_audio: channel mean taken before vs after resampling


def collect(batches) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(windows [W, window], end samples [W], batch sizes) of a stream of WindowBatch."""
    batches = list(batches)
    for batch in batches:
        assert batch.waveforms.dtype == np.float32 and batch.waveforms.flags.c_contiguous
        assert batch.end_samples.dtype == np.int64 and len(batch) == len(batch.waveforms)
    if not batches:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), []
    return (
        np.concatenate([b.waveforms for b in batches]),
        np.concatenate([b.end_samples for b in batches]),
        [len(b) for b in batches],
    )


def expected_ends(n_samples: int, window: int, hop: int) -> np.ndarray:
    return window_starts(n_samples, window, hop) + window


def noise(n: int, seed: int, channels: int | None = None, scale: float = 0.1) -> np.ndarray:
    shape = n if channels is None else (n, channels)
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(1, 60),
    hop=st.integers(1, 80),
    batch_size=st.integers(1, 5),
    sizes=st.lists(st.integers(0, 90), max_size=12),
)
def test_windows_of_blocks_are_exactly_the_sliding_windows(window, hop, batch_size, sizes):
    signal = np.arange(sum(sizes), dtype=np.float32)
    blocks = np.split(signal, np.cumsum(sizes)[:-1]) if sizes else []
    windows, ends, batch_sizes = collect(
        windows_of_blocks(blocks, window_samples=window, hop_samples=hop, batch_size=batch_size)
    )
    expected = sliding_windows(signal, window, hop)
    assert len(windows) == len(expected)
    if len(expected):
        np.testing.assert_array_equal(windows, expected)
        np.testing.assert_array_equal(ends, expected_ends(len(signal), window, hop))
        assert all(size == batch_size for size in batch_sizes[:-1]) and batch_sizes[-1] >= 1


def test_batches_are_fresh_arrays_a_caller_may_keep(tmp_path: Path):
    path = tmp_path / "clip.wav"
    write_wav(path, noise(5 * SAMPLE_RATE, 0))
    batches = list(stream_windows([path], window_samples=8000, hop_samples=3000, batch_size=2))
    shared = [
        np.shares_memory(a.waveforms, b.waveforms)
        for i, a in enumerate(batches)
        for b in batches[i + 1 :]
    ]
    assert not any(shared)
    windows, _, _ = collect(batches)
    np.testing.assert_array_equal(windows, sliding_windows(read_audio(path).mono(), 8000, 3000))


@pytest.mark.parametrize(
    ("window", "hop", "batch_size", "block_seconds"),
    [
        (5000, 1700, 3, 0.07),  # neither window nor hop divides the 1120-sample block
        (WINDOW_SAMPLES, SAMPLE_RATE, 8, 1.0),  # the product's sizes
        (3000, 4500, 2, 0.013),  # hop longer than the window: samples skipped
        (20000, 997, 64, 0.5),  # a prime hop; a batch larger than most files
    ],
)
def test_files_joined_mid_window_give_the_windows_of_the_joined_signal(
    tmp_path: Path, window, hop, batch_size, block_seconds
):
    lengths = [3000, 7777, 123, 9000, 160001]
    paths = []
    for index, length in enumerate(lengths):
        paths.append(tmp_path / f"seg_{index}.wav")
        write_wav(paths[-1], noise(length, index))
    joined = np.concatenate([read_audio(p).mono() for p in paths])
    windows, ends, batch_sizes = collect(
        stream_windows(
            paths,
            window_samples=window,
            hop_samples=hop,
            batch_size=batch_size,
            block_seconds=block_seconds,
        )
    )
    expected = sliding_windows(joined, window, hop)
    assert len(windows) == len(expected) > 0
    np.testing.assert_array_equal(windows, expected)
    np.testing.assert_array_equal(ends, expected_ends(len(joined), window, hop))
    assert all(size == batch_size for size in batch_sizes[:-1]) and batch_sizes[-1] <= batch_size


@pytest.mark.parametrize("channel", [None, 0, 2])
def test_a_multichannel_file_gives_its_channel_or_the_mean(tmp_path: Path, channel):
    path = tmp_path / "three.wav"
    write_wav(path, noise(3 * SAMPLE_RATE + 11, 3, channels=3))
    audio = read_audio(path)
    signal = audio.mono() if channel is None else audio.samples[:, channel]
    windows, _, _ = collect(
        stream_windows(
            [path], window_samples=9000, hop_samples=2500, channel=channel, block_seconds=0.3
        )
    )
    np.testing.assert_array_equal(windows, sliding_windows(signal, 9000, 2500))


@pytest.mark.parametrize("file_rate", [44100, 48000])
@pytest.mark.parametrize("channel", [None, 1])
def test_a_file_at_another_rate_is_resampled_continuously(tmp_path: Path, file_rate, channel):
    stereo = noise(13 * file_rate + 5, file_rate, channels=2)
    path = tmp_path / f"at_{file_rate}.wav"
    soundfile.write(path, stereo, file_rate, subtype="FLOAT")
    window, hop = 3 * SAMPLE_RATE, 7000
    windows, ends, _ = collect(
        stream_windows(
            [path], window_samples=window, hop_samples=hop, channel=channel, block_seconds=0.37
        )
    )
    # the same filter over the same mono signal in one shot: identical
    mono = stereo.mean(axis=1, dtype=np.float32) if channel is None else stereo[:, channel]
    one_shot = resample(np.ascontiguousarray(mono), file_rate, SAMPLE_RATE)
    np.testing.assert_array_equal(windows, sliding_windows(one_shot, window, hop))
    # read_audio resamples every channel, then takes the mean: float rounding apart
    audio = read_audio(path)
    offline = audio.mono() if channel is None else audio.samples[:, channel]
    assert len(offline) == len(one_shot)
    np.testing.assert_allclose(windows, sliding_windows(offline, window, hop), atol=RESAMPLED_ATOL)
    np.testing.assert_array_equal(ends, expected_ends(len(offline), window, hop))


def test_files_at_different_rates_are_each_resampled_then_joined(tmp_path: Path):
    parts = [(44100, 2.3), (SAMPLE_RATE, 1.7), (8000, 2.1)]  # 8 kHz: read, upsampled
    paths = []
    for index, (rate, seconds) in enumerate(parts):
        paths.append(tmp_path / f"part_{index}.wav")
        soundfile.write(paths[-1], noise(round(seconds * rate), index), rate, subtype="FLOAT")
    joined = np.concatenate([read_audio(p).mono() for p in paths])
    windows, _, _ = collect(
        stream_windows(paths, window_samples=2 * SAMPLE_RATE, hop_samples=SAMPLE_RATE // 2)
    )
    np.testing.assert_allclose(
        windows, sliding_windows(joined, 2 * SAMPLE_RATE, SAMPLE_RATE // 2), atol=RESAMPLED_ATOL
    )


def test_a_recording_shorter_than_a_window_gives_no_window(tmp_path: Path):
    path = tmp_path / "short.wav"
    write_wav(path, noise(SAMPLE_RATE, 0))
    assert list(stream_windows([path], window_samples=WINDOW_SAMPLES, hop_samples=1)) == []


def bad_file(tmp_path: Path, kind: str) -> tuple[Path, int | None, str]:
    """(path, channel, words of the message) of a file that cannot be streamed."""
    path = tmp_path / f"{kind.replace(' ', '_')}.wav"
    if kind == "missing":
        return path, None, "no such file"
    if kind == "folder":
        path.mkdir()
        return path, None, "is a directory"
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(3000))
        return path, None, "cannot read audio"
    if kind == "empty":
        write_wav(path, np.zeros(0))
        return path, None, "holds no samples"
    if kind == "no such channel":
        write_wav(path, noise(SAMPLE_RATE, 0, channels=2))
        return path, 2, "has 2 channel(s), no channel 2"
    if kind == "NaN late in the file":
        samples = noise(3 * SAMPLE_RATE, 0)
        samples[-5] = np.nan
        soundfile.write(path, samples, SAMPLE_RATE, subtype="FLOAT")
        return path, None, "NaN"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["missing", "folder", "random bytes", "empty", "no such channel", "NaN late in the file"],
)
def test_a_bad_file_is_named_when_it_is_reached(tmp_path: Path, kind):
    good = tmp_path / "good.wav"
    write_wav(good, noise(3 * SAMPLE_RATE, 1, channels=3))
    bad, channel, words = bad_file(tmp_path, kind)
    stream = stream_windows(
        [good, bad],
        window_samples=SAMPLE_RATE,
        hop_samples=SAMPLE_RATE,
        channel=channel,
        batch_size=1,
    )
    received = []
    with pytest.raises(AudioFileError, match=re.escape(words)) as caught:
        for batch in stream:
            received.append(batch)
    assert str(bad) in str(caught.value)
    assert sum(len(b) for b in received) >= 3  # the good file's windows came first


def test_level_measured_in_blocks_equals_the_level_of_the_whole(tmp_path: Path):
    rng = np.random.default_rng(5)
    signal = noise(7 * SAMPLE_RATE + 321, 5)
    signal[SAMPLE_RATE : 3 * SAMPLE_RATE] *= 1e-5  # two silent seconds
    signal[4 * SAMPLE_RATE :: 997] = 1.0  # clipped samples

    def meter(blocks) -> LevelMeter:
        level = LevelMeter(SAMPLE_RATE, silent_rms=1e-4, clip_level=0.99)
        for block in blocks:
            level.feed(block)
        return level

    whole = meter([signal])
    cuts = np.sort(rng.integers(0, len(signal), 40))
    pieces = meter(np.split(signal, cuts))
    for level in (whole, pieces):
        assert level.samples == len(signal) and level.seconds == len(signal) / SAMPLE_RATE
        assert (level.blocks, level.silent_blocks) == (7, 2)
        assert level.clipped_fraction == pytest.approx(np.mean(np.abs(signal) >= 0.99))
    short = meter([np.zeros(100, np.float32)])
    assert (short.blocks, short.silent_blocks) == (1, 1)


def test_level_meter_sees_every_block_of_the_stream(tmp_path: Path):
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    write_wav(paths[0], noise(2 * SAMPLE_RATE + 7, 0))
    soundfile.write(paths[1], noise(44100 * 3, 1), 44100)
    joined = np.concatenate([read_audio(p).mono() for p in paths])
    level = LevelMeter(SAMPLE_RATE, silent_rms=1e-4, clip_level=0.99)
    batches = list(
        stream_windows(
            paths, window_samples=SAMPLE_RATE, hop_samples=SAMPLE_RATE, on_block=level.feed
        )
    )
    assert level.samples == len(joined) and sum(len(b) for b in batches) == 5


def test_sliding_windows_is_a_view_that_copies_nothing():
    signal = noise(10 * 60 * SAMPLE_RATE, 0)  # 10 minutes; every window copied: 380 MB
    tracemalloc.start()
    try:
        windows = sliding_windows(signal, WINDOW_SAMPLES, SAMPLE_RATE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000
    assert np.shares_memory(windows, signal) and not windows.flags.writeable
    starts = window_starts(len(signal), WINDOW_SAMPLES, SAMPLE_RATE)
    assert windows.shape == (len(starts), WINDOW_SAMPLES)
    for k in (0, 1, len(starts) // 2, len(starts) - 1):
        np.testing.assert_array_equal(windows[k], signal[starts[k] : starts[k] + WINDOW_SAMPLES])


def write_long_noise(path: Path, minutes: int) -> None:
    """Minutes of 16 kHz int16 noise, written a minute at a time."""
    rng = np.random.default_rng(minutes)
    with soundfile.SoundFile(path, "w", SAMPLE_RATE, 1, subtype="PCM_16") as out:
        for _ in range(minutes):
            out.write(rng.integers(-3000, 3000, 60 * SAMPLE_RATE, dtype=np.int16))


def peak_while_streaming(path: Path, batch_size: int) -> tuple[int, int, float]:
    """(peak bytes of traced allocations, windows, seconds) streaming every window."""
    n_windows = 0
    tracemalloc.start()
    try:
        began = time.perf_counter()
        for batch in stream_windows(
            [path], window_samples=WINDOW_SAMPLES, hop_samples=SAMPLE_RATE, batch_size=batch_size
        ):
            n_windows += len(batch)
            del batch
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, n_windows, elapsed


@pytest.mark.slow
def test_memory_while_streaming_does_not_grow_with_the_recording(tmp_path: Path):
    batch_size = 8
    batch_bytes = batch_size * WINDOW_SAMPLES * 4  # 5.1 MB: what a caller receives
    peaks = {}
    for minutes in (5, 20):
        path = tmp_path / f"{minutes}_minutes.wav"
        write_long_noise(path, minutes)
        peak, n_windows, elapsed = peak_while_streaming(path, batch_size)
        assert n_windows == len(window_starts(minutes * 60 * SAMPLE_RATE, WINDOW_SAMPLES, 16000))
        peaks[minutes] = peak
        print(
            f"{minutes} min: peak {peak / 1e6:.2f} MB traced, "
            f"{n_windows / elapsed:.0f} windows/s (streaming alone, under tracemalloc)"
        )
        path.unlink()
    assert peaks[20] < batch_bytes + 3_000_000
    assert peaks[20] <= peaks[5] + 100_000


def test_sizes_below_one_are_refused_before_any_file_is_read(tmp_path: Path):
    with pytest.raises(ValueError, match="hop_samples"):
        stream_windows([tmp_path / "absent.wav"], window_samples=10, hop_samples=0)
