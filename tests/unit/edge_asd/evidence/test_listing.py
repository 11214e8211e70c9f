"""Recent events read from evidence folders: newest first, filtered, bounded, and blind to
anything that is not a finished event folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge_asd.evidence.listing import evidence_file, recent_events


def make_event(root: Path, machine: str, started: str, event_id: str, **files: bytes) -> Path:
    folder = root / machine / f"{started}_{event_id}"
    folder.mkdir(parents=True)
    (folder / "event.json").write_text(json.dumps({"event_id": event_id, "type": "end"}))
    for name, data in files.items():
        (folder / name.replace("_", ".")).write_bytes(data)
    return folder


def test_events_come_newest_first_across_machines(tmp_path: Path):
    make_event(tmp_path, "pump-1", "20260101T100000Z", "a")
    make_event(tmp_path, "fan-2", "20260101T110000Z", "b")
    make_event(tmp_path, "pump-1", "20260102T090000Z", "c")
    events = recent_events(tmp_path, ["pump-1", "fan-2"])
    assert [e.payload["event_id"] for e in events] == ["c", "b", "a"]
    assert [e.machine for e in events] == ["pump-1", "fan-2", "pump-1"]


def test_a_machine_filter_and_a_limit_bound_the_list(tmp_path: Path):
    for hour in range(10):
        make_event(tmp_path, "pump-1", f"20260101T{hour:02d}0000Z", f"p{hour}")
        make_event(tmp_path, "fan-2", f"20260101T{hour:02d}3000Z", f"f{hour}")
    only_pump = recent_events(tmp_path, ["pump-1", "fan-2"], machine="pump-1", limit=3)
    assert [e.payload["event_id"] for e in only_pump] == ["p9", "p8", "p7"]
    both = recent_events(tmp_path, ["pump-1", "fan-2"], limit=3)
    assert [e.payload["event_id"] for e in both] == ["f9", "p9", "f8"]


def test_the_files_present_are_listed(tmp_path: Path):
    make_event(tmp_path, "pump-1", "20260101T100000Z", "a", start_flac=b"fLaC", event_png=b"x")
    (event,) = recent_events(tmp_path, ["pump-1"])
    assert event.files == ("start.flac", "event.png", "event.json")  # layout.FILES order


def test_half_made_foreign_and_linked_folders_are_left_out(tmp_path: Path):
    make_event(tmp_path, "pump-1", "20260101T100000Z", "good")
    (tmp_path / "pump-1" / "20260101T110000Z_half").mkdir()  # no event.json yet
    broken = tmp_path / "pump-1" / "20260101T120000Z_broken"
    broken.mkdir()
    (broken / "event.json").write_text("{not json")
    listed = tmp_path / "pump-1" / "20260101T130000Z_list"
    listed.mkdir()
    (listed / "event.json").write_text("[1, 2]")
    (tmp_path / "pump-1" / "notes").mkdir()
    (tmp_path / "pump-1" / "20260101T140000Z_file").write_text("{}")
    elsewhere = make_event(tmp_path / "other", "x", "20260101T150000Z", "linked")
    os.symlink(elsewhere, tmp_path / "pump-1" / "20260101T150000Z_linked")
    make_event(tmp_path, "intruder", "20260101T160000Z", "foreign")  # no such machine
    events = recent_events(tmp_path, ["pump-1"])
    assert [e.payload["event_id"] for e in events] == ["good"]


def test_a_missing_evidence_folder_has_no_events(tmp_path: Path):
    assert recent_events(tmp_path / "absent", ["pump-1"]) == []


def test_only_evidence_files_of_event_folders_can_be_named(tmp_path: Path):
    folder = make_event(tmp_path / "evidence", "pump-1", "20260101T100000Z", "a", peak_flac=b"f")
    (tmp_path / "secret.txt").write_text("no")
    root = tmp_path / "evidence"
    assert evidence_file(root, "pump-1", folder.name, "peak.flac") == folder / "peak.flac"
    assert evidence_file(root, "pump-1", folder.name, "start.flac") is None  # not there
    # Each target below exists as a plain file inside `root` and is named like an evidence
    # file: only the layout's checks of the machine and folder names can refuse it.
    (root / "event.json").write_text("{}")
    assert evidence_file(root, "pump-1", "..", "event.json") is None  # folder '..'
    (root / "pump-1" / "notes").mkdir()
    (root / "pump-1" / "notes" / "event.json").write_text("{}")
    assert evidence_file(root, "pump-1", "notes", "event.json") is None  # not an event folder
    (root / "pump-1" / "notes" / folder.name).mkdir()
    (root / "pump-1" / "notes" / folder.name / "event.json").write_text("{}")
    assert evidence_file(root, "pump-1/notes", folder.name, "event.json") is None  # separator
    (root / "pump-1" / "event.json").write_text("{}")
    assert evidence_file(root, ".", "pump-1", "event.json") is None  # machine '.'
    # names outside the layout's files, present in the folder
    (folder / "secret.txt").write_text("no")
    assert evidence_file(root, "pump-1", folder.name, "secret.txt") is None
    assert evidence_file(root, "pump-1", folder.name, "../../../secret.txt") is None
    os.symlink(tmp_path / "secret.txt", folder / "event.png")
    assert evidence_file(root, "pump-1", folder.name, "event.png") is None
