"""The daemon says how far the input level is from the calibration's: `edge-asd run`
replaying the calibration recording 6 dB louder (real mosquitto, a file source) publishes
`stats` and events whose `level_offset_db` reads +6 dB."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_asd.audio import read_audio
from edge_asd.calibration.file import save_calibration
from edge_asd.synth import render_clip, write_wav
from tests.harness.broker import Broker, Collector
from tests.harness.calibration import calibrate_files
from tests.harness.daemon_process import DaemonProcess, write_config

pytestmark = [pytest.mark.system, pytest.mark.slow]

BASE = "edge-asd/dev-1"
GAIN_DB = 6.0


def test_a_louder_replay_of_the_calibration_recording_reads_six_db_in_stats_and_events(
    tiny_model: Path, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    write_wav(tmp_path / "rec.wav", render_clip("fan", 0, "source", 40.0, seed=3))
    result = calibrate_files(tiny_model, [tmp_path / "rec.wav"], machine="pump-1")
    assert result.calibration.level["level_db"] is not None
    # a threshold every window is above: the replay raises an event, whatever it scores
    calibration = replace(result.calibration, threshold=-1e6)
    save_calibration(calibration, tmp_path / "calibration.yaml")
    samples = read_audio(tmp_path / "rec.wav").mono()
    louder = samples * 10 ** (GAIN_DB / 20)
    assert np.abs(louder).max() < 1.0  # no clipping: the level really changes by 6 dB
    write_wav(tmp_path / "louder.wav", louder)
    config = {
        "device_id": "dev-1",
        "model": str(tiny_model),
        "audio": {"sources": [{"name": "in", "kind": "file", "path": str(tmp_path / "louder.wav"),
                               "realtime": False, "loop": True}]},
        "machines": [{"name": "pump-1", "source": "in",
                      "calibration": str(tmp_path / "calibration.yaml")}],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_broker.port, "reconnect_max_seconds": 2},
        "outbox": {"path": str(tmp_path / "outbox.sqlite")},
        "metrics": {"stats_interval_seconds": 1},
    }  # fmt: skip
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")

    def stats_and_event(messages) -> bool:
        events = [m for m in messages if m.topic == f"{BASE}/pump-1/event"]
        stats = [json.loads(m.payload) for m in messages if m.topic == f"{BASE}/stats"]
        scored = [s for s in stats if s["machines"]["pump-1"]["windows_scored"] >= 30]
        return bool(events) and bool(scored)

    try:
        mqtt_collector.wait_for(stats_and_event, timeout_s=120)
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
    stats = [json.loads(m.payload) for m in mqtt_collector.on(f"{BASE}/stats")]
    machine = stats[-1]["machines"]["pump-1"]
    assert machine["level_offset_db"] == pytest.approx(GAIN_DB, abs=0.5), daemon.log()
    events = [json.loads(m.payload) for m in mqtt_collector.on(f"{BASE}/pump-1/event")]
    assert events[0]["type"] == "start"
    for event in events:
        assert event["level_offset_db"] == pytest.approx(GAIN_DB, abs=0.5), event
