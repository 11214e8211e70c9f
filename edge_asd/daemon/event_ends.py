"""Events always end: the `end` of events the daemon leaves open when it stops or dies.

- A clean stop (SIGTERM, SIGINT, every source ended) ends each machine's open event with
  `reason: stopped`, through the outbox, before the publisher flushes and stops.
- After a crash or SIGKILL the outbox's `open_events` still lists the events whose start
  it stored and whose end it did not: the restarted daemon ends each with
  `reason: restart` before it starts its publisher and sources, so these ends take the
  seq numbers before anything new. Their `ended_at` is the restart's time: the old
  daemon died somewhere between the event's last message and then. The loop hands these
  ends to event evidence, which writes each as its folder's event.json
  (EvidenceStore.ended_before), so the page no longer shows the event open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from edge_asd.decider import END, END_STOPPED, Decider, DecisionEvent
from edge_asd.mqtt.outbox import Entry, EventMark, Outbox
from edge_asd.mqtt.payloads import MAX_EVENT_BYTES, encode, ended_on_restart

log = logging.getLogger(__name__)


def mark_of(event: DecisionEvent) -> EventMark:
    """What the outbox records about `event`: open after a start or update, not after an end."""
    return EventMark(event.event_id, open=event.type != END)


def end_events_left_open(
    outbox: Outbox, clock_synced: bool, now: Callable[[], float] = time.time
) -> list[Entry]:
    """Append an `end` (reason restart) for each event the outbox shows as open.

    Returns the outbox entries of those ends (their seq, topic and exact payload bytes).
    A stored message that is not an event's JSON (a corrupt row) is logged and forgotten,
    not fatal: the daemon must start.
    """
    ends = []
    for event in outbox.open_events():
        try:  # before `append`, which gives the seq: a refusal must not leave a gap
            end = ended_on_restart(
                event.last_payload, ended_at=now(), seq=0, clock_synced=clock_synced
            )
        except ValueError as exc:  # json's errors are ValueErrors too
            log.error("outbox: cannot end open event %s (%s); forgotten", event.event_id, exc)
            outbox.forget_open_event(event.event_id)
            continue
        entry = outbox.append(
            event.topic,
            lambda seq, end=end: encode({**end, "seq": seq}, max_bytes=MAX_EVENT_BYTES),
            EventMark(event.event_id, open=False),
        )
        log.warning(
            "%s: event end %s (seq %d): left open by the daemon before this one (reason restart)",
            event.topic,
            event.event_id,
            entry.seq,
        )
        ends.append(entry)
    return ends


def ends_on_stop(deciders: Iterable[tuple[str, Decider]], timestamp: float) -> list:
    """(machine, end) for the open event of each (machine, decider): reason stopped."""
    return [
        (name, end) for name, decider in deciders for end in decider.reset(timestamp, END_STOPPED)
    ]
