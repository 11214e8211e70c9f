"""Logs that help (docs/reliability.md): a warning that repeats is counted, every state
change says why, and the training side's exports print no library noise."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest

from edge_asd.capture import DeviceSource
from tests.harness.broker import Broker
from tests.harness.daemon_process import DaemonProcess, flapping_calibration, write_config
from tests.system.test_daemon import config_dict

pytestmark = pytest.mark.system


def test_a_48khz_device_faster_than_real_time_says_fell_behind_once_then_a_count(
    virtual_mic, caplog
):
    # The virtual microphone is not paced: PortAudio reads it as fast as it can, far
    # faster than 48 kHz, so the resampler is overrun at nearly every 20 ms step.
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (48000 * 4, 1))
    virtual_mic(noise, sample_rate=48000)
    source = DeviceSource("edgeasd_mic", device_rate=48000, capacity_seconds=2.0)
    with caplog.at_level(logging.WARNING, logger="edge_asd.capture.resampler"), source:
        time.sleep(4.0)
    lines = [r.getMessage() for r in caplog.records if r.name == "edge_asd.capture.resampler"]

    print("\n".join(lines))
    assert len(lines) == 2, lines  # the first occurrence, and the count at stop
    assert lines[0].startswith("resampler fell behind: skipped ")
    assert "48000 Hz input, overwritten before it was resampled" in lines[0]
    total = int(re.match(r"resampler fell behind (\d+) times in all", lines[1]).group(1))
    assert total > 10  # what used to be as many warnings


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


def test_a_file_source_at_its_end_says_the_file_ended_and_names_it(
    flapping, mqtt_broker: Broker, tmp_path: Path
):
    recording = flapping["folder"] / "rec.wav"
    source = {"kind": "file", "path": str(recording), "realtime": False}
    calibration = flapping["folder"] / "calibration.yaml"
    config = config_dict(flapping["model"], calibration, tmp_path, mqtt_broker.port, source)
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")
    try:
        assert daemon.process.wait(timeout=120) == 0  # the file ends, so does the run
    finally:
        daemon.ensure_dead()

    log_text = daemon.log()
    ended = f"input 'in' finished (end of file {recording} after 40.0 s)"
    assert f"WARNING edge_asd.daemon.state_log: pump-1: state unknown: {ended}" in log_text
    assert f"every source has ended: in finished (end of file {recording} after 40.0 s)" in (
        log_text
    )
    assert "pump-1: scoring: state normal (first window)" in log_text
    assert "no reason given" not in log_text and "(None)" not in log_text
