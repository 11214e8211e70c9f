"""File and synthetic sources: what they write into the ring, and what health says."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest

from edge_asd.audio import SAMPLE_RATE
from edge_asd.capture import FAST, REALTIME, FileSource, Machine, SyntheticSource, Windower
from edge_asd.errors import AudioFileError
from edge_asd.synth import Fault, MachineSynth, section_profile, write_wav


def test_a_looping_file_restarts_at_its_end_and_never_finishes(tmp_path: Path):
    tone = np.sin(2 * np.pi * 440 * np.arange(8000) / SAMPLE_RATE) * 0.5
    path = tmp_path / "half_second.wav"
    write_wav(path, tone)
    pcm = np.round(tone * 32767) / 32768  # what the 16-bit file decodes to
    with FileSource(path, pacing=FAST, loop=True) as source:
        source.pump(20000)
        assert source.ring.total_frames == 20000
        assert not source.health().finished
        np.testing.assert_allclose(
            source.ring.read(20000, 20000, channel=0), np.tile(pcm, 3)[:20000]
        )


def test_a_file_source_finishes_at_the_end_of_the_file(tmp_path: Path):
    path = tmp_path / "one_second.wav"
    write_wav(path, np.zeros((16000, 3)))
    with FileSource(path, pacing=FAST) as source:
        assert source.channels == 3
        source.pump(10**9)
        health = source.health()
    assert source.ring.total_frames == 16000
    assert health.finished and health.state == "finished" and health.last_error is None
    assert health.reason == f"end of file {path} after 1.0 s"  # not an error, but the cause


def test_a_live_replay_that_breaks_mid_way_logs_one_line_naming_the_file(tmp_path, caplog):
    import soundfile

    samples = np.zeros(16000, dtype=np.float32)
    samples[4000:] = np.nan  # float WAV: the second quarter-second cannot be scored
    path = tmp_path / "breaks.wav"
    soundfile.write(path, samples, SAMPLE_RATE, subtype="FLOAT")
    source = FileSource(path, pacing=REALTIME, block_seconds=0.1)
    with caplog.at_level(logging.ERROR, logger="edge_asd.capture.producer"), source:
        deadline = time.monotonic() + 5.0
        while source.health().state != "failed" and time.monotonic() < deadline:
            time.sleep(0.02)
    health = source.health()

    assert health.state == "failed"
    assert health.reason == f"AudioFileError: {path}: holds NaN or infinite samples"
    (record,) = [r for r in caplog.records if r.name == "edge_asd.capture.producer"]
    assert record.getMessage() == f"FileSource failed: {path}: holds NaN or infinite samples"
    assert record.exc_info is None  # the user's file, not a bug: no traceback


def test_a_source_says_why_it_ended_or_stopped():
    synth = MachineSynth(section_profile("fan", 0), seed=1)
    with SyntheticSource([synth], pacing=FAST, seconds=2.0) as finite:
        assert finite.health().reason is None  # running: nothing to explain
        finite.pump(10**9)
    assert finite.health().state == "finished"
    assert finite.health().reason == "generated sound ended: its 2 s (duration_seconds) are done"
    endless = SyntheticSource([synth], pacing=FAST)
    with endless:
        endless.pump(16000)
    assert endless.health().state == "stopped"
    assert endless.health().reason == "capture stopped on request (the service is stopping)"


def test_unusable_files_are_refused_with_their_name(tmp_path: Path):
    with pytest.raises(AudioFileError, match=r"missing\.wav"):
        FileSource(tmp_path / "missing.wav")
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioFileError, match=r"garbage\.wav: cannot read audio"):
        FileSource(tmp_path / "garbage.wav")
    with pytest.raises(AudioFileError, match="is a directory"):
        FileSource(tmp_path)


def test_a_realtime_source_cannot_be_pumped(tmp_path: Path):
    source = SyntheticSource([MachineSynth(section_profile("fan", 0))], pacing=REALTIME)
    with pytest.raises(TypeError, match="real time"):
        source.pump(100)


def test_a_realtime_source_writes_whole_blocks_and_stops_when_asked():
    source = SyntheticSource([MachineSynth(section_profile("fan", 0))], block_seconds=0.01)
    with source:
        while source.ring.total_frames < 1600:
            time.sleep(0.005)
    frames = source.ring.total_frames
    assert frames % 160 == 0
    assert source.health().state == "stopped"
    assert source.ring.total_frames == frames  # nothing written after stop()


def tone_level(window: np.ndarray, hz: float = 1370.0) -> float:
    """Energy at `hz` relative to the window's median spectral energy."""
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
    freqs = np.fft.rfftfreq(len(window), 1 / SAMPLE_RATE)
    return float(spectrum[np.argmin(np.abs(freqs - hz))] / np.median(spectrum))


def test_synthetic_faults_appear_on_their_channel_at_their_scheduled_time():
    faulty = MachineSynth(section_profile("fan", 0), seed=1, faults=(Fault("tone", 3.0, 6.0),))
    healthy = MachineSynth(section_profile("pump", 1), seed=2)
    source = SyntheticSource([faulty, healthy], pacing=FAST, seconds=8.0)
    machines = [Machine("fan", "s", 0), Machine("pump", "s", 1)]
    with source:
        batches = list(Windower({"s": source}, machines, SAMPLE_RATE, hop_seconds=1.0))
    assert len(batches) == 8  # windows [0, 1) s ... [7, 8) s
    fan = [tone_level(batch.waveforms[0]) for batch in batches]
    pump = [tone_level(batch.waveforms[1]) for batch in batches]
    during, outside = fan[3:6], fan[:3] + fan[6:]
    assert min(during) > 10 * max(outside), fan
    assert max(pump) < min(during) / 10, pump
