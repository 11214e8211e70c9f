"""Where an event's evidence lies on disk: the contract that the store writes and the page reads.

    {evidence_path}/{machine}/{started}_{event_id}/
        start.flac    the audio that opened the event (window + (n - 1) * hop s, at most
                      60 s: edge_asd.daemon.recent.MAX_OPENING_SECONDS; 16 kHz mono)
        peak.flac     the window (10 s) with the event's highest score; written at the end
        event.png     spectrogram of the event's audio and its score trace vs the threshold
        event.json    the event's latest payload, exactly as published

`started` is the event's `started_at` in UTC as `YYYYmmddTHHMMSSZ`. Folders are 0700 and
files 0600: clips record a factory floor. Every file is written under a temporary name and
renamed (edge_asd.files.write_atomic), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

START_CLIP = "start.flac"
PEAK_CLIP = "peak.flac"
PICTURE = "event.png"
EVENT_JSON = "event.json"
FILES = (START_CLIP, PEAK_CLIP, PICTURE, EVENT_JSON)

FOLDER_MODE = 0o700
STARTED_FORMAT = "%Y%m%dT%H%M%SZ"
EVENT_FOLDER = re.compile(r"(?P<started>\d{8}T\d{6}Z)_(?P<event_id>[0-9A-Za-z-]{1,64})")
MACHINE_FOLDER = re.compile(r"[A-Za-z0-9_-]{1,64}")  # machine names (edge_asd.config.types)

# The longest folder name: the timestamp, '_', a uuid4; what a clip's path adds to the root.
EVENT_FOLDER_CHARS = len("20260101T000000Z_") + 36
CLIP_SUFFIX_CHARS = 1 + 64 + 1 + EVENT_FOLDER_CHARS + 1 + max(len(START_CLIP), len(PEAK_CLIP))


@dataclass(frozen=True)
class EventFolder:
    """One event's folder: its path, machine, start (Unix s, whole seconds) and event id."""

    path: Path
    machine: str
    started_at: float
    event_id: str


def event_folder(root: Path, machine: str, started_at: float, event_id: str) -> EventFolder:
    """The folder of the event `event_id` of `machine` that started at `started_at` (Unix s)."""
    moment = datetime.fromtimestamp(started_at, tz=timezone.utc)
    name = f"{moment.strftime(STARTED_FORMAT)}_{event_id}"
    return EventFolder(root / machine / name, machine, float(int(started_at)), event_id)


def parse_event_folder(path: Path) -> EventFolder | None:
    """The EventFolder that `path` ({root}/{machine}/{started}_{event_id}) names, or None
    when its name or its machine's is not one the store makes."""
    match = EVENT_FOLDER.fullmatch(path.name)
    if match is None or not MACHINE_FOLDER.fullmatch(path.parent.name):
        return None
    try:
        moment = datetime.strptime(match["started"], STARTED_FORMAT)
    except ValueError:  # 20261399T...: digits, but no date
        return None
    started_at = moment.replace(tzinfo=timezone.utc).timestamp()
    return EventFolder(path, path.parent.name, started_at, match["event_id"])


def longest_clip_json_chars(root: Path) -> int:
    """Characters the longest `clip` under `root` takes in an event's JSON (quoted, with
    json's escapes of non-ASCII characters): what config validation bounds."""
    return len(json.dumps(str(root))) + CLIP_SUFFIX_CHARS
