"""The daemon gives the same scores with the optimised engine (the split model, frames
shared between windows) as with model.onnx run as it is: `edge-asd run` twice on one
recording replayed as fast as possible, every window's score compared over MQTT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_asd.engines.fast_onnx import SCORE_TOLERANCES
from tests.harness.broker import Broker, Collector
from tests.harness.daemon_process import DaemonProcess, flapping_calibration, write_config

pytestmark = [pytest.mark.system, pytest.mark.slow]

TOPIC = "edge-asd/dev-1/pump-1/score"


def daemon_scores(setup: dict, broker: Broker, folder: Path, optimise: bool) -> dict:
    """{window end in the recording (s): score} of one replay, and the daemon's log."""
    config = {
        "device_id": "dev-1",
        "model": str(setup["model"]),
        "engine": {"threads": 2, "optimise": optimise},
        "audio": {
            "sources": [{"name": "in", "kind": "file", "path": str(folder / "rec.wav"),
                         "realtime": False}]
        },
        "machines": [
            {"name": "pump-1", "source": "in", "calibration": str(folder / "calibration.yaml")}
        ],
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "publish_scores": True},
        "outbox": {"path": str(folder / f"outbox-{optimise}.sqlite")},
    }  # fmt: skip
    collector = Collector(broker.port, topic=TOPIC).start()
    name = f"optimise-{optimise}"
    daemon = DaemonProcess(write_config(folder, config, f"{name}.yaml"), folder / f"{name}.log")
    try:
        assert daemon.process.wait(timeout=300) == 0, daemon.log()
    finally:
        daemon.ensure_dead()
        collector.stop()
    payloads = [json.loads(message.payload) for message in collector.on(TOPIC)]
    return {round(p["stream_seconds"], 3): p["score"] for p in payloads}, daemon.log()


def test_daemon_scores_match_with_and_without_the_optimised_engine(
    exported_model, mqtt_broker: Broker, tmp_path: Path
):
    setup = flapping_calibration(exported_model, tmp_path)  # 40 s: 31 windows at a 1 s hop
    plain, plain_log = daemon_scores(setup, mqtt_broker, tmp_path, optimise=False)
    fast, fast_log = daemon_scores(setup, mqtt_broker, tmp_path, optimise=True)
    assert "(split model:" in fast_log and "(model.onnx as it is)" in plain_log
    # scores published before the daemon's MQTT connection are dropped (QoS 0): compare
    # the windows both runs delivered, most of them
    common = sorted(set(plain) & set(fast))
    assert len(common) >= 25, (sorted(plain), sorted(fast))
    gaps = [abs(fast[end] - plain[end]) for end in common]
    assert max(gaps) <= SCORE_TOLERANCES["knn"], max(gaps)
    assert len({round(plain[end], 4) for end in common}) > 5  # the scores do vary
