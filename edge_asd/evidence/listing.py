"""The recent events kept as evidence, newest first, read from their folders.

The layout, which the daemon's evidence store writes, is edge_asd.evidence.layout: one
folder per event, `{evidence_path}/{machine}/{started}_{event_id}/`, holding `event.json`
(the event's latest MQTT payload, written atomically), `start.flac`, `peak.flac` (after
the end) and `event.png`.

Readers (the page) must not trust the folder: an event being written has no `event.json`
yet, and anything else may have been put there. Folders whose name is not of that form,
symbolic links, and folders without a readable JSON object in `event.json` are left out,
never an error. Only the newest `limit` folder names are opened, so a year of events costs
a directory listing, not a year of reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_asd.evidence.layout import EVENT_FOLDER, EVENT_JSON, MACHINE_FOLDER
from edge_asd.evidence.layout import FILES as EVIDENCE_FILES  # all a folder may serve

DEFAULT_LIMIT = 50
MAX_EVENT_JSON_BYTES = 64 * 1024  # an event payload is ~1 kB; a bigger file is not one


@dataclass(frozen=True)
class EventEvidence:
    """One event's folder: its machine, folder name, payload and the files present."""

    machine: str
    folder: str  # `{started}_{event_id}`
    payload: dict[str, Any]  # event.json as written (event_id, type, started_at, ...)
    files: tuple[str, ...]  # those of EVIDENCE_FILES that exist, in that order

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "folder": self.folder, "event": self.payload,
                "files": list(self.files)}  # fmt: skip


def recent_events(
    root: Path, machines: Iterable[str], machine: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[EventEvidence]:
    """The newest `limit` events of `machines` (only `machine` when given), newest first.

    `root` is the evidence folder (Config.evidence_path); a missing one has no events.
    Machines are looked up by name only, so a foreign folder beside them is never read.
    """
    names = [m for m in machines if machine is None or m == machine]
    candidates: list[tuple[str, str]] = []  # (folder, machine)
    for name in names:
        candidates.extend((folder, name) for folder in _event_folders(root / name)[:limit])
    candidates.sort(reverse=True)  # the folder name starts with the UTC start: newest first
    events = []
    for folder, name in candidates:
        if len(events) == limit:
            break
        payload = _read_payload(root / name / folder / EVENT_JSON)
        if payload is None:
            continue  # half-made (no event.json yet) or not ours
        present = tuple(f for f in EVIDENCE_FILES if _is_plain_file(root / name / folder / f))
        events.append(EventEvidence(name, folder, payload, present))
    return events


def evidence_file(root: Path, machine: str, folder: str, name: str) -> Path | None:
    """The path of one evidence file, or None unless it is a plain file of an event folder.

    Each part is checked against the layout (no '..', no separators, only EVIDENCE_FILES),
    and the result must lie under `root` with no symbolic link on the way.
    """
    layout = EVENT_FOLDER.fullmatch(folder) and MACHINE_FOLDER.fullmatch(machine)
    if name not in EVIDENCE_FILES or not layout:
        return None
    path = root / machine / folder / name
    if not _is_plain_file(path) or (root / machine).is_symlink() or (path.parent).is_symlink():
        return None
    try:
        path.resolve(strict=True).relative_to(root.resolve(strict=True))
    except (OSError, ValueError):
        return None
    return path


def _event_folders(machine_dir: Path) -> list[str]:
    """Names of the event folders in `machine_dir`, newest first ([] when it is absent)."""
    try:
        entries = list(machine_dir.iterdir()) if not machine_dir.is_symlink() else []
    except OSError:
        return []
    names = [e.name for e in entries if EVENT_FOLDER.fullmatch(e.name) and _is_plain_dir(e)]
    return sorted(names, reverse=True)


def _read_payload(path: Path) -> dict[str, Any] | None:
    if not _is_plain_file(path):
        return None
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_EVENT_JSON_BYTES + 1)
        payload = json.loads(raw) if len(raw) <= MAX_EVENT_JSON_BYTES else None
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _is_plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _is_plain_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()
