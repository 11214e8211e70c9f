"""Where operators already look: Home Assistant (MQTT discovery) and Grafana (Prometheus).

The daemon as a process against a real mosquitto:
- with `home_assistant.enabled`, the discovery configs are retained and follow HA's
  schema, come again when HA's birth message arrives, the score sensor's template reads
  the daemon's real `stats`, and when the daemon is killed its last will makes every
  entity unavailable;
- every metric the Grafana dashboard (deploy/grafana/edge-asd.json) queries is one the
  running daemon exports on its Prometheus endpoint.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from edge_asd.mosquitto import free_port
from tests.harness.broker import Broker, Collector
from tests.harness.daemon_process import (
    DaemonProcess,
    flapping_calibration,
    flapping_config,
    write_config,
)
from tests.harness.home_assistant import check_config, render

pytestmark = [pytest.mark.system, pytest.mark.slow]

BASE = "edge-asd/dev-1"
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "edge-asd.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
PROMQL_WORDS |= {"offset", "and", "or", "unless"}


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


def daemon_config(flapping: dict[str, Path], folder: Path, port: int) -> dict:
    mqtt = {"port": port, "reconnect_max_seconds": 2}
    metrics = {"stats_interval_seconds": 1}
    return flapping_config(flapping, folder, mqtt, source="in", metrics=metrics)


def discovery_configs(collector: Collector) -> list:
    return [m for m in collector.messages if m.topic.startswith("homeassistant/")]


def test_home_assistant_gets_valid_retained_configs_again_on_its_birth_and_sees_the_will(
    flapping, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    config = daemon_config(flapping, tmp_path, mqtt_broker.port)
    config["home_assistant"] = {"enabled": True}
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")
    try:
        mqtt_collector.wait_for(lambda ms: len(discovery_configs(mqtt_collector)) >= 2, 60)
        late = Collector(mqtt_broker.port, "homeassistant/#").start()  # HA starting later
        try:
            retained = late.wait_for(lambda ms: len(ms) >= 2, 10)
        finally:
            late.stop()
        mqtt_collector.wait_for(lambda ms: _scored_stats(mqtt_collector), 60)
        before = len(discovery_configs(mqtt_collector))
        mqtt_collector.client.publish("homeassistant/status", "online", qos=1)
        mqtt_collector.wait_for(lambda ms: len(discovery_configs(mqtt_collector)) >= before + 2)
        daemon.kill()  # SIGKILL: no `stopped`; the broker publishes the last will
        mqtt_collector.wait_for(lambda ms: _available(mqtt_collector)[-1:] == ["offline"], 30)
    finally:
        daemon.ensure_dead()

    assert all(m.retain and m.qos == 1 for m in retained)
    got = {m.topic: json.loads(m.payload) for m in retained}
    assert sorted(check_config(topic, config) for topic, config in got.items()) == [
        "binary_sensor",
        "sensor",
    ]
    problem = got["homeassistant/binary_sensor/dev-1/pump-1_problem/config"]
    score = got["homeassistant/sensor/dev-1/pump-1_score/config"]
    assert problem["state_topic"] == f"{BASE}/pump-1/state"
    stats = _scored_stats(mqtt_collector)[-1]
    assert float(render(score["value_template"], stats)) == pytest.approx(
        json.loads(stats)["machines"]["pump-1"]["score"]
    )
    for entity in (problem, score):  # the will makes Home Assistant show them unavailable
        (availability,) = entity["availability"]
        assert availability["topic"] == f"{BASE}/available"
        said = [render(availability["value_template"], p) for p in _available(mqtt_collector)]
        assert said[0] == availability["payload_available"]
        assert said[-1] == availability["payload_not_available"]


def _available(collector: Collector) -> list[str]:
    return [m.text for m in collector.on(f"{BASE}/available")]


def _scored_stats(collector: Collector) -> list[bytes]:
    """`stats` messages in which pump-1 has a score."""
    stats = [m.payload for m in collector.on(f"{BASE}/stats")]
    return [s for s in stats if json.loads(s)["machines"]["pump-1"]["score"] is not None]


def dashboard_metric_names() -> set[str]:
    """Every metric name in the dashboard's PromQL (panel targets and variables)."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"]]
    names = set()
    for expr in exprs:
        bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]', " ", expr)  # strings, matchers, ranges
        bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)  # label lists
        bare = re.sub(r"\blabel_values\(\s*(\w+)\s*,\s*\w+\s*\)", r"\1", bare)
        for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?", bare):
            if match.group(2) is None and match.group(1) not in PROMQL_WORDS:
                names.add(match.group(1))
    return names


def test_the_grafana_dashboard_queries_only_metrics_the_daemon_exports(
    flapping, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    from prometheus_client.parser import text_string_to_metric_families

    config = daemon_config(flapping, tmp_path, mqtt_broker.port)
    port = free_port()
    config["metrics"]["prometheus_port"] = port
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")
    try:
        mqtt_collector.wait_for(lambda ms: _scored_stats(mqtt_collector), 60)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
    samples = {
        sample.name: sample
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }
    used = dashboard_metric_names()
    assert {"edge_asd_inference_batch_seconds_bucket", "edge_asd_machine_state"} <= used
    assert used - set(samples) == set(), "the dashboard queries metrics nobody exports"
    assert samples["edge_asd_inference_batch_seconds_count"].value > 0  # batches observed
