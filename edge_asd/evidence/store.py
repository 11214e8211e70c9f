"""Event evidence: each event's audio (FLAC), picture (PNG) and payload (JSON), within bounds.

The scoring loop tells the store about every event it publishes (`clip_for`, then
`published` with the exact bytes) and, while an event is open, about every window it
scores (`scored`). At a start the store writes `start.flac` (the audio that opened the
event: the last `window + (n - 1) * hop` s of the machine's audio, at most 60 s,
edge_asd.daemon.recent.MAX_OPENING_SECONDS) and `event.png`, so
the start's `clip` names a file that exists; it keeps the window with the event's highest
score in memory, and at the end writes it as `peak.flac` and redraws `event.png` over the
whole event. Folders and names: edge_asd.evidence.layout. An event left open by a
daemon that died gets its `end` (reason restart) from the next daemon, which writes it
as the folder's event.json (`ended_before`).

Evidence must never break scoring nor fill the disk: before writing, a volume with less
than `min_free_bytes` free is skipped; every OSError is caught; either way the event
goes out with `clip` null (or the start's clip at the end), the failure is logged once
per kind (RepeatedWarning), counted and kept in `health()` for `stats`. Retention
(edge_asd.evidence.retention) runs after every write and every PRUNE_INTERVAL_SECONDS.

Files are written whole (edge_asd.files.write_atomic), mode 0600, without fsync
(durable=False): the outbox is the record of events, and an fsync per file would cost
the scoring thread tens of ms on an SD card; a power cut may cost the last clip, never
leave half a file, never cost an event.
Cost per start (FLAC + PNG, 14 s of audio): benchmarks/bench_evidence.py.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from edge_asd.audio import SAMPLE_RATE
from edge_asd.calibration.false_alarms import SECONDS_PER_DAY
from edge_asd.daemon.recent import ScorePoint
from edge_asd.decider import END, START, DecisionEvent
from edge_asd.evidence.layout import (
    EVENT_JSON,
    FOLDER_MODE,
    PEAK_CLIP,
    PICTURE,
    START_CLIP,
    EventFolder,
    event_folder,
    parse_event_folder,
)
from edge_asd.evidence.render import render_event
from edge_asd.evidence.retention import EvidenceIndex
from edge_asd.files import write_atomic
from edge_asd.logs import RepeatedWarning

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 300.0  # retention also runs this often when nothing is written
TRACE_CONTEXT_SECONDS = 60.0  # the picture's trace starts this long before the event
MAX_TRACE_POINTS = 4096  # beyond, the trace is halved keeping each pair's higher score
BYTES_PER_MEGABYTE = 1_000_000
PCM_SCALE = 32768  # full scale of 16-bit audio as soundfile reads it into floats


@dataclass(frozen=True)
class EvidenceHealth:
    """What `stats` says about evidence: event folders and bytes kept, failures, error."""

    clips: int
    bytes: int
    failures: int  # writes skipped (low space) or failed since start
    error: str | None  # the latest failure, None once a write succeeds again


@dataclass
class _OpenEvent:
    """Evidence of one open event: its folder, audio kept in memory and trace."""

    folder: EventFolder
    opening_audio: np.ndarray
    peak_audio: np.ndarray | None
    peak_score: float
    trace: list[ScorePoint] = field(default_factory=list)
    written: set[str] = field(default_factory=set)  # files of the folder written so far
    ended: bool = False

    def add(self, point: ScorePoint) -> None:
        self.trace.append(point)
        if len(self.trace) > MAX_TRACE_POINTS:  # long event: keep its shape, bound memory
            pairs = zip(self.trace[0::2], self.trace[1::2], strict=False)
            halved = [max(a, b, key=lambda p: p.score) for a, b in pairs]
            self.trace = halved + self.trace[len(halved) * 2 :]  # an odd last point stays

    def clip(self) -> Path | None:
        """The final clip: peak.flac once written, else start.flac, else None."""
        for name in (PEAK_CLIP, START_CLIP):
            if name in self.written:
                return self.folder.path / name
        return None


def _never_stops_scoring(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a method the scoring loop calls: an error in evidence (a bug included) is
    logged with its traceback the first time (WARNING; the rest through RepeatedWarning),
    counted, and returns None; scoring and the event go on."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if self._broken.total == 0:
                log.warning("evidence: %s failed (first failure)", method.__name__, exc_info=True)
            self._failed(self._broken, f"{method.__name__}: {type(exc).__name__}: {exc}")
            return None

    return guarded


class EvidenceStore:
    """Evidence of every event under `root` (see the module); one scoring loop calls it."""

    def __init__(
        self,
        root: Path,
        *,
        window_samples: int,
        hop_samples: int,
        max_age_days: float,
        max_megabytes: float,
        min_free_megabytes: float,
        sample_rate: int = SAMPLE_RATE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.window_samples = window_samples
        self.hop_samples = hop_samples
        self.sample_rate = sample_rate
        self.max_age_seconds = max_age_days * SECONDS_PER_DAY
        self.max_bytes = int(max_megabytes * BYTES_PER_MEGABYTE)
        self.min_free_bytes = int(min_free_megabytes * BYTES_PER_MEGABYTE)
        self._clock = clock
        self._open: dict[str, _OpenEvent] = {}
        self._failures = 0
        self._error: str | None = None
        self._error_is_the_disks = False  # the error is the volume's: a write clears it
        self._cannot_write = RepeatedWarning(log, "evidence cannot write")
        self._low_space = RepeatedWarning(log, "evidence not written")
        self._cannot_make = RepeatedWarning(log, "evidence file not made")
        self._broken = RepeatedWarning(log, "evidence failed")
        self._warnings = (self._cannot_write, self._low_space, self._cannot_make, self._broken)
        self.index = EvidenceIndex(self.root)
        for error in self.index.scan():
            self._failed(self._cannot_write, error)
        self._next_prune = 0.0
        self.poll()

    @_never_stops_scoring
    def clip_for(self, machine: str, event: DecisionEvent, recent: Any) -> str | None:
        """Write what `event` needs and return its `clip` (a path, or None).

        start: writes start.flac and event.png from `recent` (edge_asd.daemon.recent.Recent,
        holding the window that opened the event); update: the start's clip; end: writes
        peak.flac and redraws event.png, returns peak.flac (start.flac if it failed).
        """
        if event.type == START:
            return _text(self._start(machine, event, recent))
        current = self._open.get(machine)
        if current is None or current.folder.event_id != event.event_id:
            return None  # opened before this daemon, or while evidence failed to start
        if event.type == END and not current.ended:
            self._end(machine, current, event)
        return _text(current.clip())

    @_never_stops_scoring
    def scored(self, machine: str, waveform: np.ndarray, point: ScorePoint) -> None:
        """A window of `machine` was scored: keep it if it is its open event's peak."""
        current = self._open.get(machine)
        if current is None or current.ended:
            return
        current.add(point)
        if point.score > current.peak_score:
            current.peak_audio = np.array(waveform, dtype=np.float32)
            current.peak_score = point.score

    @_never_stops_scoring
    def published(self, machine: str, event: DecisionEvent, payload: bytes) -> None:
        """`payload` (the exact bytes published) becomes the event's event.json."""
        current = self._open.get(machine)
        if current is None or current.folder.event_id != event.event_id:
            return
        if current.written:  # the folder exists: its start was written
            self._write(current, {EVENT_JSON: lambda: payload}, check_space=False)
        if event.type == END:
            del self._open[machine]
            self.prune()

    @_never_stops_scoring
    def poll(self) -> None:
        """Prune when PRUNE_INTERVAL_SECONDS have passed since the last prune."""
        if time.monotonic() >= self._next_prune:
            self.prune()
        for warning in self._warnings:
            warning.poll()

    def prune(self) -> None:
        """Delete event folders past max age, then the oldest past max bytes (retention)."""
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_SECONDS
        keep = {current.folder.path for current in self._open.values()}
        pruned = self.index.prune(self._clock(), self.max_age_seconds, self.max_bytes, keep)
        for error in pruned.errors:
            self._failed(self._cannot_write, f"cannot delete {error}")
        if pruned.folders:
            log.debug("evidence: deleted %d event folders (%d bytes)", pruned.folders, pruned.bytes)

    def health(self) -> EvidenceHealth:
        """Folders and bytes kept, failures, the current error (for `stats`)."""
        clips, size = self.index.totals()
        return EvidenceHealth(clips, size, self._failures, self._error)

    def close(self) -> None:
        """Log the totals of repeated failures."""
        for warning in self._warnings:
            warning.close()

    @_never_stops_scoring
    def ended_before(self, payload: bytes) -> None:
        """`payload`, the `end` a restarted daemon sent for an event its predecessor left
        open (edge_asd.daemon.event_ends), becomes event.json of the folder its `clip`
        names: only an event folder under this store's root that exists."""
        clip = json.loads(payload).get("clip")
        if not isinstance(clip, str):
            return  # no clip: no folder
        folder = parse_event_folder(Path(clip).parent)
        if folder is None or not folder.path.is_dir() or folder.path.is_symlink():
            return
        if folder.path.parent.parent.resolve() != self.root.resolve():
            return  # another store's folder, or a path made up: never written
        self._write(_OpenEvent(folder, np.zeros(0), None, -np.inf), {EVENT_JSON: lambda: payload})

    def _start(self, machine: str, event: DecisionEvent, recent: Any) -> Path | None:
        tail, windows = recent.opening()
        trace = recent.trace(since=event.started_at - TRACE_CONTEXT_SECONDS)
        peak_audio, peak_score = self._peak_in(tail, windows)
        folder = event_folder(self.root, machine, event.started_at, event.event_id)
        current = _OpenEvent(folder, tail, peak_audio, peak_score, list(trace))
        self._open[machine] = current
        picture = functools.partial(self._picture, machine, current, event, None)
        self._write(current, {START_CLIP: lambda: self._flac(tail), PICTURE: picture})
        return current.clip()

    def _end(self, machine: str, current: _OpenEvent, event: DecisionEvent) -> None:
        current.ended = True
        files: dict[str, Callable[[], bytes]] = {}
        if current.peak_audio is not None:
            peak = current.peak_audio
            files[PEAK_CLIP] = lambda: self._flac(peak)
        files[PICTURE] = functools.partial(self._picture, machine, current, event, event.ended_at)
        self._write(current, files)

    def _peak_in(
        self, tail: np.ndarray, windows: list[tuple[int, ScorePoint]]
    ) -> tuple[np.ndarray | None, float]:
        """The window of `tail` with the highest score and that score; `windows` are
        (sample of `tail` where it ends, its point) as Recent.opening gives them, so a
        skipped window cannot shift the clip. (None, -inf) without one."""
        inside = [(end, p) for end, p in windows if self.window_samples <= end <= len(tail)]
        if not inside:
            return None, -np.inf
        end, best = max(inside, key=lambda window: window[1].score)
        return tail[end - self.window_samples : end].copy(), best.score

    def _flac(self, audio: np.ndarray) -> bytes:
        """16-bit FLAC of float `audio`, scaled by 32768 as soundfile reads PCM: a clip of
        a 16-bit source holds the source's own samples (libsndfile would scale by 32767)."""
        pcm = np.clip(
            np.round(np.asarray(audio, dtype=np.float64) * PCM_SCALE), -PCM_SCALE, PCM_SCALE - 1
        )
        out = io.BytesIO()
        soundfile.write(
            out, pcm.astype(np.int16), self.sample_rate, format="FLAC", subtype="PCM_16"
        )
        return out.getvalue()

    def _picture(
        self, machine: str, current: _OpenEvent, event: DecisionEvent, ended_at: float | None
    ) -> bytes:
        segments = [("opening audio", current.opening_audio)]
        if ended_at is not None and current.peak_audio is not None:
            segments.append(("peak window", current.peak_audio))
        started = datetime.fromtimestamp(event.started_at, tz=timezone.utc)
        title = (
            f"{machine}   event {event.event_id}   started {started:%Y-%m-%d %H:%M:%S} UTC   "
            f"peak {current.peak_score:.4g}   threshold {event.threshold:.4g}"
        )
        return render_event(
            segments, current.trace, title=title, started_at=event.started_at, ended_at=ended_at
        )

    def _write(
        self, current: _OpenEvent, files: dict[str, Callable[[], bytes]], check_space: bool = True
    ) -> None:
        """Write `files` (name -> bytes) into the event's folder, in order; a failure ends
        the writing, is logged and counted; the index and retention follow."""
        folder = current.folder.path
        try:
            if check_space and not self._room():
                return
            _make_folder(folder)
            made_all = True
            for name, make in files.items():
                data = self._make(name, make)
                made_all = made_all and data is not None
                if data is not None:
                    write_atomic(folder / name, data, durable=False)
                    current.written.add(name)
        except OSError as exc:
            where = exc.filename or folder
            self._failed(self._cannot_write, f"{where}: {exc.strerror or exc}")
        else:
            if made_all:
                self._recovered()
        finally:
            if current.written:
                self._account(current)

    def _account(self, current: _OpenEvent) -> None:
        """Index the folder's new size and apply retention; an OSError is logged and
        counted, and leaves the files written (their clip is still named)."""
        try:
            self.index.update(current.folder)
        except OSError as exc:
            where = exc.filename or current.folder.path
            self._failed(self._cannot_write, f"cannot count {where}: {exc.strerror or exc}")
        self.prune()

    def _make(self, name: str, make: Callable[[], bytes]) -> bytes | None:
        """`make()`, or None when it raises: a file that cannot be made (a drawing bug, a
        codec refusing the audio) costs that file, not the others nor the event."""
        try:
            return make()
        except Exception as exc:
            if self._cannot_make.total == 0:
                log.warning("evidence: cannot make %s (first failure)", name, exc_info=True)
            self._failed(self._cannot_make, f"{name}: {type(exc).__name__}: {exc}")
            return None

    def _room(self) -> bool:
        """Whether the evidence volume has min_free_bytes free (False: logged, counted)."""
        self.root.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        stat = os.statvfs(self.root)
        free = stat.f_bavail * stat.f_frsize
        if free >= self.min_free_bytes:
            return True
        self._failed(
            self._low_space,
            f"{self.root}: {free / BYTES_PER_MEGABYTE:.1f} MB free, below "
            f"evidence.min_free_megabytes ({self.min_free_bytes / BYTES_PER_MEGABYTE:g} MB)",
        )
        return False

    def _failed(self, warning: RepeatedWarning, message: str) -> None:
        self._failures += 1
        self._error = message
        self._error_is_the_disks = warning in (self._cannot_write, self._low_space)
        warning.occurred(f"{message}; the event goes out without it")

    def _recovered(self) -> None:
        """A write went through: the disk's error is over (a bug's stays in `stats`)."""
        if self._error is not None and self._error_is_the_disks:
            log.warning("evidence is written again: %s", self.root)
            self._error = None


def _make_folder(folder: Path) -> None:
    """Create the event folder and its machine folder, mode 0700 (the root is made by _room)."""
    for path in (folder.parent, folder):
        if not path.is_dir():
            path.mkdir(mode=FOLDER_MODE)
            os.chmod(path, FOLDER_MODE)  # mkdir's mode passes through the umask


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
