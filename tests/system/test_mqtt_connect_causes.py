"""`edge-asd run` says why it cannot connect to its broker, once, with the fix.

The case reported: a TLS-only mosquitto whose certificate (from a private CA) names
`broker.plant.example`, the daemon connecting to 127.0.0.1; and the same broker with the
daemon given another CA file. Before, the only line, even at `-v`, was "cannot connect
...; retrying with backoff". Checked here, at the default log level: one WARNING over
several retries (counted on the Prometheus endpoint, which answers while MQTT cannot)
that names the cause and the config key to change; and, once a broker comes up, the
`stats` message carries the cause and the count of failed attempts, and the log says how
many failed. The other causes (refused port, unknown host, silence, refused login, TLS
and plain crossed, certificate dates) are in tests/unit/edge_asd/mqtt/test_connect_errors.py.
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
from tests.harness.durable_subscriber import KEEP_USER
from tests.unit.edge_asd.mqtt.test_publisher import make_certificates

pytestmark = [pytest.mark.system, pytest.mark.slow]

FAILURES = re.compile(r"^edge_asd_mqtt_connect_failures_total (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


def daemon_config(flapping, folder: Path, mqtt: dict, prometheus_port: int) -> Path:
    mqtt = {"reconnect_min_seconds": 0.5, "reconnect_max_seconds": 1, **mqtt}
    metrics = {"stats_interval_seconds": 1, "prometheus_port": prometheus_port}
    config = flapping_config(flapping, folder, mqtt, realtime=True, metrics=metrics)
    return write_config(folder, config)


def connect_failures(port: int) -> float:
    """The daemon's failed connection attempts, read from its Prometheus endpoint."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return 0.0  # not up yet
    found = FAILURES.search(text.decode())
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("fault", ["certificate for another name", "another CA file"])
def test_a_certificate_fault_is_logged_once_with_the_cause_and_the_fix(
    flapping, tmp_path: Path, fault: str
):
    server_names = "DNS:broker.plant.example" if fault.endswith("name") else "IP:127.0.0.1"
    certs = make_certificates(tmp_path, server_names)
    ca_file = certs["ca.crt"]
    if fault == "another CA file":
        (tmp_path / "other").mkdir()
        ca_file = make_certificates(tmp_path / "other")["ca.crt"]
    broker = Broker(  # TLS on its only listener
        tmp_path / "broker",
        extra_config=f"cafile {certs['ca.crt']}\ncertfile {certs['server.crt']}\n"
        f"keyfile {certs['server.key']}\n{KEEP_USER}",
    ).start()
    metrics = free_port()
    mqtt = {"port": broker.port, "tls": {"ca_file": str(ca_file)}}
    config = daemon_config(flapping, tmp_path, mqtt, metrics)
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        daemon.wait_for_log(lambda d: connect_failures(metrics) >= 4, timeout_s=120)
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
        broker.stop()
    log = daemon.log()
    said = re.findall(r"WARNING edge_asd\.mqtt\.publisher: MQTT: (.*)", log)
    assert len(said) == 1, said  # four attempts or more, one line, and no other warning
    where = f"cannot connect to 127.0.0.1:{broker.port}: "
    if fault == "certificate for another name":
        assert said[0].startswith(
            f"{where}the broker's certificate names broker.plant.example, not 127.0.0.1 (IP "
            "address mismatch, certificate is not valid for '127.0.0.1'): set mqtt.host to "
            "broker.plant.example"
        ), said
        assert said[0].endswith(
            " (and make it resolve to the broker, e.g. in /etc/hosts) or have the broker's "
            "certificate name 127.0.0.1 (retrying with backoff)"
        ), said
    else:
        assert said[0].startswith(
            f"{where}the CA file {ca_file} did not sign the broker's certificate ("
        ), said
        assert said[0].endswith(
            "): set mqtt.tls.ca_file to the CA certificate that signed the broker's "
            "certificate (mosquitto: its listener's `cafile`) (retrying with backoff)"
        ), said


def test_stats_once_connected_say_why_connecting_failed_and_how_often(flapping, tmp_path: Path):
    broker = Broker(tmp_path / "broker")  # down when the daemon starts
    metrics = free_port()
    config = daemon_config(flapping, tmp_path, {"port": broker.port}, metrics)
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    collector = None
    try:
        daemon.wait_for_log(lambda d: connect_failures(metrics) >= 2, timeout_s=120)
        broker.start()
        collector = Collector(broker.port).start()
        stats_topic = "edge-asd/dev-1/stats"
        collector.wait_for(lambda ms: collector.on(stats_topic), timeout_s=30)
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
        if collector is not None:
            collector.stop()
        broker.stop()
    stats = json.loads(collector.on(stats_topic)[0].payload)
    assert stats["mqtt_connected"] is True
    assert stats["mqtt_last_error"].startswith(
        f"nothing listens on 127.0.0.1:{broker.port} (connection refused): check mqtt.port"
    )
    failed = stats["mqtt_connect_failures"]
    assert failed >= 2
    assert f"MQTT: connected to 127.0.0.1:{broker.port} after {failed} failed attempt(s)" in (
        daemon.log()
    )
    assert daemon.log().count("nothing listens on") == 1
