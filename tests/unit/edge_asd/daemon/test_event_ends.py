"""Events always end: the outbox remembers which are open, a restart ends them first."""

from __future__ import annotations

import json
from dataclasses import replace

from edge_asd.daemon.event_ends import end_events_left_open, ends_on_stop, mark_of
from edge_asd.decider import Decider
from edge_asd.mqtt.outbox import Outbox
from edge_asd.mqtt.payloads import encode, event_payload

TOPIC = "edge-asd/dev/pump-1/event"


def store(outbox: Outbox, event) -> int:
    def render(seq: int) -> bytes:
        payload = event_payload(
            event,
            device_id="dev",
            machine="pump-1",
            model_sha256="ab" * 32,
            seq=seq,
            clock_synced=True,
        )
        return encode(payload)

    return outbox.append(TOPIC, render, mark_of(event)).seq


def opened_events(count: int) -> list:
    """`count` starts, each of its own decider (each its own event)."""
    return [Decider(0.5, k=1, n=1, m_close=5).feed(0.9, 100.0 + i)[0] for i in range(count)]


def test_a_restart_ends_the_events_a_killed_daemon_left_open_before_anything_new(tmp_path):
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    left_open, ended = opened_events(2)
    store(outbox, left_open)
    store(outbox, ended)
    closing = Decider(0.5, k=1, n=1, m_close=1)
    closing.feed(0.9, 0.0)
    store(outbox, closing.feed(0.1, 1.0)[0])  # the end of another event
    for seq in (1, 2, 3):
        outbox.ack(seq)  # acknowledged events leave the outbox; open ones are still known
    store(outbox, replace(ended, type="end", ended_at=105.0, reason="normal"))
    outbox.close()  # as a SIGKILL leaves it: nothing told the file more

    restarted = Outbox(path)
    ends = end_events_left_open(restarted, clock_synced=True, now=lambda: 200.0)
    assert [e.seq for e in ends] == [5]  # the next seq: before any event of the new run
    assert ends[0].payload == restarted.pending()[-1].payload  # what evidence writes
    end = json.loads(restarted.pending()[-1].payload)
    assert (end["event_id"], end["type"], end["reason"]) == (left_open.event_id, "end", "restart")
    assert end["ended_at"] == "1970-01-01T00:03:20.000Z"
    assert restarted.pending()[-1].topic == TOPIC
    # Ended once: the next restart finds nothing open.
    assert end_events_left_open(restarted, clock_synced=True) == []


def test_a_corrupt_open_event_is_forgotten_without_a_gap_in_seq(tmp_path, caplog):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    (event,) = opened_events(1)
    outbox.append(TOPIC, lambda seq: b"not json", mark_of(event))
    assert end_events_left_open(outbox, clock_synced=True) == []
    assert f"cannot end open event {event.event_id}" in caplog.text
    assert outbox.open_events() == []
    assert outbox.next_seq == 2  # the refused end took no seq


def test_a_clean_stop_ends_each_open_event_with_reason_stopped():
    open_one = Decider(0.5, k=1, n=1, m_close=5)
    open_one.feed(0.9, 0.0)
    idle = Decider(0.5, k=1, n=1, m_close=5)
    idle.feed(0.1, 0.0)
    ends = ends_on_stop([("pump-1", open_one), ("fan-2", idle)], timestamp=50.0)
    assert [(name, e.type, e.reason, e.ended_at) for name, e in ends] == [
        ("pump-1", "end", "stopped", 50.0)
    ]
