"""A broker that keeps sessions across restarts, and a subscriber that misses nothing.

For tests that stop the broker while events occur: mosquitto with persistence saves the
subscriber's session (and the QoS 1 messages queued for it) when stopped and restores
them when started, and the subscriber keeps a session (clean_session=False, fixed client
id), so every message published while it was away reaches it once it is back.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.harness.broker import Broker, Message
from tests.harness.daemon_process import DaemonProcess

# Started as root, mosquitto drops to its own user, which cannot read a test's private
# temporary folder (password file, certificates, persistence); as another user it is a no-op.
KEEP_USER = "user root\n"


def persistent_broker(workdir: Path) -> Broker:
    """A started mosquitto that saves sessions and queued messages in `workdir`/db."""
    db = workdir / "db"
    db.mkdir(exist_ok=True)
    extra = f"persistence true\npersistence_location {db}/\nmax_queued_messages 100000\n{KEEP_USER}"
    return Broker(workdir, extra_config=extra).start()


class DurableSubscriber:
    """Subscribes to `topic` at QoS 1 with a persistent session; keeps messages in order."""

    def __init__(self, port: int, topic: str = "#") -> None:
        self.port = port
        self.topic = topic
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"durable-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.reconnect_delay_set(1, 1)  # back quickly after the broker restarts
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()

    def start(self) -> DurableSubscriber:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the durable subscriber could not subscribe")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append(Message(msg.topic, msg.payload, msg.retain, msg.qos))

    def on(self, topic_suffix: str) -> list[Message]:
        """Messages so far whose topic ends with `topic_suffix`."""
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(topic_suffix)]

    def events(self) -> list[dict]:
        """Each `.../event` message's JSON once, in order of first arrival.

        QoS 1 is at-least-once: a message whose PUBACK the broker had not processed when
        it stopped, or the daemon had not recorded when it was killed, comes again, and
        consumers drop it by (topic, `seq`), as this does. Every copy: `on("/event")`.
        """
        first: dict[tuple[str, int], dict] = {}
        for message in self.on("/event"):
            event = json.loads(message.payload)
            first.setdefault((message.topic, event["seq"]), event)
        return list(first.values())

    def event_seqs(self) -> list[int]:
        """Each event's seq in order of first arrival."""
        return [event["seq"] for event in self.events()]

    def wait_for(self, predicate, timeout_s: float = 20.0) -> None:
        """Wait until predicate(self) is true; raises TimeoutError with what arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.05)
        with self._lock:
            got = [(m.topic, m.payload[:80]) for m in self.messages]
        raise TimeoutError(f"condition not met in {timeout_s} s; got {got}")


class DurableRun:
    """A persistent broker, a durable subscriber on `topic`, and the daemons started with
    `daemon()`, as a context: on exit every daemon is made dead (its log kept), then the
    subscriber and the broker stop. The subscriber's messages stay for the assertions."""

    def __init__(self, workdir: Path, topic: str = "edge-asd/#") -> None:
        self.workdir = workdir
        self.topic = topic
        self._daemons: list[DaemonProcess] = []

    def __enter__(self) -> DurableRun:
        self.broker = persistent_broker(self.workdir)
        try:
            self.subscriber = DurableSubscriber(self.broker.port, self.topic).start()
        except BaseException:
            self.broker.stop()
            raise
        return self

    def daemon(self, config: Path, log_name: str) -> DaemonProcess:
        """`edge-asd run --config config`, its log `log_name` in the work folder."""
        process = DaemonProcess(config, self.workdir / log_name)
        self._daemons.append(process)
        return process

    def __exit__(self, *exc_info: object) -> None:
        try:
            for process in self._daemons:
                process.ensure_dead()
        finally:
            self.subscriber.stop()
            self.broker.stop()
