"""The daemon end to end: real mosquitto, real capture, the real model, `edge-asd run`.

- A recording with a normal part and an injected fault, calibrated on the machine's own
  normal sound: a subscriber sees `available online`, state `normal`, the fault's event
  start and end, states `anomaly` then `normal`, and `stopped` after SIGTERM.
- Capture from the ALSA virtual microphone through PortAudio (a device source).
- systemd notifications, the `stats` message and the Prometheus endpoint.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from edge_asd.mosquitto import free_port
from tests.harness.broker import Broker, Collector
from tests.harness.daemon_process import DaemonProcess, flapping_calibration, write_config

pytestmark = [pytest.mark.system, pytest.mark.slow]

BASE = "edge-asd/dev-1"
FAULT = ("tone", 30.0, 50.0, 3.0)  # kind, start and end (s), strength in the recording
NORMAL_SEEDS = (11, 12, 13, 14, 15, 16)  # six 20 s recordings of normal sound to calibrate on
RECORDING_SECONDS = 80.0


def config_dict(model: Path, calibration: Path, folder: Path, port: int, source: dict) -> dict:
    return {
        "device_id": "dev-1",
        "model": str(model),
        "audio": {"sources": [{"name": "in", **source}]},
        "machines": [{"name": "pump-1", "source": "in", "calibration": str(calibration)}],
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_max_seconds": 2},
        "outbox": {"path": str(folder / "outbox.sqlite")},
        "metrics": {"stats_interval_seconds": 1},
    }


def texts(collector: Collector, suffix: str) -> list[str]:
    return [m.text for m in collector.messages if m.topic == f"{BASE}/{suffix}"]


@pytest.fixture(scope="module")
def fault_setup(trained_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """The trained model, its calibration on normal sound (`edge-asd calibrate`), a recording."""
    from edge_asd.synth import Fault, render_clip, write_wav

    folder = tmp_path_factory.mktemp("fault")
    normals = [folder / f"normal_{seed}.wav" for seed in NORMAL_SEEDS]
    for seed, path in zip(NORMAL_SEEDS, normals, strict=True):
        write_wav(path, render_clip("fan", 0, "source", 20.0, seed=seed))
    kind, start_s, end_s, strength = FAULT
    faults = (Fault(kind, start_s, end_s, strength),)
    recording = render_clip("fan", 0, "source", RECORDING_SECONDS, seed=99, faults=faults)
    write_wav(folder / "recording.wav", recording)
    # A briefly trained model: a 0.99 gamma quantile of the normal scores, as DCASE sets
    # thresholds (one false alarm a day would need 15 min of normal sound here).
    subprocess.run(
        [sys.executable, "-m", "edge_asd.cli", "calibrate", "--model", str(trained_model),
         "--machine", "pump-1", "--label", "fan/section_00", "--quantile", "0.99",
         "--probes", "8",
         "--input", *map(str, normals), "--out", str(folder / "calibration.yaml")],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return {"model": trained_model, "folder": folder}


def test_a_fault_gives_an_event_start_and_end_and_sigterm_says_stopped(
    fault_setup, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    folder = fault_setup["folder"]
    source = {"kind": "file", "path": str(folder / "recording.wav"), "realtime": False}
    config = config_dict(
        fault_setup["model"], folder / "calibration.yaml", tmp_path, mqtt_broker.port, source
    )
    config["audio"]["sources"][0]["loop"] = True  # keeps running until SIGTERM
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")
    try:
        mqtt_collector.wait_for(
            lambda ms: (
                texts(mqtt_collector, "pump-1/state")[-3:] == ["normal", "anomaly", "normal"]
            ),
            timeout_s=180,
        )
        assert daemon.terminate() == 0
        mqtt_collector.wait_for(lambda ms: texts(mqtt_collector, "available")[-1:] == ["stopped"])
    finally:
        daemon.ensure_dead()

    assert texts(mqtt_collector, "available") == ["online", "stopped"]
    states = texts(mqtt_collector, "pump-1/state")
    assert states[:4] == ["unknown", "normal", "anomaly", "normal"], daemon.log()
    events = [json.loads(m.payload) for m in mqtt_collector.on(f"{BASE}/pump-1/event")]
    kinds = [e["type"] for e in events if e["type"] != "update"]
    assert kinds[:2] == ["start", "end"]
    start, end = (e for e in events if e["type"] in ("start", "end"))
    assert start["event_id"] == end["event_id"] and start["seq"] < end["seq"]
    assert end["peak_score"] > end["threshold"] >= 0


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


def test_a_device_source_captures_through_portaudio_and_scores(
    flapping, virtual_mic, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    from edge_asd.audio import read_audio

    mic = virtual_mic(read_audio(flapping["folder"] / "rec.wav").samples, sample_rate=16000)
    source = {"kind": "device", "device": mic.name, "channels": 1}
    config = config_dict(
        flapping["model"],
        flapping["folder"] / "calibration.yaml",
        tmp_path,
        mqtt_broker.port,
        source,
    )
    config["mqtt"]["publish_scores"] = True
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")  # HOME: mic
    try:
        mqtt_collector.wait_for(lambda ms: len(texts(mqtt_collector, "pump-1/score")) >= 3, 60)
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
    scores = [m for m in mqtt_collector.messages if m.topic == f"{BASE}/pump-1/score"]
    assert all(
        m.qos == 0 and set(json.loads(m.payload)) == {"ts", "score", "threshold", "stream_seconds"}
        for m in scores
    )
    assert texts(mqtt_collector, "pump-1/state")[0] == "unknown"
    assert set(texts(mqtt_collector, "pump-1/state")[1:]) <= {"normal", "anomaly"}
    assert texts(mqtt_collector, "available") == ["online", "stopped"]


def test_systemd_hears_ready_and_watchdog_and_stats_reach_mqtt_and_prometheus(
    flapping, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    notify_path = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(60)
    source = {"kind": "file", "path": str(flapping["folder"] / "rec.wav"), "realtime": False}
    config = config_dict(
        flapping["model"],
        flapping["folder"] / "calibration.yaml",
        tmp_path,
        mqtt_broker.port,
        source,
    )
    config["audio"]["sources"][0]["loop"] = True
    port = free_port()
    config["metrics"]["prometheus_port"] = port
    env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "2000000"}
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log", env=env)
    try:
        notes = [listener.recv(256).decode() for _ in range(2)]
        mqtt_collector.wait_for(lambda ms: len(texts(mqtt_collector, "stats")) >= 2, 60)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        assert daemon.terminate() == 0
        notes.append(listener.recv(256).decode())
    finally:
        daemon.ensure_dead()
        listener.close()

    assert notes[0].startswith("READY=1") and notes[1] == "WATCHDOG=1"
    assert "STOPPING=1" in notes[2:] or "WATCHDOG=1" in notes[2:]
    stats = json.loads(texts(mqtt_collector, "stats")[-1])
    for key in ("windows_scored", "windows_skipped", "inference_ms_p50", "inference_ms_p95",
                "input_overflows", "outbox_depth", "outbox_dropped", "uptime_seconds"):  # fmt: skip
        assert key in stats, key
    assert stats["windows_scored"] > 0 and stats["inference_ms_p95"] >= stats["inference_ms_p50"]
    machine = stats["machines"]["pump-1"]
    assert machine["expected_alarms_per_day"] > 0 and machine["window_exceedance"] is not None
    text = metrics.decode()
    assert "edge_asd_windows_scored_total" in text
    assert 'edge_asd_machine_window_exceedance{kind="expected",machine="pump-1"}' in text
