"""`edge-asd run` against a mosquitto that requires TLS and a password.

Certificates are made here with openssl (a CA and a server certificate for 127.0.0.1,
tests/unit/edge_asd/mqtt/test_publisher.py's helper, whose tests cover the publisher
alone with a client certificate and with a password in plain TCP). The broker has a
TLS listener for the daemon and a plain one on which this test watches with its own
password. Checked: the daemon connects and delivers; a wrong password is refused with a
clear message and retried, and the secret appears in no log (the daemon's at debug level,
the broker's, `validate-config`'s); with TLS configured, the daemon never speaks MQTT in
clear: a listener that is not TLS only ever receives a TLS handshake.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_asd.mosquitto import free_port, wait_for_port
from tests.harness.broker import Broker, Collector
from tests.harness.daemon_process import DaemonProcess, flapping_calibration, write_config
from tests.harness.durable_subscriber import KEEP_USER
from tests.unit.edge_asd.mqtt.test_publisher import make_certificates

pytestmark = [pytest.mark.system, pytest.mark.slow]

BASE = "edge-asd/dev-1"
SECRET = "s3cret-Pa55-do-not-log"
WRONG_SECRET = "wr0ng-Pa55-do-not-log"
WATCHER_SECRET = "watcher-pw"
VERBOSE = ("sh", "-c", 'exec "$0" -v "$@"')  # runs `edge-asd -v run ...`: debug logging


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


@pytest.fixture
def tls_broker(tmp_path: Path):
    """mosquitto: TLS + password on `.port`, plain + password on `.watch_port`."""
    certs = make_certificates(tmp_path)
    passwords = tmp_path / "passwords"
    for index, (user, secret) in enumerate((("edge", SECRET), ("watcher", WATCHER_SECRET))):
        create = ["-c"] if index == 0 else []
        subprocess.run(
            ["mosquitto_passwd", "-b", *create, str(passwords), user, secret], check=True
        )
    watch_port = free_port()
    broker = Broker(
        tmp_path / "broker",
        extra_config=(
            f"cafile {certs['ca.crt']}\ncertfile {certs['server.crt']}\n"
            f"keyfile {certs['server.key']}\nallow_anonymous false\n"
            f"password_file {passwords}\nlistener {watch_port} 127.0.0.1\n{KEEP_USER}"
        ),
    ).start()
    wait_for_port(watch_port)  # start() waited for the first listener only
    broker.watch_port = watch_port
    broker.ca_file = certs["ca.crt"]
    yield broker
    broker.stop()


@pytest.fixture
def watcher(tls_broker: Broker):
    collector = Collector(tls_broker.watch_port)
    collector.client.username_pw_set("watcher", WATCHER_SECRET)
    yield collector.start()
    collector.stop()


def tls_config(flapping, folder: Path, port: int, ca_file: Path, password: str) -> Path:
    secret_file = folder / "mqtt-password"
    secret_file.write_text(password + "\n")
    secret_file.chmod(0o600)
    source = {"kind": "file", "name": "rec", "path": str(flapping["folder"] / "rec.wav"),
              "realtime": False, "loop": True}  # fmt: skip
    config = {
        "device_id": "dev-1",
        "model": str(flapping["model"]),
        "audio": {"sources": [source]},
        "machines": [
            {
                "name": "pump-1",
                "source": "rec",
                "calibration": str(flapping["folder"] / "calibration.yaml"),
                "decision": {"k": 1, "n": 1, "m_close": 1},
            }
        ],
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "username": "edge",
            "password_file": str(secret_file),
            "tls": {"ca_file": str(ca_file)},
            "reconnect_min_seconds": 0.5,
            "reconnect_max_seconds": 1,
        },
        "outbox": {"path": str(folder / "outbox.sqlite")},
    }
    return write_config(folder, config)


def test_the_daemon_connects_over_tls_with_its_password_and_delivers(
    flapping, tls_broker: Broker, watcher: Collector, tmp_path: Path
):
    config = tls_config(flapping, tmp_path, tls_broker.port, tls_broker.ca_file, SECRET)
    daemon = DaemonProcess(config, tmp_path / "daemon.log", wrapper=VERBOSE)
    try:
        watcher.wait_for(lambda ms: len(watcher.on(f"{BASE}/pump-1/event")) >= 3, 120)
        assert daemon.terminate() == 0
        watcher.wait_for(lambda ms: [m.text for m in watcher.on(f"{BASE}/available")][-1:]
                         == ["stopped"])  # fmt: skip
    finally:
        daemon.ensure_dead()
    assert "(TLS)" in daemon.log()
    events = [json.loads(m.payload) for m in watcher.on(f"{BASE}/pump-1/event")]
    assert [e["seq"] for e in events][:3] == [1, 2, 3]
    assert_secret_absent(daemon.log(), tls_broker)


def test_a_wrong_password_is_refused_clearly_retried_and_never_logged(
    flapping, tls_broker: Broker, watcher: Collector, tmp_path: Path
):
    config = tls_config(flapping, tmp_path, tls_broker.port, tls_broker.ca_file, WRONG_SECRET)
    daemon = DaemonProcess(config, tmp_path / "daemon.log", wrapper=VERBOSE)
    broker_log = tls_broker.workdir / "mosquitto.log"
    try:
        daemon.wait_for_log(lambda d: "refused the username" in d.log(), timeout_s=90)
        # it keeps trying (backoff of at most 1 s here): the broker turns it away again
        deadline = time.monotonic() + 30
        while broker_log.read_text().count("not authorised") < 3:
            assert time.monotonic() < deadline, broker_log.read_text()[-2000:]
            time.sleep(0.2)
        assert daemon.process.poll() is None  # still running, still retrying
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
    log = daemon.log()
    refusals = re.findall(r"WARNING edge_asd\.mqtt\.publisher: MQTT: (.*)", log)
    assert refusals[0].startswith(
        f"cannot connect to 127.0.0.1:{tls_broker.port}: the broker refused the username "
        "'edge' or its password (Not authorized): check mqtt.username and the password"
    ), refusals
    assert log.count("refused the username") == 1  # said once, not at every retry
    assert not watcher.on(f"{BASE}/available")  # it never got in
    validate = subprocess.run(
        [sys.executable, "-m", "edge_asd.cli", "-v", "validate-config", str(config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert validate.returncode == 0, validate.stderr
    assert_secret_absent(log + validate.stdout + validate.stderr, tls_broker)


def assert_secret_absent(text: str, broker: Broker) -> None:
    everything = text + (broker.workdir / "mosquitto.log").read_text()
    for secret in (SECRET, WRONG_SECRET):
        assert secret not in everything
        assert secret.encode().hex() not in everything  # nor as the hex of a packet dump


class FirstBytes:
    """A TCP listener that records the first bytes of every connection made to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                try:
                    self.received.append(connection.recv(4096))
                except OSError:
                    self.received.append(b"")

    def close(self) -> None:
        self.server.close()


def test_with_tls_configured_no_mqtt_goes_out_in_clear(flapping, tmp_path: Path):
    listener = FirstBytes()  # not TLS: what a plain broker (or an impostor) would get
    ca_file = make_certificates(tmp_path)["ca.crt"]
    config = tls_config(flapping, tmp_path, listener.port, ca_file, SECRET)
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        deadline = time.monotonic() + 90
        while len([b for b in listener.received if b]) < 2:  # the first try and a retry
            assert time.monotonic() < deadline, daemon.log()[-2000:]
            assert daemon.process.poll() is None, daemon.log()[-2000:]
            time.sleep(0.1)
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
        listener.close()
    for first in (b for b in listener.received if b):
        assert first[0] == 0x16, first[:16]  # a TLS handshake record (ClientHello)
        assert first[0] != 0x10 and b"MQTT" not in first  # never an MQTT CONNECT
        assert SECRET.encode() not in first and b"edge" not in first
