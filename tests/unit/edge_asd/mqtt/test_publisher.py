"""The publisher against a real mosquitto: availability, states, events through outages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_asd.config.outputs import MqttConfig, TlsConfig
from edge_asd.mqtt.outbox import Outbox
from edge_asd.mqtt.publisher import Publisher
from tests.harness.broker import Broker, Collector
from tests.harness.durable_subscriber import KEEP_USER, DurableSubscriber, persistent_broker

DEVICE = "dev-1"
BASE = f"edge-asd/{DEVICE}"


def make_publisher(port: int, outbox_path: Path, **mqtt: object) -> Publisher:
    config = MqttConfig(
        host="127.0.0.1", port=port, reconnect_min_seconds=1, reconnect_max_seconds=2, **mqtt
    )
    return Publisher(config, DEVICE, Outbox(outbox_path), password=mqtt_password(mqtt))


def mqtt_password(mqtt: dict) -> str | None:
    return "s3cret" if mqtt.get("username") == "edge" else None


def event_bytes(seq: int) -> bytes:
    return json.dumps({"seq": seq}).encode()


def wait_until(predicate, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def texts(collector: Collector, topic: str) -> list[str]:
    return [m.text for m in collector.on(topic)]


def test_online_on_connect_retained_states_and_stopped_on_clean_exit(
    mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    publisher = make_publisher(mqtt_broker.port, tmp_path / "o.sqlite")
    publisher.start()
    mqtt_collector.wait_for(lambda ms: "online" in texts(mqtt_collector, f"{BASE}/available"))
    publisher.set_state("pump-1", "normal")
    publisher.set_state("pump-1", "normal")  # unchanged: not sent again
    publisher.set_state("pump-1", "anomaly")
    mqtt_collector.wait_for(lambda ms: len(mqtt_collector.on(f"{BASE}/pump-1/state")) == 2)

    late = Collector(mqtt_broker.port).start()  # subscribes after the fact: sees retained
    late.wait_for(lambda ms: len(ms) >= 2)
    retained = {m.topic: (m.text, m.retain) for m in late.messages}
    late.stop()
    assert retained[f"{BASE}/available"] == ("online", True)
    assert retained[f"{BASE}/pump-1/state"] == ("anomaly", True)

    publisher.stop()
    mqtt_collector.wait_for(lambda ms: "stopped" in texts(mqtt_collector, f"{BASE}/available"))
    assert texts(mqtt_collector, f"{BASE}/pump-1/state") == ["normal", "anomaly"]
    assert "offline" not in texts(mqtt_collector, f"{BASE}/available")


def test_events_go_out_in_seq_order_and_leave_the_outbox_on_puback(
    mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    publisher = make_publisher(mqtt_broker.port, tmp_path / "o.sqlite")
    publisher.start()
    for machine in ("pump-1", "fan-2") * 30:
        publisher.publish_event(machine, event_bytes)
    assert publisher.flush(timeout_s=15)
    events = [m for m in mqtt_collector.messages if m.topic.endswith("/event")]
    assert [json.loads(m.payload)["seq"] for m in events] == list(range(1, 61))
    assert all(m.qos == 1 and not m.retain for m in events)
    assert events[1].topic == f"{BASE}/fan-2/event"
    assert publisher.outbox.health().depth == 0
    publisher.stop()


def test_events_during_a_broker_outage_all_arrive_in_order_when_it_returns(tmp_path: Path):
    broker = persistent_broker(tmp_path)
    subscriber = DurableSubscriber(broker.port).start()
    publisher = make_publisher(broker.port, tmp_path / "o.sqlite")
    try:
        publisher.start()
        for _ in range(3):
            publisher.publish_event("pump-1", event_bytes)
        assert publisher.flush(timeout_s=15)
        broker.stop()
        wait_until(lambda: not publisher.connected)
        for _ in range(5):
            publisher.publish_event("pump-1", event_bytes)
        assert publisher.outbox.health().depth == 5  # waiting on disk
        broker.start()
        subscriber.wait_for(lambda s: len(s.event_seqs()) >= 8)
        assert subscriber.event_seqs() == list(range(1, 9))
        assert publisher.flush(timeout_s=15)
        assert publisher.status().connects == 2
    finally:
        publisher.stop()
        subscriber.stop()
        broker.stop()


def test_a_broker_down_at_boot_is_retried_until_it_comes_up(tmp_path: Path):
    broker = persistent_broker(tmp_path)
    subscriber = DurableSubscriber(broker.port).start()
    broker.stop()  # down before the publisher ever connects
    publisher = make_publisher(broker.port, tmp_path / "o.sqlite")
    try:
        publisher.start()
        publisher.publish_event("fan-2", event_bytes)
        time.sleep(1.5)  # at least one failed attempt
        assert not publisher.connected
        assert "nothing listens on" in (publisher.status().last_error or "")
        broker.start()
        subscriber.wait_for(lambda s: s.event_seqs() == [1])
        subscriber.wait_for(lambda s: [m.text for m in s.on("/available")][-1:] == ["online"])
    finally:
        publisher.stop()
        subscriber.stop()
        broker.stop()


KILLED_PUBLISHER = textwrap.dedent(
    """
    import sys, time
    from edge_asd.config.outputs import MqttConfig
    from edge_asd.mqtt.outbox import Outbox
    from edge_asd.mqtt.publisher import Publisher

    config = MqttConfig(host="127.0.0.1", port=int(sys.argv[1]))
    publisher = Publisher(config, "dev-1", Outbox(sys.argv[2]))
    publisher.start()
    while not publisher.connected:
        time.sleep(0.05)
    print("connected", flush=True)
    time.sleep(60)
    """
)


def test_a_killed_publisher_leaves_offline_as_its_last_will(
    mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUBLISHER, str(mqtt_broker.port), str(tmp_path / "o")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "connected"
        process.kill()
        mqtt_collector.wait_for(lambda ms: "offline" in texts(mqtt_collector, f"{BASE}/available"))
    finally:
        process.kill()
        process.wait()
    assert texts(mqtt_collector, f"{BASE}/available") == ["online", "offline"]


def test_username_and_password_are_required_and_used(tmp_path: Path):
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "edge", "s3cret"], check=True)
    extra = f"allow_anonymous false\npassword_file {passwords}\n{KEEP_USER}"
    broker = Broker(tmp_path, extra_config=extra).start()
    anonymous = make_publisher(broker.port, tmp_path / "a.sqlite")
    good = make_publisher(broker.port, tmp_path / "g.sqlite", username="edge")
    try:
        anonymous.start()
        good.start()
        wait_until(lambda: good.connected)
        time.sleep(0.5)
        assert not anonymous.connected
        assert "refused" in (anonymous.status().last_error or "")
    finally:
        anonymous.stop(flush_timeout_s=0)
        good.stop()
        broker.stop()


def make_certificates(
    folder: Path, server_names: str = "IP:127.0.0.1,DNS:localhost"
) -> dict[str, Path]:
    """A CA, and a server and a client certificate it signed (for `server_names`)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    new_key = ["-newkey", "rsa:2048", "-nodes"]
    run("req", "-x509", *new_key, "-days", "2", "-subj", "/CN=test-ca", "-keyout", "ca.key",
        "-out", "ca.crt")  # fmt: skip
    (folder / "san.ext").write_text(f"subjectAltName={server_names}\n")
    for name in ("server", "client"):
        run("req", *new_key, "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")  # fmt: skip
        signing = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"]
        run("x509", "-req", "-in", f"{name}.csr", *signing, "-extfile", "san.ext",
            "-out", f"{name}.crt")  # fmt: skip
    return {p.stem + p.suffix: p for p in folder.iterdir()}


def test_tls_with_a_client_certificate_connects_and_delivers(tmp_path: Path):
    certs = make_certificates(tmp_path)
    broker = Broker(
        tmp_path,
        extra_config=(
            f"cafile {certs['ca.crt']}\ncertfile {certs['server.crt']}\n"
            f"keyfile {certs['server.key']}\nrequire_certificate true\n{KEEP_USER}"
        ),
    ).start()
    tls = TlsConfig(
        ca_file=certs["ca.crt"], cert_file=certs["client.crt"], key_file=certs["client.key"]
    )
    publisher = make_publisher(broker.port, tmp_path / "o.sqlite", tls=tls)
    without_cert = make_publisher(
        broker.port, tmp_path / "n.sqlite", tls=TlsConfig(ca_file=certs["ca.crt"]), client_id="x"
    )
    try:
        publisher.start()
        without_cert.start()
        publisher.publish_event("pump-1", event_bytes)
        assert publisher.flush(timeout_s=15)  # acknowledged over TLS
        assert not without_cert.connected
    finally:
        publisher.stop()
        without_cert.stop(flush_timeout_s=0)
        broker.stop()


def test_a_broker_restarted_without_persistence_learns_online_and_states_again(
    mqtt_broker: Broker, tmp_path: Path
):
    publisher = make_publisher(mqtt_broker.port, tmp_path / "o.sqlite")
    try:
        publisher.start()
        wait_until(lambda: publisher.connected)
        publisher.set_state("pump-1", "anomaly")
        mqtt_broker.stop()  # persistence false: every retained message is gone
        wait_until(lambda: not publisher.connected)
        publisher.set_state("pump-1", "normal")  # changed while away
        mqtt_broker.start()
        watcher = Collector(mqtt_broker.port).start()  # live or retained: the broker has it
        watcher.wait_for(lambda ms: "normal" in texts(watcher, f"{BASE}/pump-1/state"))
        watcher.stop()
        late = Collector(mqtt_broker.port).start()
        late.wait_for(lambda ms: len(ms) >= 2)
        retained = {m.topic: m.text for m in late.messages if m.retain}
        late.stop()
    finally:
        publisher.stop()
    assert retained == {f"{BASE}/available": "online", f"{BASE}/pump-1/state": "normal"}


def test_an_event_resent_after_a_kill_counts_once_for_a_subscriber_that_drops_copies_by_seq(
    tmp_path: Path,
):
    # A daemon SIGKILLed after the broker took an event but before its outbox recorded the
    # PUBACK resends it when restarted: QoS 1 is at-least-once, consumers drop the copy.
    broker = persistent_broker(tmp_path)
    subscriber = DurableSubscriber(broker.port, f"{BASE}/#").start()
    sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    try:
        sender.connect("127.0.0.1", broker.port)
        sender.loop_start()
        for seq in (1, 1, 2):
            sender.publish(f"{BASE}/pump-1/event", event_bytes(seq), qos=1).wait_for_publish(5)
        subscriber.wait_for(lambda s: len(s.on("/event")) == 3)
    finally:
        sender.loop_stop()
        sender.disconnect()
        subscriber.stop()
        broker.stop()
    assert subscriber.event_seqs() == [1, 2]
    assert [e["seq"] for e in subscriber.events()] == [1, 2]
