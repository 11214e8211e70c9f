"""The durable outbox: events wait in an SQLite file until the broker acknowledges them.

An event is written here (and committed, WAL, synchronous=FULL) before it is published and
deleted only when its PUBACK arrives, so neither a broker outage nor a restart nor a power
cut loses it. The outbox also owns `seq`: it rises by one for every event the device ever
publishes, and the next value is stored in the same transaction as the event.

The file is bounded: past `max_events` the oldest events are dropped and counted. When the
disk is full or read-only, events still go out live (with seq numbers kept in memory), the
failure is logged once, and `health()` reports it for the stats; writing resumes by itself
when the disk recovers.

Acknowledged events are deleted, so the outbox alone cannot tell which events are still
open after a crash: `open_events` keeps the last message of every event that has started
and not ended, written in the same transaction as that message, so that a restarted
daemon can end them (`reason: restart`). Events sent live only while the disk refused
writes are not tracked there: after a crash during a disk failure they stay open.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_asd.files import FILE_MODE  # events name machines and faults: owner only
from edge_asd.logs import RepeatedWarning

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS open_events (
    event_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    last_payload BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Entry:
    """One event waiting for its PUBACK: `payload` is the exact bytes to publish."""

    seq: int
    topic: str
    payload: bytes
    durable: bool = True  # False: the disk refused it; it lives in memory only


@dataclass(frozen=True)
class EventMark:
    """Which event a message belongs to, for `open_events`: `open` False for its end."""

    event_id: str
    open: bool


@dataclass(frozen=True)
class OpenEvent:
    """An event started and not ended, as its last message (start or update) left it."""

    event_id: str
    topic: str
    last_payload: bytes


@dataclass(frozen=True)
class OutboxHealth:
    """What the stats report about the outbox."""

    depth: int  # events waiting for a PUBACK
    dropped: int  # events dropped because the outbox was full (over the device's life)
    write_failures: int  # events the disk refused since start (sent live only)
    error: str | None  # the current disk error, None when writing works


class Outbox:
    """The event queue on disk; thread-safe (the daemon appends, MQTT's thread acks)."""

    def __init__(self, path: str | os.PathLike, max_events: int = 100_000) -> None:
        """Open (or create, mode 0600) the SQLite file at `path`.

        A file that cannot be opened or written is not fatal: the outbox runs in memory,
        reports the error in `health()`, and tries the disk again on every append.
        """
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        self.path = Path(path)
        self.max_events = max_events
        self._lock = threading.Lock()
        self._memory: dict[int, Entry] = {}  # entries the disk refused, by seq
        self._write_failures = 0
        self._error: str | None = None
        self._db: sqlite3.Connection | None = None
        self._next_seq = 1
        self._dropped = 0
        # Once full, every new event drops one: logged once, then counted.
        self._full = RepeatedWarning(log, "outbox full")
        self._open()

    def _open(self) -> None:
        try:
            self._db = _connect(self.path)
            self._next_seq = max(self._next_seq, self._meta("next_seq", 1))
            self._dropped = max(self._dropped, self._meta("dropped", 0))
        except (sqlite3.Error, OSError) as exc:  # OSError: creating the file (read-only disk)
            self._db = None
            self._disk_failed(exc)

    def append(
        self, topic: str, render: Callable[[int], bytes], mark: EventMark | None = None
    ) -> Entry:
        """Store a new event with the next `seq`; `render(seq)` gives its payload bytes.

        `mark` names the event the message belongs to: its payload becomes the event's
        last message in `open_events` (mark.open) or the event leaves it (an end).
        Returns the stored Entry (durable=False when the disk refused it: publish it
        anyway). Drops the oldest events when the outbox holds more than max_events.
        """
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            entry = Entry(seq, topic, render(seq))
            if self._db is None:
                self._open()
            try:
                self._store(entry, mark)
            except sqlite3.Error as exc:
                if self._db is not None:  # else `_open` has just recorded why
                    self._disk_failed(exc)
                self._write_failures += 1
                entry = Entry(seq, topic, entry.payload, durable=False)
                self._memory[seq] = entry
                self._trim_memory()
                return entry
            self._disk_recovered()
            return entry

    def _store(self, entry: Entry, mark: EventMark | None = None) -> None:
        if self._db is None:
            raise sqlite3.OperationalError(self._error or "outbox not open")
        with self._db:  # one transaction: the event, whether it is open, the next seq, the trim
            self._db.execute(
                "INSERT INTO events (seq, topic, payload, created_at) VALUES (?, ?, ?, ?)",
                (entry.seq, entry.topic, entry.payload, time.time()),
            )
            if mark is not None and mark.open:
                self._db.execute(
                    "INSERT OR REPLACE INTO open_events (event_id, topic, last_payload) "
                    "VALUES (?, ?, ?)",
                    (mark.event_id, entry.topic, entry.payload),
                )
            elif mark is not None:
                self._db.execute("DELETE FROM open_events WHERE event_id = ?", (mark.event_id,))
            self._set_meta("next_seq", self._next_seq)
            (count,) = self._db.execute("SELECT COUNT(*) FROM events").fetchone()
            excess = count - self.max_events
            if excess > 0:
                self._db.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)",
                    (excess,),
                )
                self._dropped += excess
                self._set_meta("dropped", self._dropped)
                self._full.occurred(
                    f"{count} events wait for the broker (max_events {self.max_events}): "
                    f"dropped the {excess} oldest, {self._dropped} in all"
                )

    def _trim_memory(self) -> None:
        excess = len(self._memory) - self.max_events  # the disk's events are not counted here
        if excess <= 0:
            return
        for seq in sorted(self._memory)[:excess]:
            del self._memory[seq]
        self._dropped += excess
        self._full.occurred(
            f"{self.max_events} events wait in memory while the disk refuses writes: "
            f"dropped the {excess} oldest, {self._dropped} in all"
        )

    def ack(self, seq: int) -> None:
        """The broker has the event `seq`: forget it (a no-op when it is already gone)."""
        with self._lock:
            if self._memory.pop(seq, None) is not None or self._db is None:
                return
            try:
                # Without an fsync: a delete lost to a power cut only sends the event again
                # (a duplicate, which seq lets consumers drop), and acks come in bursts.
                self._db.execute("PRAGMA synchronous=NORMAL")
                try:
                    with self._db:
                        self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))
                finally:
                    self._db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                # It stays on disk and is sent again after a restart: a duplicate, not a loss.
                self._disk_failed(exc)

    def pending(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        """Events waiting for a PUBACK with seq > after_seq, oldest first, at most `limit`."""
        with self._lock:
            rows: list[Entry] = []
            if self._db is not None:
                try:
                    rows = [
                        Entry(seq, topic, bytes(payload))
                        for seq, topic, payload in self._db.execute(
                            "SELECT seq, topic, payload FROM events WHERE seq > ? "
                            "ORDER BY seq LIMIT ?",
                            (after_seq, limit),
                        )
                    ]
                except sqlite3.Error as exc:
                    self._disk_failed(exc)
            rows += [e for s, e in self._memory.items() if s > after_seq]
            return sorted(rows, key=lambda e: e.seq)[:limit]

    def open_events(self) -> list[OpenEvent]:
        """Events whose start is stored and whose end is not (by the file; none when the
        disk is unreadable), in the order of their last message."""
        with self._lock:
            if self._db is None:
                return []
            try:
                rows = self._db.execute(
                    "SELECT event_id, topic, last_payload FROM open_events ORDER BY rowid"
                ).fetchall()
            except sqlite3.Error as exc:
                self._disk_failed(exc)
                return []
            return [OpenEvent(event_id, topic, bytes(last)) for event_id, topic, last in rows]

    def forget_open_event(self, event_id: str) -> None:
        """Drop `event_id` from `open_events` (a row no end can be made of)."""
        with self._lock:
            if self._db is None:
                return
            try:
                with self._db:
                    self._db.execute("DELETE FROM open_events WHERE event_id = ?", (event_id,))
            except sqlite3.Error as exc:
                self._disk_failed(exc)

    def health(self) -> OutboxHealth:
        """Depth, drops and the disk's state, for the stats."""
        with self._lock:
            depth = len(self._memory)
            if self._db is not None:
                try:
                    depth += self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                except sqlite3.Error as exc:
                    self._disk_failed(exc)
            return OutboxHealth(depth, self._dropped, self._write_failures, self._error)

    @property
    def next_seq(self) -> int:
        """The seq the next event will get."""
        with self._lock:
            return self._next_seq

    def close(self) -> None:
        """Close the file (events still in it are replayed by the next start)."""
        with self._lock:
            self._full.close()
            if self._db is not None:
                self._db.close()
                self._db = None

    def _meta(self, key: str, default: int) -> int:
        assert self._db is not None
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, key: str, value: int) -> None:
        assert self._db is not None
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _disk_failed(self, exc: Exception) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        message = f"{self.path}: {reason}"
        if self._error is None:  # once per failure, not once per event
            log.error("outbox cannot write (%s); events are sent live only until it can", message)
        self._error = message

    def _disk_recovered(self) -> None:
        if self._error is not None:
            log.warning("outbox writes again: %s", self.path)
            self._error = None
            self._flush_memory()

    def _flush_memory(self) -> None:
        """Move entries kept in memory during a disk failure back onto the disk."""
        for seq in sorted(self._memory):
            entry = self._memory.pop(seq)
            try:
                self._store(Entry(entry.seq, entry.topic, entry.payload))
            except sqlite3.Error:
                self._memory[seq] = entry
                return


def _connect(path: Path) -> sqlite3.Connection:
    """Open the outbox file (mode 0600) in WAL mode with full fsync."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    db = sqlite3.connect(path, check_same_thread=False, timeout=5.0)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # an event acknowledged to the decider is on disk
        db.executescript(SCHEMA)
        for suffix in ("", "-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                os.chmod(side, FILE_MODE)
    except sqlite3.Error:
        db.close()
        raise
    return db
