"""A broker outage of more than 30 s while more than 20 events occur: none is lost.

Extends tests/system/test_daemon_outage.py (a short outage; the daemon SIGKILLed while the
broker is down) to the length and volume the reliability issue asks for, with the same
set-up: `edge-asd run` replays a recording as fast as it scores it, with a calibration
whose threshold sits at the median of the recording's own scores and a 1-of-1 decider,
so events open and close every few windows; a subscriber with a persistent session on a
broker that keeps sessions across restarts sees everything the daemon delivered.

QoS 1 is at-least-once: a message in flight when the broker went down may arrive twice.
A consumer drops the copy by `seq` (unique per device, in the payload); `event_id` ties
the start, updates and end of one anomaly together.
"""

from __future__ import annotations

import inspect
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from edge_asd.mqtt.publisher import Publisher
from tests.harness.daemon_process import flapping_calibration
from tests.harness.durable_subscriber import DurableRun
from tests.system.test_daemon_outage import daemon_config

pytestmark = [pytest.mark.system, pytest.mark.slow]

OUTAGE_SECONDS = 32.0
EVENTS_DURING_OUTAGE = 20
MAX_INFLIGHT = 50  # the publisher's default: at most this many events can be resent


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


def test_a_30_s_outage_with_20_events_delivers_every_event_in_order_after_reconnect(
    flapping, tmp_path: Path
):
    assert inspect.signature(Publisher).parameters["max_inflight"].default == MAX_INFLIGHT
    with DurableRun(tmp_path) as run:
        broker, subscriber = run.broker, run.subscriber
        daemon = run.daemon(daemon_config(flapping, tmp_path, broker.port), "log")
        subscriber.wait_for(lambda s: len(s.event_seqs()) >= 2, timeout_s=120)
        broker.stop()
        down_at = time.monotonic()
        before = len(daemon.logged_seqs())
        daemon.wait_for_log(
            lambda d: len(d.logged_seqs()) >= before + EVENTS_DURING_OUTAGE, timeout_s=180
        )
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        during = daemon.logged_seqs()[before:]
        outage_seconds = time.monotonic() - down_at
        broker.start()
        subscriber.wait_for(lambda s: set(during) <= set(s.event_seqs()), timeout_s=120)
        assert daemon.terminate() == 0
        subscriber.wait_for(lambda s: [m.text for m in s.on("/available")][-1:] == ["stopped"])

    assert outage_seconds >= 30.0 and len(during) >= EVENTS_DURING_OUTAGE
    logged = daemon.logged_seqs()
    assert logged == list(range(1, len(logged) + 1))
    # Every event the daemon made arrived; first arrivals are in seq order.
    assert subscriber.event_seqs() == logged
    # Duplicates are QoS 1 resends: the very same bytes, of events that were in flight.
    first_copy: dict[int, bytes] = {}
    for message in subscriber.on("/event"):
        seq = json.loads(message.payload)["seq"]
        assert first_copy.setdefault(seq, message.payload) == message.payload
    copies = Counter(json.loads(m.payload)["seq"] for m in subscriber.on("/event"))
    duplicated = sum(1 for n in copies.values() if n > 1)
    assert duplicated <= MAX_INFLIGHT
    print(
        f"outage {outage_seconds:.1f} s: {len(during)} events during it, {len(logged)} in all, "
        f"all delivered; {duplicated} delivered twice"
    )
    # De-duplicated by seq, each event_id reads start, updates, end: no anomaly is garbled,
    # and one machine's anomalies never overlap, so all but the newest have ended.
    by_id: dict[str, list[str]] = defaultdict(list)
    for event in sorted({e["seq"]: e for e in subscriber.events()}.values(), key=by_seq):
        by_id[event["event_id"]].append(event["type"])
    *closed, newest = by_id.values()
    for types in [*closed, newest]:
        assert types[0] == "start" and set(types[1:-1]) <= {"update"}, types
    assert all(types[-1] == "end" for types in closed)
    assert len(closed) >= EVENTS_DURING_OUTAGE // 3


def by_seq(event: dict) -> int:
    return event["seq"]
