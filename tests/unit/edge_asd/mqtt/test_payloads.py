"""The MQTT contract: topic names and the event payload, frozen for consumers."""

from __future__ import annotations

import json

import pytest

from edge_asd.decider import Decider
from edge_asd.mqtt.payloads import (
    MAX_CLIP_JSON_CHARS,
    MAX_EVENT_BYTES,
    Topics,
    encode,
    ended_on_restart,
    event_payload,
    iso_utc,
    score_payload,
)

# Frozen: a consumer (dashboard, ticketing, historian) parses these. Changing a name or a
# type here is a breaking change of the MQTT contract in DESIGN.md.
EVENT_CONTRACT = [
    ("event_id", str),
    ("type", str),
    ("device_id", str),
    ("machine", str),
    ("started_at", str),
    ("ended_at", (str, type(None))),
    ("score", float),
    ("peak_score", float),
    ("threshold", float),
    ("model_sha256", str),
    ("seq", int),
    ("clock_synced", bool),
    ("level_offset_db", (float, type(None))),
    ("reason", (str, type(None))),  # end only: normal, unknown, stopped, restart, maintenance
    ("clip", (str, type(None))),  # the event's FLAC on the device; null without evidence
]


def decided_events() -> list:
    """A real decider's start and end for a burst of high scores."""
    decider = Decider(threshold=1.0, k=2, n=3, m_close=2)
    events = []
    for second, score in enumerate([0.1, 2.0, 3.0, 2.5, 0.2, 0.1, 0.3]):
        events += decider.feed(score, 1_700_000_000.0 + second)
    return events


def wire(
    event, seq: int, level_offset_db: float | None = 6.0, clip: str | None = "/e/start.flac"
) -> dict:
    payload = event_payload(
        event,
        device_id="jetson-01",
        machine="pump-1",
        model_sha256="ab" * 32,
        seq=seq,
        clock_synced=True,
        level_offset_db=level_offset_db,
        clip=clip,
    )
    return json.loads(encode(payload))  # what a subscriber gets


def test_event_payload_has_the_frozen_field_names_and_types():
    events = decided_events()
    assert [e.type for e in events] == ["start", "end"]
    for seq, event in enumerate(events, start=1):
        got = wire(event, seq)
        assert list(got) == [name for name, _ in EVENT_CONTRACT]
        for name, kind in EVENT_CONTRACT:
            value = got[name]
            assert isinstance(value, kind), f"{name}: {value!r} is not {kind}"
            assert not (kind is int and isinstance(value, bool)), f"{name} must not be a bool"


def test_an_end_made_on_restart_keeps_the_contract_and_says_restart():
    start, _ = decided_events()
    last = encode(
        event_payload(
            start,
            device_id="d",
            machine="m",
            model_sha256="ab" * 32,
            seq=3,
            clock_synced=False,
            clip="/var/lib/edge-asd/evidence/m/x/start.flac",
        )
    )
    end = json.loads(
        encode(ended_on_restart(last, ended_at=1_700_000_100.0, seq=9, clock_synced=True))
    )
    assert list(end) == [name for name, _ in EVENT_CONTRACT]
    for name, kind in EVENT_CONTRACT:
        assert isinstance(end[name], kind), f"{name}: {end[name]!r} is not {kind}"
    assert (end["type"], end["reason"], end["seq"], end["clock_synced"]) == (
        "end",
        "restart",
        9,
        True,
    )
    assert end["event_id"] == start.event_id
    assert end["started_at"] == "2023-11-14T22:13:21.000Z"  # the start's, kept
    assert end["ended_at"] == "2023-11-14T22:15:00.000Z"  # when the restart found it open
    assert end["clip"] == "/var/lib/edge-asd/evidence/m/x/start.flac"  # the last one's clip


def test_an_end_on_restart_of_a_message_from_before_clips_has_a_null_clip():
    start, _ = decided_events()
    old = event_payload(start, device_id="d", machine="m", model_sha256="ab" * 32, seq=3,
                        clock_synced=True)  # fmt: skip
    del old["clip"]  # stored by a daemon older than evidence
    end = ended_on_restart(encode(old), ended_at=1_700_000_100.0, seq=9, clock_synced=True)
    assert list(end) == [name for name, _ in EVENT_CONTRACT] and end["clip"] is None


def test_an_end_on_restart_refuses_a_stored_message_that_is_not_an_event():
    with pytest.raises(ValueError, match="not an event payload"):
        ended_on_restart(b"[1, 2]", ended_at=0.0, seq=1, clock_synced=True)


def test_event_payload_carries_the_event_and_its_times_in_utc():
    start, end = decided_events()
    got_start, got_end = wire(start, 7), wire(end, 8)
    assert got_start["event_id"] == got_end["event_id"]
    assert got_start["started_at"] == "2023-11-14T22:13:21.000Z"  # the first window above
    assert got_start["ended_at"] is None
    assert got_end["ended_at"] == "2023-11-14T22:13:24.000Z"  # the first window below
    assert (got_start["score"], got_end["peak_score"]) == (3.0, 3.0)
    assert got_end["threshold"] == 1.0
    assert (got_start["seq"], got_end["seq"]) == (7, 8)


def test_an_event_says_how_far_the_input_level_is_from_the_calibrations():
    start, _ = decided_events()
    assert wire(start, 1, level_offset_db=6.0371)["level_offset_db"] == 6.04  # dB, 2 decimals
    assert wire(start, 1, level_offset_db=-2.5)["level_offset_db"] == -2.5
    assert wire(start, 1, level_offset_db=None)["level_offset_db"] is None  # none recorded
    got = wire(start, 1, level_offset_db=3.0)["level_offset_db"]
    assert isinstance(got, float)  # a whole number of dB is still a float on the wire


def test_scores_that_are_not_finite_go_out_as_null_not_invalid_json():
    raw = encode(score_payload(0.0, float("inf"), 1.5, 12.0))
    assert json.loads(raw) == {
        "ts": "1970-01-01T00:00:00.000Z",
        "score": None,
        "threshold": 1.5,
        "stream_seconds": 12.0,
    }


def test_topics_follow_the_contract():
    topics = Topics("edge-asd", "jetson-01")
    assert topics.available == "edge-asd/jetson-01/available"
    assert topics.stats == "edge-asd/jetson-01/stats"
    assert topics.state("pump-1") == "edge-asd/jetson-01/pump-1/state"
    assert topics.event("pump-1") == "edge-asd/jetson-01/pump-1/event"
    assert topics.score("pump-1") == "edge-asd/jetson-01/pump-1/score"


def test_iso_times_keep_milliseconds():
    assert iso_utc(1.2345) == "1970-01-01T00:00:01.234Z"


# Frozen too: Home Assistant's score sensor (edge_asd/mqtt/discovery.py) reads these.
STATS_MACHINE_CONTRACT = [
    ("state", str),
    ("score", (float, type(None))),
    ("threshold", (float, type(None))),
    ("windows_scored", int),
    ("alarms", int),
]


def test_stats_carry_each_machines_latest_score_and_threshold():
    from edge_asd.stats import Stats

    stats = Stats()
    stats.add_machine("pump-1", hop_seconds=1.0, threshold=2.5)
    unscored = json.loads(encode(stats.snapshot()))["machines"]["pump-1"]
    assert (unscored["score"], unscored["threshold"]) == (None, 2.5)
    stats.record_window("pump-1", above=True, alarm=True, state="anomaly", score=3.75)
    stats.record_window("pump-1", above=False, alarm=False, state="anomaly", score=0.5)
    got = json.loads(encode(stats.snapshot()))["machines"]["pump-1"]
    for name, kind in STATS_MACHINE_CONTRACT:
        assert isinstance(got[name], kind), f"{name}: {got[name]!r} is not {kind}"
    assert (got["score"], got["threshold"], got["state"]) == (0.5, 2.5, "anomaly")  # latest


def test_an_event_names_its_clip_or_null():
    start, end = decided_events()
    assert wire(start, 1, clip="/data/evidence/pump-1/x/start.flac")["clip"] == (
        "/data/evidence/pump-1/x/start.flac"
    )
    assert wire(end, 2, clip=None)["clip"] is None  # evidence off, or it could not be written


def test_the_largest_event_with_the_longest_clip_config_allows_fits_max_event_bytes():
    from edge_asd.evidence.layout import CLIP_SUFFIX_CHARS, longest_clip_json_chars

    root = "/" + "é" * ((MAX_CLIP_JSON_CHARS - CLIP_SUFFIX_CHARS - 3) // 6)  # \u00e9: 6 chars
    assert longest_clip_json_chars(root) <= MAX_CLIP_JSON_CHARS  # what config validation allows
    clip = f"{root}/{'m' * 64}/20261130T120000Z_{'0' * 36}/start.flac"
    decider = Decider(threshold=-1.2345678901234567e-300, k=1, n=1, m_close=1)
    decider.feed(1.2345678901234567e-299, 1_700_000_000.123)  # starts
    (end,) = decider.reset(4_102_444_800.0, "maintenance")
    payload = event_payload(
        end,
        device_id="d" * 64,
        machine="m" * 64,
        model_sha256="ab" * 32,
        seq=2**63 - 1,
        clock_synced=False,
        level_offset_db=-1.2345678901234567e200,
        clip=clip,
    )
    data = encode(payload, max_bytes=MAX_EVENT_BYTES)  # raises PayloadTooLarge past it
    assert len(data) > 900  # the case is near the bound, not a small event
