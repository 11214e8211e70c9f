"""Every event keeps its evidence: `edge-asd run` as a process, a real mosquitto, real files.

- A fault in a file source opens an event whose `clip` is a FLAC of the audio that opened
  it (the file's own samples over the confirming windows, covering the fault), and whose
  end names the peak window (10 s, the event's highest score).
- Retention: a run making more evidence than `max_megabytes` ends within the bound with
  the newest events kept.
- A full evidence volume (a small tmpfs in a private mount namespace, as in
  test_reliability_disk.py): events still go out, with `clip` null; the failure is logged
  once and `stats` shows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from edge_asd.audio import read_audio
from edge_asd.calibration.file import save_calibration
from edge_asd.engines import open_engine
from edge_asd.evidence.layout import EVENT_JSON, PEAK_CLIP, START_CLIP, parse_event_folder
from edge_asd.recording import stream_windows
from edge_asd.scoring.offline import score_windows
from edge_asd.synth import Fault, render_clip, write_wav
from tests.harness.broker import Broker, Collector
from tests.harness.calibration import calibrate_files
from tests.harness.daemon_process import (
    DaemonProcess,
    flapping_calibration,
    flapping_config,
    write_config,
)
from tests.system.test_reliability_disk import tmpfs_wrapper

pytestmark = [pytest.mark.system, pytest.mark.slow]

BASE = "edge-asd/dev-1"
RATE = 16000
WINDOW_S, HOP_S, K, N = 10, 1, 3, 5
FAULT_START_S, FILE_S = 30.0, 50.0
TONE_HZ = 1370.0  # edge_asd.synth's `tone` fault


def events_of(collector: Collector) -> list[dict]:
    return [json.loads(m.payload) for m in collector.on(f"{BASE}/pump-1/event")]


def last_stats(collector: Collector) -> dict:
    stats = collector.on(f"{BASE}/stats")
    return json.loads(stats[-1].payload) if stats else {}


@pytest.fixture(scope="module")
def faulty(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """normal.wav (40 s of a fan) calibrates TWFR (no network: a tone is far outside the
    normal log-mel whatever the tiny model's weights); fault.wav is the same fan with a
    1370 Hz tone from FAULT_START_S to its end (FILE_S)."""
    folder = tmp_path_factory.mktemp("faulty")
    write_wav(folder / "normal.wav", render_clip("fan", 0, "source", 40.0, seed=3))
    fault = Fault("tone", FAULT_START_S, FILE_S, 3.0)
    write_wav(
        folder / "fault.wav", render_clip("fan", 0, "source", FILE_S, seed=4, faults=(fault,))
    )
    result = calibrate_files(tiny_model, [folder / "normal.wav"], machine="pump-1", scorer="twfr")
    save_calibration(result.calibration, folder / "calibration.yaml")
    return {"model": tiny_model, "folder": folder}


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A recording and a calibration that open and close events every few windows."""
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


def test_a_fault_opens_an_event_whose_clip_is_the_audio_that_opened_it(
    faulty, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    folder = faulty["folder"]
    config = {
        "device_id": "dev-1",
        "model": str(faulty["model"]),
        "audio": {"hop_seconds": HOP_S, "sources": [{"name": "in", "kind": "file",
                  "path": str(folder / "fault.wav"), "realtime": False, "loop": False}]},
        "machines": [{"name": "pump-1", "source": "in",
                      "calibration": str(folder / "calibration.yaml"),
                      "decision": {"k": K, "n": N, "m_close": 2}}],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_broker.port},
        "outbox": {"path": str(tmp_path / "outbox.sqlite")},
    }  # fmt: skip
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")
    try:  # the file ends: its machine turns unknown, which ends the event; the daemon exits
        assert daemon.process.wait(timeout=180) == 0, daemon.log()[-3000:]
        mqtt_collector.wait_for(
            lambda ms: any(e["type"] == "end" for e in events_of(mqtt_collector))
        )
    finally:
        daemon.ensure_dead()
    events = events_of(mqtt_collector)
    assert (events[0]["type"], events[-1]["type"]) == ("start", "end"), events
    start, end = events[0], events[-1]
    assert start["event_id"] == end["event_id"] and end["reason"] == "unknown"  # input ended

    clip, rate = soundfile.read(start["clip"], dtype="float32")
    source = read_audio(folder / "fault.wav").mono()
    assert rate == RATE and len(clip) == (WINDOW_S + (N - 1) * HOP_S) * RATE
    # The file's own samples over the windows that opened the event, and they span the fault.
    offset = _offset_in(source, clip)
    assert offset % (HOP_S * RATE) == 0  # windows are whole hops into the file
    assert offset < FAULT_START_S * RATE < offset + len(clip)
    fault_at = round(FAULT_START_S * RATE) - offset
    assert _band_db(clip[fault_at:], TONE_HZ) > _band_db(clip[:fault_at], TONE_HZ) + 20

    peak, _ = soundfile.read(end["clip"], dtype="float32")
    assert Path(end["clip"]).name == PEAK_CLIP and Path(start["clip"]).name == START_CLIP
    assert len(peak) == WINDOW_S * RATE and _offset_in(source, peak) >= 0
    assert _score_of(faulty, end["clip"]) == pytest.approx(end["peak_score"], rel=1e-3)
    event_folder = Path(start["clip"]).parent
    assert json.loads((event_folder / EVENT_JSON).read_bytes()) == end  # as published


def test_retention_keeps_the_newest_events_within_max_megabytes(
    flapping, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    evidence = tmp_path / "evidence"
    config = flapping_config(
        flapping, tmp_path, {"port": mqtt_broker.port},
        decision={"k": 1, "n": 1, "m_close": 1},
        evidence={"path": str(evidence), "max_megabytes": 2.0},  # 2 or 3 events
        metrics={"stats_interval_seconds": 1},
    )  # fmt: skip
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")
    try:
        mqtt_collector.wait_for(lambda ms: _ended(mqtt_collector) >= 10, timeout_s=180)
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
    on_disk = sum(f.stat().st_size for f in evidence.rglob("*") if f.is_file())
    assert on_disk <= 2.0e6
    started = [e for e in events_of(mqtt_collector) if e["type"] == "start"]
    assert len(started) >= 10
    kept = {parse_event_folder(p).event_id for p in (evidence / "pump-1").iterdir()}
    newest = [e["event_id"] for e in sorted(started, key=lambda e: e["seq"])][-len(kept) :]
    assert 1 <= len(kept) < len(started) and kept == set(newest)
    stats = last_stats(mqtt_collector)
    # the stats sent at the stop, after the last end's prune, say what is on disk
    assert (stats["evidence_clips"], stats["evidence_bytes"]) == (len(kept), on_disk)
    assert stats["evidence_failures"] == 0 and stats["evidence_error"] is None


def test_a_full_evidence_volume_keeps_events_going_out_without_clips_logs_once_and_says_so(
    flapping, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    disk = tmp_path / "disk"
    disk.mkdir()
    config = flapping_config(
        flapping, tmp_path, {"port": mqtt_broker.port},
        decision={"k": 1, "n": 1, "m_close": 1},
        evidence={"path": str(disk / "evidence"), "min_free_megabytes": 0},
        metrics={"stats_interval_seconds": 1},
    )  # fmt: skip
    wrapper = tmpfs_wrapper(disk, "size=300k")  # less than one event's evidence
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log", wrapper=wrapper)
    try:
        mqtt_collector.wait_for(lambda ms: _ended(mqtt_collector) >= 6, timeout_s=180)
        mqtt_collector.wait_for(lambda ms: last_stats(mqtt_collector).get("evidence_error"))
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
    assert not (disk / "evidence").exists()  # the tmpfs was the daemon's own
    events = events_of(mqtt_collector)
    without = [e for e in events if e["clip"] is None]
    assert len(without) >= 10  # starts and ends after the volume filled
    log = daemon.log()
    assert log.count("evidence cannot write:") == 1, log[-3000:]
    assert "No space left on device" in log
    stats = last_stats(mqtt_collector)
    assert "No space left on device" in stats["evidence_error"]
    assert stats["evidence_failures"] >= len(without) - 2  # the last end may follow the stats
    logged = daemon.logged_seqs()
    assert sorted({e["seq"] for e in events}) == logged == list(range(1, len(logged) + 1))


def _ended(collector: Collector) -> int:
    return sum(1 for e in events_of(collector) if e["type"] == "end")


def _offset_in(source: np.ndarray, clip: np.ndarray) -> int:
    """Where `clip` lies in `source`, sample for sample (-1: nowhere)."""
    candidates = np.flatnonzero(source[: len(source) - len(clip) + 1] == clip[0])
    for offset in candidates:
        if np.array_equal(source[offset : offset + len(clip)], clip):
            return int(offset)
    return -1


def _band_db(audio: np.ndarray, hz: float) -> float:
    """Energy within 20 Hz of `hz`, dB."""
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    return float(10 * np.log10(spectrum[np.abs(freqs - hz) < 20].sum() + 1e-20))


def _score_of(faulty: dict[str, Path], clip: str) -> float:
    """The clip's one window scored offline with the same model and calibration."""
    from edge_asd.calibration.file import load_calibration

    engine = open_engine(faulty["model"], threads=2)
    try:
        calibration = load_calibration(faulty["folder"] / "calibration.yaml", engine.info)
        windows = stream_windows([Path(clip)], window_samples=engine.info.window_samples,
                                 hop_samples=HOP_S * RATE)  # fmt: skip
        return float(score_windows(engine, calibration.detector, windows).scores[0])
    finally:
        engine.close()
