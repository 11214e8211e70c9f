"""The MQTT contract: topic names and the JSON of `event`, `score` and `stats`.

Topics live under `{topic_prefix}/{device_id}` (see DESIGN.md's MQTT contract):

    available          online / stopped / offline (last will)   retained, QoS 1
    {machine}/state    normal / anomaly / unknown / maintenance  retained, QoS 1
    {machine}/maintenance/set  on / off (subscribed: maintenance mode, see daemon/maintenance)
    {machine}/event    event JSON (EVENT_FIELDS)                 QoS 1, via the outbox
    {machine}/score    {"ts", "score", "threshold", "stream_seconds"}  QoS 0, when enabled
    stats              stats JSON                                QoS 0

Times are ISO 8601 UTC strings with milliseconds (`2025-01-31T12:00:00.000Z`). An
event's fields and their types are frozen by tests/unit/edge_asd/mqtt/test_payloads.py:
consumers (dashboards, ticket systems) parse them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from edge_asd.decider import END, END_RESTART, DecisionEvent

# Bounds on what a device sends, so that no value (a long error message, a corrupt
# float) can make a message a broker or a consumer refuses: strings quoted in a payload
# (a device's or a disk's error in `stats`) are cut to MAX_STRING_CHARS, an event (fixed
# fields, names of at most 64 characters) stays under MAX_EVENT_BYTES, anything else
# (`stats` of 64 machines and 16 inputs) under MAX_PAYLOAD_BYTES.
MAX_STRING_CHARS = 512
MAX_EVENT_BYTES = 1024
MAX_PAYLOAD_BYTES = 65536
# An event's `clip` as JSON (quotes and escapes included): every other field together
# take at most ~610 bytes (64-character names, a uuid, 17-digit floats, a 19-digit seq).
MAX_CLIP_JSON_CHARS = 400

AVAILABLE_ONLINE = "online"
AVAILABLE_STOPPED = "stopped"
AVAILABLE_OFFLINE = "offline"

# The event payload's fields and JSON types, in order; `None` allowed where marked.
EVENT_FIELDS: dict[str, tuple[type, ...]] = {
    "event_id": (str,),
    "type": (str,),
    "device_id": (str,),
    "machine": (str,),
    "started_at": (str,),
    "ended_at": (str, type(None)),
    "score": (float,),
    "peak_score": (float,),
    "threshold": (float,),
    "model_sha256": (str,),
    "seq": (int,),
    "clock_synced": (bool,),
    "level_offset_db": (float, type(None)),
    "reason": (str, type(None)),
    "clip": (str, type(None)),
}


@dataclass(frozen=True)
class Topics:
    """Topic names of one device."""

    prefix: str
    device_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device_id}"

    @property
    def available(self) -> str:
        return f"{self.base}/available"

    @property
    def stats(self) -> str:
        return f"{self.base}/stats"

    def state(self, machine: str) -> str:
        return f"{self.base}/{machine}/state"

    def event(self, machine: str) -> str:
        return f"{self.base}/{machine}/event"

    def score(self, machine: str) -> str:
        return f"{self.base}/{machine}/score"

    def maintenance_set(self, machine: str) -> str:
        """Where an operator sets a machine's maintenance mode (`on` / `off`)."""
        return f"{self.base}/{machine}/maintenance/set"


def iso_utc(unix_seconds: float) -> str:
    """`2025-01-31T12:00:00.000Z` for a Unix time in seconds."""
    moment = datetime.fromtimestamp(unix_seconds, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_payload(
    event: DecisionEvent,
    *,
    device_id: str,
    machine: str,
    model_sha256: str,
    seq: int,
    clock_synced: bool,
    level_offset_db: float | None = None,
    clip: str | None = None,
) -> dict[str, Any]:
    """The `{machine}/event` JSON object, fields in EVENT_FIELDS order.

    `level_offset_db`: the input level now minus the level at calibration (dB; None when
    the calibration recorded none): a few dB says the microphone, its gain or the
    machine's load changed since calibration, which the score alone cannot tell.

    `ended_at` is never before `started_at`: when the clock was set back during the event
    (NTP), the end is stamped at the start (`seq` orders events, `clock_synced` warns).

    `clip`: the event's audio on the device (edge_asd.evidence.layout): start.flac in a
    start or update, peak.flac in an end (start.flac when the peak could not be written);
    None when evidence is off or could not be written. Its length is bounded by the
    config (MAX_CLIP_JSON_CHARS) so that an event stays under MAX_EVENT_BYTES.
    """
    ended_at = None if event.ended_at is None else max(event.ended_at, event.started_at)
    return {
        "event_id": event.event_id,
        "type": event.type,
        "device_id": device_id,
        "machine": machine,
        "started_at": iso_utc(event.started_at),
        "ended_at": None if ended_at is None else iso_utc(ended_at),
        "score": float(event.score),
        "peak_score": float(event.peak_score),
        "threshold": float(event.threshold),
        "model_sha256": model_sha256,
        "seq": int(seq),
        "clock_synced": bool(clock_synced),
        "level_offset_db": None if level_offset_db is None else round(float(level_offset_db), 2),
        "reason": event.reason,
        "clip": clip,
    }


def ended_on_restart(
    last_message: bytes, *, ended_at: float, seq: int, clock_synced: bool
) -> dict[str, Any]:
    """The `end` a restarted daemon sends for an event its killed predecessor left open.

    `last_message`: the event's last payload (start or update) as published; the end keeps
    its fields and scores, `ended_at` is when the restarted daemon found it (the old one
    died between its last message and then) and `reason` is "restart".
    Raises ValueError when `last_message` is not an event's JSON object.
    """
    payload = json.loads(last_message)
    if not isinstance(payload, dict) or "event_id" not in payload:
        raise ValueError(f"not an event payload: {last_message[:80]!r}")
    payload.update(
        type=END,
        ended_at=iso_utc(ended_at),
        seq=int(seq),
        clock_synced=bool(clock_synced),
        reason=END_RESTART,
    )
    return {field: payload.get(field) for field in EVENT_FIELDS}


def score_payload(
    unix_seconds: float, score: float, threshold: float, stream_seconds: float
) -> dict[str, Any]:
    """The `{machine}/score` JSON object.

    `stream_seconds` is where the window ends in its source's audio (seconds since the
    source started): it places a score on a recording, which wall time cannot once a
    source is replayed faster than real time.
    """
    return {
        "ts": iso_utc(unix_seconds),
        "score": float(score),
        "threshold": float(threshold),
        "stream_seconds": round(float(stream_seconds), 3),
    }


class PayloadTooLarge(ValueError):
    """A payload over its bound; never sent (every field is bounded, so it is a bug)."""


def encode(payload: dict[str, Any], max_bytes: int = MAX_PAYLOAD_BYTES) -> bytes:
    """Compact UTF-8 JSON; a non-finite number becomes null (JSON has no NaN) and a string
    longer than MAX_STRING_CHARS is cut. Raises PayloadTooLarge past `max_bytes`."""
    data = json.dumps(_bounded(payload), separators=(",", ":"), allow_nan=False).encode()
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"a payload of {len(data)} bytes is over the {max_bytes} allowed")
    return data


def _bounded(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        return value[: MAX_STRING_CHARS - 1] + "…"
    if isinstance(value, dict):
        return {key: _bounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_bounded(item) for item in value]
    return value
