"""The evidence store: each event's audio, picture and payload in its own private folder,
within bounds of age and bytes, and failures that never stop an event.

Events come from a real Decider fed the way the scoring loop feeds it, audio from a real
Recent holding a stream's windows; files are real, in a temporary folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from edge_asd.daemon.recent import Recent, ScorePoint
from edge_asd.decider import Decider
from edge_asd.evidence.layout import (
    EVENT_JSON,
    PEAK_CLIP,
    PICTURE,
    START_CLIP,
    parse_event_folder,
)
from edge_asd.evidence.store import EvidenceStore

RATE = 16000
WINDOW = 2 * RATE  # 2 s windows every 1 s: short, so that the tests are quick
HOP = RATE
K, N = 2, 3
TAIL = WINDOW + (N - 1) * HOP
MACHINE = "pump-1"


def stream(seconds: float, seed: int = 0) -> np.ndarray:
    """16-bit-exact noise, as a WAV source delivers it."""
    pcm = np.random.default_rng(seed).integers(-8000, 8000, round(seconds * RATE))
    return (pcm / 32768).astype(np.float32)


def make_store(root: Path, **bounds) -> EvidenceStore:
    settings = {"max_age_days": 30.0, "max_megabytes": 100.0, "min_free_megabytes": 0.0}
    return EvidenceStore(root, window_samples=WINDOW, hop_samples=HOP, **{**settings, **bounds})


class Machine:
    """One machine's decider, Recent and audio, fed window by window like the daemon."""

    def __init__(self, store: EvidenceStore, audio: np.ndarray, start_time: float) -> None:
        self.store = store
        self.audio = audio
        self.start_time = start_time
        self.decider = Decider(threshold=1.0, k=K, n=N, m_close=2, update_min_windows=1)
        self.recent = Recent(RATE, WINDOW, HOP / RATE, n=N)
        self.end_frame = WINDOW - HOP
        self.messages: list[tuple[object, str | None, bytes]] = []

    def window(self, score: float) -> None:
        self.end_frame += HOP
        waveform = self.audio[self.end_frame - WINDOW : self.end_frame]
        now = self.start_time + self.end_frame / RATE
        events = self.decider.feed(score, now)
        point = ScorePoint(now, score, 1.0, self.decider.state, None)
        self.recent.add(waveform, self.end_frame, point)
        self.store.scored(MACHINE, waveform, point)
        for event in events:
            self.publish(event)

    def publish(self, event) -> None:
        clip = self.store.clip_for(MACHINE, event, self.recent)
        payload = json.dumps({"event_id": event.event_id, "type": event.type, "clip": clip})
        self.store.published(MACHINE, event, payload.encode())
        self.messages.append((event, clip, payload.encode()))

    def scores(self, scores: list[float]) -> None:
        for score in scores:
            self.window(score)


def one_event(store: EvidenceStore, start_time: float | None = None, seed: int = 0) -> Machine:
    """An event: starts at the 3rd window, peaks (5.0) at the 5th, ends at the 7th."""
    start_time = time.time() - 60 if start_time is None else start_time
    machine = Machine(store, stream(12.0, seed), start_time)
    machine.scores([0.1, 2.0, 3.0, 2.5, 5.0, 0.2, 0.1, 0.1])
    return machine


def test_an_event_leaves_its_audio_picture_and_payload_in_a_private_folder(tmp_path: Path):
    root = tmp_path / "evidence"
    machine = one_event(make_store(root))
    (start, start_clip, _), *_, (end, end_clip, end_payload) = machine.messages
    assert (start.type, end.type) == ("start", "end")
    folder = Path(start_clip).parent
    parsed = parse_event_folder(folder)
    assert parsed is not None and parsed.event_id == start.event_id
    assert folder.parent == root / MACHINE
    assert folder.name.startswith(time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start.started_at)))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [START_CLIP, PEAK_CLIP, PICTURE, EVENT_JSON]
    )
    assert (start_clip, end_clip) == (str(folder / START_CLIP), str(folder / PEAK_CLIP))
    assert (folder / EVENT_JSON).read_bytes() == end_payload  # the last payload, exactly
    for path in (root, root / MACHINE, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_start_clip_is_the_audio_of_the_windows_that_opened_the_event(tmp_path: Path):
    machine = one_event(make_store(tmp_path))
    _, start_clip, _ = machine.messages[0]
    # The start came with the 3rd window (ends at 4 s): the last window + (n-1) hops.
    opened_at = WINDOW + 2 * HOP
    clip, rate = soundfile.read(start_clip, dtype="float32")
    assert rate == RATE and len(clip) == TAIL
    assert np.array_equal(clip, machine.audio[opened_at - TAIL : opened_at])


def test_the_end_clip_is_the_window_with_the_events_highest_score(tmp_path: Path):
    machine = one_event(make_store(tmp_path))
    _, end_clip, _ = machine.messages[-1]
    peak_ends = WINDOW + 4 * HOP  # the 5th window scored 5.0
    clip, _ = soundfile.read(end_clip, dtype="float32")
    assert np.array_equal(clip, machine.audio[peak_ends - WINDOW : peak_ends])


def test_updates_name_the_start_clip(tmp_path: Path):
    machine = one_event(make_store(tmp_path))
    clips = {event.type: clip for event, clip, _ in machine.messages}
    assert "update" in clips  # update_min_windows=1: the new peak (5.0) sends one
    assert clips["update"] == clips["start"]


def test_a_reader_of_event_json_never_sees_half_a_file(tmp_path: Path):
    store = make_store(tmp_path)
    machine = Machine(store, stream(12.0), time.time())
    machine.scores([0.1, 2.0, 3.0])
    folder = Path(machine.messages[0][1]).parent
    with open(folder / EVENT_JSON, "rb") as reader:  # opened before the next payload
        machine.scores([5.0, 0.1, 0.1])
        assert reader.read() == machine.messages[0][2]  # the old file, whole
    assert (folder / EVENT_JSON).read_bytes() == machine.messages[-1][2]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left


def test_retention_keeps_the_newest_events_within_max_megabytes(tmp_path: Path):
    root = tmp_path / "evidence"
    (root / MACHINE / "by-hand").mkdir(parents=True)  # never counted nor deleted
    (root / "notes.txt").write_text("someone else's")
    store = make_store(root, max_megabytes=0.5)
    now = time.time()
    machines = [one_event(store, now - 3600 + 60 * i, seed=i) for i in range(8)]
    folders = [Path(m.messages[0][1]).parent for m in machines]
    kept = [folder.exists() for folder in folders]
    clips, size = store.health().clips, store.health().bytes
    on_disk = sum(p.stat().st_size for f in folders if f.exists() for p in f.iterdir())
    assert size == on_disk <= 0.5e6
    assert 0 < clips == sum(kept) < len(folders)
    assert kept == sorted(kept)  # the oldest went first: False..., True...
    assert (root / "notes.txt").exists() and (root / MACHINE / "by-hand").is_dir()


def test_retention_deletes_events_older_than_max_age_found_on_disk_at_start(tmp_path: Path):
    root = tmp_path / "evidence"
    old = one_event(make_store(root, max_age_days=1000), time.time() - 3 * 86400)
    new = one_event(make_store(root, max_age_days=1000), time.time() - 3600, seed=1)
    store = make_store(root, max_age_days=2)  # scans, then prunes
    assert not Path(old.messages[0][1]).parent.exists()
    assert Path(new.messages[0][1]).parent.exists()
    assert store.health().clips == 1


def test_an_open_events_folder_is_kept_even_past_the_bound(tmp_path: Path):
    store = make_store(tmp_path, max_megabytes=0.1)  # less than one event
    machine = Machine(store, stream(12.0), time.time())
    machine.scores([0.1, 2.0, 3.0, 2.5])
    folder = Path(machine.messages[0][1]).parent
    assert (folder / START_CLIP).exists()  # open: its end still writes here
    machine.scores([0.1, 0.1])
    assert machine.messages[-1][0].type == "end"
    assert folder.exists()  # the newest of its machine: see the next test


def test_the_clip_an_ended_event_names_exists_even_past_the_bound(tmp_path: Path):
    # Retention keeps the newest folder of each machine: with max_megabytes below one
    # event, the end's clip named a peak.flac that its own prune had just deleted.
    store = make_store(tmp_path, max_megabytes=0.1)  # less than one event
    first = one_event(store, time.time() - 120)
    (end, end_clip, _) = first.messages[-1]
    assert end.type == "end" and Path(end_clip).is_file()
    assert store.health().bytes > 0.1e6  # the bound is exceeded by the newest folder
    second = one_event(store, time.time() - 60, seed=1)
    assert not Path(end_clip).parent.exists()  # no longer the newest: the bound holds
    assert Path(second.messages[-1][1]).is_file()
    assert store.health().clips == 1


def test_low_free_space_skips_the_clip_logs_once_and_counts(tmp_path: Path, caplog):
    store = make_store(tmp_path / "evidence", min_free_megabytes=10_000_000)  # 10 TB
    with caplog.at_level(logging.WARNING, logger="edge_asd.evidence.store"):
        machines = [one_event(store, seed=i) for i in range(3)]
    assert all(clip is None for m in machines for _, clip, _ in m.messages)
    health = store.health()
    assert health.failures == 6  # each start and each end skipped
    assert "evidence.min_free_megabytes" in health.error
    assert caplog.text.count("evidence not written:") == 1
    assert health.clips == 0 and not list((tmp_path / "evidence").iterdir())


def test_a_folder_that_cannot_be_written_gives_events_without_clips_until_it_can(
    tmp_path: Path, caplog
):
    root = tmp_path / "evidence"
    root.write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING, logger="edge_asd.evidence.store"):
        store = make_store(root)
        failing = one_event(store)
        assert all(clip is None for _, clip, _ in failing.messages)
        assert store.health().failures == 3  # the scan at start, the start, the end
        assert str(root) in store.health().error
        root.unlink()
        working = one_event(store, seed=1)
    assert all(clip is not None and os.path.exists(clip) for _, clip, _ in working.messages)
    assert store.health().error is None  # written again
    assert caplog.text.count("evidence cannot write:") == 1
    assert "evidence is written again" in caplog.text


def test_an_event_without_a_start_here_gets_no_clip(tmp_path: Path):
    """An event the store never saw start (opened before a restart) has no folder here."""
    store = make_store(tmp_path)
    machine = Machine(store, stream(12.0), time.time())
    machine.decider.feed(2.0, 0.0)
    machine.decider.feed(3.0, 1.0)  # started without the store
    (end,) = machine.decider.reset(2.0, "stopped")
    assert store.clip_for(MACHINE, end, machine.recent) is None


@pytest.mark.parametrize("name", ["20260101T000000Z", "notadate_x", "20261399T000000Z_abc"])
def test_folders_the_store_did_not_make_are_not_events(tmp_path: Path, name: str):
    assert parse_event_folder(tmp_path / MACHINE / name) is None


def test_long_events_keep_a_bounded_trace_with_its_peak(tmp_path: Path):
    from edge_asd.evidence.store import MAX_TRACE_POINTS

    store = make_store(tmp_path)
    machine = Machine(store, stream(12.0), time.time())
    machine.scores([0.1, 2.0, 3.0])
    current = store._open[MACHINE]
    for i in range(3 * MAX_TRACE_POINTS):
        current.add(ScorePoint(float(i), 9.0 if i == 5000 else 2.0, 1.0, "anomaly", None))
    assert len(current.trace) <= MAX_TRACE_POINTS
    assert max(p.score for p in current.trace) == 9.0


def test_retention_orders_events_that_started_in_the_same_second_by_when_they_were_written(
    tmp_path: Path,
):
    store = make_store(tmp_path, max_megabytes=0.5)
    now = time.time() - 60
    machines = [one_event(store, now, seed=i) for i in range(6)]  # a fast replay
    folders = [Path(m.messages[0][1]).parent for m in machines]
    assert len({f.name[:16] for f in folders}) == 1  # one second in every name
    kept = [folder.exists() for folder in folders]
    assert kept[-1] and kept == sorted(kept)  # the newest kept, the oldest gone first


def test_an_event_whose_picture_cannot_be_drawn_keeps_its_clips_and_scoring_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    # The kind of the bug a clock set back during an event caused: Pillow refused the
    # picture and the error stopped the daemon. A file that cannot be made costs that file.
    def refuse(*args, **kwargs):
        raise ValueError("x1 must be greater than or equal to x0")

    monkeypatch.setattr("edge_asd.evidence.store.render_event", refuse)
    store = make_store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="edge_asd.evidence.store"):
        machine = one_event(store)
        one_event(store, seed=1)
    (_, start_clip, _), *_, (end, end_clip, _) = machine.messages
    folder = Path(start_clip).parent
    assert end.type == "end" and end_clip == str(folder / PEAK_CLIP)
    assert sorted(p.name for p in folder.iterdir()) == sorted([START_CLIP, PEAK_CLIP, EVENT_JSON])
    health = store.health()
    assert health.failures == 4 and "ValueError" in health.error  # 2 events, 2 pictures each
    said = [r.getMessage() for r in caplog.records if "not made" in r.getMessage()]
    assert len(said) == 1 and "event.png" in said[0]


def test_an_error_anywhere_in_evidence_returns_no_clip_instead_of_stopping_scoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in evidence")

    store = make_store(tmp_path)
    monkeypatch.setattr(store, "_start", broken)
    monkeypatch.setattr(store, "prune", broken)
    machine = one_event(store)  # would raise out of clip_for / published before the fix
    assert [clip for _, clip, _ in machine.messages] == [None] * len(machine.messages)
    store.poll()
    assert store.health().failures >= 1 and "RuntimeError" in store.health().error


@contextlib.contextmanager
def as_another_user() -> Iterator[None]:
    """Run the block as `nobody` when root (root reads a folder of mode 000): the
    permission errors the daemon meets when its folder belongs to someone else."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_an_event_folder_that_cannot_be_read_at_start_up_is_reported_not_fatal(caplog):
    root = Path(tempfile.mkdtemp(prefix="evidence-"))  # traversable by the other user
    try:
        root.chmod(0o755)
        readable = one_event(make_store(root), time.time() - 120)
        locked = one_event(make_store(root), time.time() - 60, seed=1)
        for folder in (root, root / MACHINE, Path(readable.messages[0][1]).parent):
            folder.chmod(0o755)
            for path in folder.iterdir():
                path.chmod(path.stat().st_mode | 0o005)
        locked_folder = Path(locked.messages[0][1]).parent
        locked_folder.chmod(0o000)
        with caplog.at_level(logging.WARNING, logger="edge_asd.evidence.store"), as_another_user():
            store = make_store(root)  # raised PermissionError out of the daemon's start
        health = store.health()
        assert health.clips == 1 and health.failures == 1
        assert str(locked_folder) in health.error and "Permission denied" in health.error
        assert "evidence cannot write:" in caplog.text
    finally:
        shutil.rmtree(root)


def test_open_evidence_turns_evidence_off_with_one_warning_on_an_oserror_it_cannot_handle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    from edge_asd.config.outputs import EvidenceConfig
    from edge_asd.daemon.wiring import open_evidence

    def eio(self):
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(self.root))

    monkeypatch.setattr("edge_asd.evidence.retention.EvidenceIndex.scan", eio)
    config = SimpleNamespace(
        evidence=EvidenceConfig(),
        evidence_path=tmp_path / "evidence",
        audio=SimpleNamespace(hop_seconds=1.0),
    )
    info = SimpleNamespace(window_samples=WINDOW, sample_rate=RATE)
    with caplog.at_level(logging.WARNING, logger="edge_asd.daemon.wiring"):
        assert open_evidence(config, info) is None
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and "evidence is off" in said[0] and "Input/output error" in said[0]


def test_a_written_clip_is_named_even_when_its_folder_cannot_be_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = make_store(tmp_path)

    def eio(path):
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))

    monkeypatch.setattr("edge_asd.evidence.retention.folder_bytes", eio)  # the disk fails
    machine = one_event(store)
    (_, start_clip, _), *_, (_, end_clip, _) = machine.messages
    assert start_clip is not None and Path(start_clip).is_file()  # was None: clip null
    assert end_clip is not None and Path(end_clip).is_file()
    assert "Input/output error" in store.health().error


def test_retention_leaves_an_event_folder_holding_someone_elses_files_and_stops_counting_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    store = make_store(tmp_path, max_megabytes=0.5)
    first = one_event(store, time.time() - 3600)
    folder = Path(first.messages[0][1]).parent
    (folder / "notes.txt").write_text("an engineer's notes on this event")
    (folder / f".{START_CLIP}.abc123.tmp").write_bytes(b"a write cut short")
    with caplog.at_level(logging.WARNING, logger="edge_asd.evidence.retention"):
        for i in range(1, 8):
            one_event(store, time.time() - 3600 + 60 * i, seed=i)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # rmtree took them
    assert caplog.text.count(str(folder)) == 1  # said once, then no longer indexed
    on_disk = sum(
        p.stat().st_size for f in (tmp_path / MACHINE).iterdir() if f != folder for p in f.iterdir()
    )
    assert store.health().bytes == on_disk


def test_the_end_a_restarted_daemon_sends_becomes_the_event_json_of_its_folder(tmp_path: Path):
    root = tmp_path / "evidence"
    store = make_store(root)
    machine = Machine(store, stream(12.0), time.time())
    machine.scores([0.1, 2.0, 3.0])  # the daemon dies with this event open
    start, start_clip, _ = machine.messages[0]
    folder = Path(start_clip).parent
    end = {"event_id": start.event_id, "type": "end", "reason": "restart", "clip": start_clip}
    restarted = make_store(root)
    restarted.ended_before(json.dumps(end).encode())
    assert json.loads((folder / EVENT_JSON).read_text()) == end
    elsewhere = tmp_path / "other" / MACHINE / folder.name
    elsewhere.mkdir(parents=True)
    made_up = {**end, "clip": str(elsewhere / START_CLIP)}
    restarted.ended_before(json.dumps(made_up).encode())
    assert not (elsewhere / EVENT_JSON).exists()  # not under the evidence root: untouched
    restarted.ended_before(json.dumps({**end, "clip": None}).encode())
    assert restarted.health().failures == 0


def test_the_first_evidence_failure_is_logged_with_its_traceback_at_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in evidence")

    store = make_store(tmp_path)
    monkeypatch.setattr(store, "_start", broken)
    with caplog.at_level(logging.WARNING, logger="edge_asd.evidence.store"):
        one_event(store)
        one_event(store, seed=1)
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno == logging.WARNING]
    assert len(tracebacks) == 1 and "a bug in evidence" in caplog.text


def test_the_initial_peak_is_the_window_that_scored_it_after_a_skipped_window(tmp_path: Path):
    store = make_store(tmp_path)
    machine = Machine(store, stream(20.0), time.time())
    machine.scores([0.1, 0.1, 9.0])  # windows ending at 2, 3, 4 s
    machine.end_frame += HOP  # the window ending at 5 s is skipped (a slow engine)
    machine.scores([2.0])  # ends at 6 s: opens the event (k=2 of n=3)
    assert machine.messages[0][0].type == "start"
    machine.scores([0.1, 0.1, 0.1])  # closes it without a higher peak
    _, end_clip, _ = machine.messages[-1]
    peak_ends = 4 * RATE  # was cut at 5 s: one hop per trace point assumed
    clip, _ = soundfile.read(end_clip, dtype="float32")
    assert np.array_equal(clip, machine.audio[peak_ends - WINDOW : peak_ends])


def test_the_newest_event_of_a_machine_still_goes_when_older_than_max_age(tmp_path: Path):
    # Kept past the byte bound so its clip exists; never kept past the age bound.
    store = make_store(tmp_path, max_age_days=30.0)
    machine = one_event(store, start_time=time.time() - 40 * 86400)
    folder = Path(machine.messages[0][1]).parent
    store.prune()
    assert not folder.exists() and store.health().clips == 0
