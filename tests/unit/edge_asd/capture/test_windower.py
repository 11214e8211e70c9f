"""The windower: offline-identical windows, hop boundaries, skipping only in real time."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from edge_asd.audio import SAMPLE_RATE, WINDOW_SAMPLES, read_audio
from edge_asd.capture import FAST, REALTIME, FileSource, Machine, SyntheticSource, Windower
from edge_asd.capture.ringbuffer import RingBuffer
from edge_asd.capture.source import RUNNING, STOPPED, Source
from edge_asd.capture.windower import WindowerStats
from edge_asd.synth import MachineSynth, section_profile, write_wav
from edge_asd.windows import hop_samples, sliding_windows


def two_channel_wav(path: Path, seconds: float, sample_rate: int = SAMPLE_RATE) -> Path:
    """Two different machines' generated sound, one per channel."""
    n_frames = round(seconds * sample_rate)
    fan = MachineSynth(section_profile("fan", 0), seed=1, sample_rate=sample_rate)
    pump = MachineSynth(section_profile("pump", 1), seed=2, sample_rate=sample_rate)
    write_wav(path, np.stack([fan.render(n_frames), pump.render(n_frames)], 1), sample_rate)
    return path


def collect(windower: Windower) -> list:
    return list(windower)


@pytest.mark.parametrize("hop_seconds", [1.0, 0.5])
def test_fast_file_replay_gives_exactly_the_offline_windows(tmp_path: Path, hop_seconds: float):
    path = two_channel_wav(tmp_path / "two.wav", seconds=13.3)
    machines = [Machine("fan", "file", 0), Machine("pump", "file", 1)]
    with FileSource(path, pacing=FAST) as source:
        batches = collect(Windower({"file": source}, machines, hop_seconds=hop_seconds))

    offline = read_audio(path).samples
    hop = hop_samples(hop_seconds)
    expected = [sliding_windows(offline[:, channel], WINDOW_SAMPLES, hop) for channel in (0, 1)]
    assert len(batches) == len(expected[0]) == 1 + (len(offline) - WINDOW_SAMPLES) // hop
    for k, batch in enumerate(batches):
        assert batch.names == ("fan", "pump")
        assert batch.waveforms.shape == (2, WINDOW_SAMPLES)
        assert batch.waveforms.dtype == np.float32
        assert list(batch.end_frames) == [WINDOW_SAMPLES + k * hop] * 2
        np.testing.assert_array_equal(batch.waveforms[0], expected[0][k])
        np.testing.assert_array_equal(batch.waveforms[1], expected[1][k])


def test_replay_of_a_file_at_another_rate_matches_the_offline_resampling(tmp_path: Path):
    path = two_channel_wav(tmp_path / "at44k.wav", seconds=4.2, sample_rate=44100)
    with FileSource(path, pacing=FAST) as source:
        assert source.file_rate == 44100 and source.sample_rate == SAMPLE_RATE
        windower = Windower({"f": source}, [Machine("pump", "f", 1)], 32000, hop_seconds=0.5)
        batches = collect(windower)
    offline = sliding_windows(read_audio(path).samples[:, 1], 32000, hop_samples(0.5))
    assert len(batches) == len(offline) > 0
    np.testing.assert_allclose(np.stack([b.waveforms[0] for b in batches]), offline, atol=1e-6)


def test_fast_mode_skips_no_window_however_slow_the_consumer(tmp_path: Path):
    path = two_channel_wav(tmp_path / "slow.wav", seconds=3.0)
    with FileSource(path, pacing=FAST, capacity_seconds=1.0) as source:
        windower = Windower({"f": source}, [Machine("fan", "f", 0)], 8000, hop_seconds=0.25)
        ends = []
        for batch in windower:
            time.sleep(0.02)  # a consumer slower than the file can be read
            ends.extend(batch.end_frames)
    assert ends == [8000 + k * 4000 for k in range(11)]
    assert windower.stats.skipped == 0 and windower.stats.windows == 11


def test_no_window_before_the_ring_holds_a_full_window(tmp_path: Path):
    path = two_channel_wav(tmp_path / "short.wav", seconds=9.99)
    with FileSource(path, pacing=FAST) as source:
        windower = Windower({"f": source}, [Machine("fan", "f", 0)])
        assert windower.next_batch() is None
        assert windower.exhausted
        assert source.health().finished and source.ring.total_frames == 159840


def test_realtime_replay_hands_over_every_hop_boundary_of_the_file(tmp_path: Path):
    path = two_channel_wav(tmp_path / "live.wav", seconds=1.6)
    with FileSource(path, pacing=REALTIME, block_seconds=0.05) as source:
        windower = Windower({"f": source}, [Machine("pump", "f", 1)], 8000, hop_seconds=0.25)
        batches = collect(windower)
    offline = sliding_windows(read_audio(path).samples[:, 1], 8000, 4000)  # 5 windows
    stats = windower.stats
    assert stats.windows == len(batches) and stats.windows + stats.skipped == len(offline) == 5
    assert batches[-1].end_frames[0] == 24000  # the last whole window of the file
    for batch in batches:
        k = (batch.end_frames[0] - 8000) // 4000
        np.testing.assert_array_equal(batch.waveforms[0], offline[k])


def test_a_slow_consumer_in_real_time_skips_and_counts_windows(tmp_path: Path):
    synth = MachineSynth(section_profile("fan", 0), seed=3)
    source = SyntheticSource([synth], pacing=REALTIME, seconds=2.0, block_seconds=0.02)
    windower = Windower({"s": source}, [Machine("fan", "s", 0)], 4000, hop_seconds=0.05)
    ends, frames_seen = [], []
    with source:
        for batch in windower:
            ends.extend(int(e) for e in batch.end_frames)
            frames_before = source.ring.total_frames
            time.sleep(0.3)  # six hops: capture must go on without us
            frames_seen.append(source.ring.total_frames - frames_before)
    n_windows = 1 + (32000 - 4000) // 800  # every hop boundary of the 2 s stream
    assert windower.stats.windows == len(ends) and len(ends) < n_windows / 3
    assert windower.stats.skipped == n_windows - len(ends)
    assert ends[-1] == 32000 and all((end - 4000) % 800 == 0 for end in ends)
    assert all(b - a > 800 for a, b in itertools.pairwise(ends))  # never an older window
    assert max(frames_seen) > 0  # the source kept writing while the consumer slept


def test_machines_of_several_sources_come_in_one_batch_until_one_ends(tmp_path: Path):
    path = two_channel_wav(tmp_path / "short.wav", seconds=2.0)
    synth = MachineSynth(section_profile("fan", 2), seed=4)
    sources = {
        "file": FileSource(path, pacing=FAST),
        "synth": SyntheticSource([synth], pacing=FAST, seconds=3.0),
    }
    machines = [Machine("a", "file", 1), Machine("b", "synth", 0), Machine("c", "file", 0)]
    batches = collect(Windower(sources, machines, 16000, hop_seconds=0.5))
    assert [b.names for b in batches] == [("a", "b", "c")] * 3 + [("b",)] * 2
    assert [int(b.end_frames[-1]) for b in batches] == [16000, 24000, 32000, 40000, 48000]
    for source in sources.values():
        source.stop()


def test_inconsistent_set_ups_are_refused(tmp_path: Path):
    path = two_channel_wav(tmp_path / "x.wav", seconds=1.0)
    fast, live = FileSource(path, pacing=FAST), FileSource(path, pacing=REALTIME)
    with pytest.raises(ValueError, match="pacings"):
        Windower({"a": fast, "b": live}, [Machine("m", "a", 0)])
    with pytest.raises(ValueError, match="channel 2"):
        Windower({"a": fast}, [Machine("m", "a", 2)])
    with pytest.raises(ValueError, match="no source 'b'"):
        Windower({"a": fast}, [Machine("m", "b", 0)])
    with pytest.raises(ValueError, match="repeat"):
        Windower({"a": fast}, [Machine("m", "a", 0), Machine("m", "a", 1)])
    with pytest.raises(ValueError, match="whole number of samples"):
        Windower({"a": fast}, [Machine("m", "a", 0)], hop_seconds=1e-5)
    with pytest.raises(ValueError, match="window and a hop"):
        Windower({"a": FileSource(path, pacing=FAST, capacity_seconds=5)}, [Machine("m", "a", 0)])


class HandFedSource(Source):
    """A live source whose frames the test writes into its ring itself, when it says."""

    def __init__(self, channels: int = 2, capacity_frames: int = 4000, sample_rate: int = 16000):
        super().__init__(RingBuffer(capacity_frames, channels, sample_rate))

    def start(self) -> None:
        self._set_state(RUNNING)

    def stop(self) -> None:
        self._set_state(STOPPED)

    def feed(self, n_frames: int) -> None:
        self.ring.write(np.zeros((n_frames, self.channels), np.float32))


def test_windows_lost_to_a_gap_and_skipped_while_late_are_counted_for_each_machine():
    source = HandFedSource()
    source.start()
    machines = [Machine("a", "s", 0), Machine("b", "s", 1)]
    windower = Windower({"s": source}, machines, 400, hop_seconds=100 / 16000)
    source.feed(400)  # window 0 (frames 0-400)
    assert list(windower.next_batch(timeout=0).end_frames) == [400, 400]
    source.feed(250)  # windows 1 and 2 come while the consumer is away: 1 is skipped
    batch = windower.next_batch(timeout=0)
    assert list(batch.end_frames) == [600, 600]
    assert batch.end_times.dtype == np.float64
    assert batch.end_times[0] == pytest.approx(source.ring.frame_time(600), abs=0.05)
    assert windower.stats == WindowerStats(batches=2, windows=4, skipped=2, lost=0)
    source.ring.mark_gap()  # a reopened device at frame 650: windows 3-6 reach back past it
    source.feed(650)
    assert list(windower.next_batch(timeout=0).end_frames) == [1300, 1300]  # window 9
    # windows 3, 4, 5, 6 lost (window 7, frames 700-1100, is the first after the gap),
    # 7 and 8 skipped: each counted once per machine
    assert windower.stats == WindowerStats(batches=3, windows=6, skipped=6, lost=8)


def test_waiting_for_a_window_gives_up_at_the_timeout():
    source = HandFedSource()
    source.start()
    windower = Windower({"s": source}, [Machine("a", "s", 0)], 400, hop_seconds=100 / 16000)
    started = time.monotonic()
    assert windower.next_batch(timeout=0.2) is None
    assert 0.19 <= time.monotonic() - started < 2.0  # not forever, whatever the load


def test_a_batch_waits_up_to_one_hop_for_a_live_source_still_short_of_its_window():
    early, late = HandFedSource(capacity_frames=8000), HandFedSource(capacity_frames=8000)
    for source in (early, late):
        source.start()
    machines = [Machine("a", "early", 0), Machine("b", "late", 0)]
    windower = Windower({"early": early, "late": late}, machines, 1600, hop_seconds=0.2)
    early.feed(1600)
    late.feed(1000)  # delivering audio, but short of its window
    started = time.monotonic()
    batch = windower.next_batch(timeout=5.0)
    waited = time.monotonic() - started
    assert batch.names == ("a",) and 0.19 <= waited < 2.0  # a hop, not the 5 s timeout


def test_the_hop_defaults_to_one_second_at_the_sources_rate():
    source = HandFedSource(channels=1, capacity_frames=100_000, sample_rate=8000)
    windower = Windower({"s": source}, [Machine("a", "s", 0)], 8000 * 10)
    assert (windower.hop_seconds, windower.hop_samples) == (1.0, 8000)


def test_a_ring_of_exactly_a_window_and_a_hop_is_enough_and_one_of_a_window_is_not():
    machines = [Machine("a", "s", 0)]
    Windower({"s": HandFedSource(1, 500)}, machines, 400, hop_seconds=100 / 16000)
    with pytest.raises(ValueError, match="its ring holds fewer frames than a window and a hop"):
        Windower({"s": HandFedSource(1, 400)}, machines, 400, hop_seconds=100 / 16000)


def test_no_machines_or_sources_at_several_rates_are_refused_saying_so():
    with pytest.raises(ValueError, match=r"^no machines to window$"):
        Windower({"s": HandFedSource()}, [])
    sources = {"s": HandFedSource(sample_rate=16000), "t": HandFedSource(sample_rate=8000)}
    rates = r"^all sources must deliver one sample rate, not \[8000, 16000\]$"
    with pytest.raises(ValueError, match=rates):
        Windower(sources, [Machine("a", "s", 0)])
