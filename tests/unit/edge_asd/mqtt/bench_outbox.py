"""Outbox and publisher benchmark: prints costs, asserts nothing.

Run: `.venv/bin/python -m tests.unit.edge_asd.mqtt.bench_outbox`

- append: one event committed to the SQLite outbox (WAL, synchronous=FULL: an fsync);
- pending + ack: reading a page of 100 events and deleting them one by one;
- replay: events per second from a full outbox through a local mosquitto to PUBACK
  (what a reconnect after a long outage costs).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from edge_asd.config.outputs import MqttConfig
from edge_asd.mosquitto import Broker
from edge_asd.mqtt.outbox import Outbox
from edge_asd.mqtt.publisher import Publisher

PAYLOAD = b'{"event_id":"8b6a5c2e-0000-4000-8000-000000000000","type":"start","seq":1}' * 3


def bench_append_and_ack(folder: Path) -> None:
    outbox = Outbox(folder / "bench.sqlite")
    started = time.perf_counter()
    n = 300
    for _ in range(n):
        outbox.append("edge-asd/dev/pump/event", lambda seq: PAYLOAD)
    append_ms = (time.perf_counter() - started) / n * 1000
    print(f"outbox append (committed, fsync): {append_ms:7.3f} ms per event")
    started = time.perf_counter()
    page = outbox.pending(limit=100)
    for entry in page:
        outbox.ack(entry.seq)
    print(f"outbox pending(100) + 100 acks:   {(time.perf_counter() - started) * 1000:7.1f} ms")
    outbox.close()


def bench_replay(folder: Path, n_events: int = 2000) -> None:
    outbox = Outbox(folder / "replay.sqlite")
    for _ in range(n_events):
        outbox.append("edge-asd/dev/pump/event", lambda seq: PAYLOAD)
    broker = Broker(folder).start()
    publisher = Publisher(MqttConfig(host="127.0.0.1", port=broker.port), "dev", outbox)
    try:
        started = time.perf_counter()
        publisher.start()
        publisher.flush(timeout_s=120)
        seconds = time.perf_counter() - started
        depth = outbox.health().depth
        print(f"replay of {n_events} events to PUBACK: {seconds:6.2f} s "
              f"({n_events / seconds:6.0f} events/s), {depth} left")  # fmt: skip
    finally:
        publisher.stop()
        broker.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_append_and_ack(Path(tmp))
        bench_replay(Path(tmp))


if __name__ == "__main__":
    main()
