"""The evidence folder's index and its bounds: by age, then by bytes, oldest first.

The folder is scanned once when the daemon starts; after that the index is kept in memory
and told about every write, so a prune costs no walk of the disk. Only folders the store
makes are indexed (`{machine}/{started}_{event_id}`, see layout): a file or folder someone
else put there is never counted nor deleted, and links are not followed.

Pruning deletes event folders: first every one older than `max_age_seconds` (by the
event's start in its name), then the oldest until the total is within `max_bytes`. Never
deleted: the folders of open events (their `end` still has to write into them). Not
deleted for bytes: the newest folder of each machine, so that the clip a just-ended event
names exists (the total may exceed `max_bytes` by these); past `max_age_seconds` it goes.
Deleting a folder removes only the files the store
writes (layout.FILES and their temporary files), then the folder: a folder holding
anything else is left, logged once and no longer indexed.

A folder that cannot be read at the scan (permissions, an I/O error) is reported in the
scan's errors and not indexed: the daemon starts all the same.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from edge_asd.evidence.layout import FILES, START_CLIP, EventFolder, parse_event_folder
from edge_asd.files import is_temporary_of

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    folder: EventFolder
    bytes: int
    written_at: float  # start.flac's mtime: orders events that started in the same second


@dataclass(frozen=True)
class Pruned:
    """What one prune deleted: folders and bytes, and the OSErrors it met (path: reason)."""

    folders: int
    bytes: int
    errors: tuple[str, ...]


class EvidenceIndex:
    """Event folders under `root` with their sizes; thread-safe (the loop writes, stats read)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._entries: dict[Path, _Entry] = {}
        self._lock = threading.Lock()

    def scan(self) -> list[str]:
        """Index the event folders already on disk; returns the OSErrors met (path: reason)."""
        errors: list[str] = []
        for machine in _subfolders(self.root, errors):
            for path in _subfolders(machine, errors):
                folder = parse_event_folder(path)
                if folder is None:
                    continue
                try:
                    self.update(folder)
                except OSError as exc:  # unreadable: not indexed, never deleted
                    errors.append(f"{exc.filename or path}: {exc.strerror or exc}")
        return errors

    def update(self, folder: EventFolder) -> None:
        """(Re)count `folder`'s bytes after a write (the few files of one event).

        Raises the OSError of a folder that cannot be read (not FileNotFoundError: 0 bytes).
        """
        size = folder_bytes(folder.path)
        with self._lock:
            known = self._entries.get(folder.path)
            written_at = known.written_at if known else _written_at(folder.path)
            self._entries[folder.path] = _Entry(folder, size, written_at)

    def totals(self) -> tuple[int, int]:
        """(event folders, bytes) indexed."""
        with self._lock:
            return len(self._entries), sum(e.bytes for e in self._entries.values())

    def prune(self, now: float, max_age_seconds: float, max_bytes: int, keep: set[Path]) -> Pruned:
        """Delete folders older than `max_age_seconds` at `now` (Unix s), then the oldest
        until the total is <= `max_bytes`; never those in `keep` (open events), and the
        newest of each machine not for bytes (its age still counts)."""
        with self._lock:
            entries = sorted(self._entries.values(), key=_age_order)
        newest = {entry.folder.machine: entry.folder.path for entry in entries}
        within_bytes = set(newest.values())  # the clip a just-ended event names stays
        total = sum(e.bytes for e in entries)
        doomed = []
        for entry in entries:
            if entry.folder.path in keep:
                continue
            too_old = now - entry.folder.started_at > max_age_seconds
            too_big = total > max_bytes and entry.folder.path not in within_bytes
            if too_old or too_big:
                doomed.append(entry)
                total -= entry.bytes
        errors = []
        deleted = 0
        for entry in doomed:
            try:
                _delete_event_folder(entry.folder.path)
            except FileNotFoundError:
                pass  # someone else removed it: forget it all the same
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    errors.append(f"{entry.folder.path}: {exc.strerror or exc}")
                    continue
                log.warning(
                    "evidence: %s holds files the store did not write: left there, no longer "
                    "counted",
                    entry.folder.path,
                )
            deleted += entry.bytes
            with self._lock:
                self._entries.pop(entry.folder.path, None)
        return Pruned(len(doomed) - len(errors), deleted, tuple(errors))


def _age_order(entry: _Entry) -> tuple[float, float, str]:
    """Oldest first: by the start in the folder's name (whole seconds), then by when the
    start was written (a fast replay starts several events a second), then by name."""
    return (entry.folder.started_at, entry.written_at, entry.folder.path.name)


def _written_at(path: Path) -> float:
    """When the event's start was written: start.flac's mtime, else the folder's (0: gone)."""
    for candidate in (path / START_CLIP, path):
        try:
            return candidate.stat().st_mtime
        except OSError:
            continue
    return 0.0


def folder_bytes(path: Path) -> int:
    """Bytes of the regular files directly in `path` (0 when it is gone)."""
    try:
        with os.scandir(path) as entries:
            return sum(
                e.stat(follow_symlinks=False).st_size
                for e in entries
                if e.is_file(follow_symlinks=False)
            )
    except FileNotFoundError:
        return 0


def _delete_event_folder(path: Path) -> None:
    """Remove the files the store writes in `path` (and their temporary files), then the
    folder; OSError ENOTEMPTY when anything else is in it (left as it is)."""
    with os.scandir(path) as entries:
        names = [e.name for e in entries if not e.is_dir(follow_symlinks=False)]
    for name in names:
        if name in FILES or any(is_temporary_of(name, ours) for ours in FILES):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path / name)
    os.rmdir(path)


def _subfolders(path: Path, errors: list[str]) -> list[Path]:
    """The folders directly in `path` (not links), sorted; OSErrors go to `errors`."""
    try:
        with os.scandir(path) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
    except OSError as exc:
        errors.append(f"{path}: {exc.strerror or exc}")
        return []
