"""A real mosquitto broker on a free loopback port, and a subscriber that collects messages."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_asd.mosquitto import Broker, mosquitto_binary

__all__ = ["Broker", "Collector", "Message"]


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def text(self) -> str:
        return self.payload.decode()


@dataclass
class Collector:
    """Subscribes to `topic` and keeps every message it receives, in order."""

    port: int
    topic: str = "#"
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()

    def start(self) -> Collector:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the collector could not subscribe")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append(Message(msg.topic, msg.payload, msg.retain, msg.qos))

    def on(self, topic: str) -> list[Message]:
        """Messages received so far on exactly `topic`."""
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate, timeout_s: float = 10.0) -> list[Message]:
        """Wait until predicate(messages) is true; returns the messages, raises on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.messages)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.02)
        raise TimeoutError(f"condition not met in {timeout_s} s; got {len(snapshot)} messages")


@pytest.fixture
def mqtt_broker(tmp_path: Path):
    """A running mosquitto on a free loopback port (stopped after the test)."""
    mosquitto_binary()  # fails the test with the install hint when mosquitto is missing
    broker = Broker(tmp_path).start()
    yield broker
    broker.stop()


@pytest.fixture
def mqtt_collector(mqtt_broker: Broker):
    """A subscriber to every topic of `mqtt_broker`, started before the test."""
    collector = Collector(mqtt_broker.port).start()
    yield collector
    collector.stop()
