"""What a folder given as input contributes (edge_asd.input_files): links followed, loops
and duplicates reached once, hidden, system and non-audio files left out with their reason,
problems named, and the one-line summary a user reads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_asd.input_files import walk_inputs


def touch(*paths: Path) -> list[Path]:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")  # walking reads no file: any bytes do
    return list(paths)


def reasons(found) -> dict[str, str]:
    """{name of what was left out: its reason}."""
    return {s.path.name: s.reason for s in found.skipped}


def test_a_folder_linked_from_another_disk_is_walked_and_its_files_used(tmp_path):
    """Issue 16 item 1: `--input normal` with normal/day2 a link to a folder elsewhere used
    normal/day1's 3 files and said nothing of day2's 3 (Path.rglob follows no folder link)."""
    day1 = touch(*(tmp_path / "normal" / "day1" / f"rec_{i}.wav" for i in range(3)))
    touch(*(tmp_path / "elsewhere" / "day2" / f"rec_{i}.wav" for i in range(3)))
    (tmp_path / "normal" / "day2").symlink_to(tmp_path / "elsewhere" / "day2")
    found = walk_inputs([tmp_path / "normal"])
    day2 = [tmp_path / "normal" / "day2" / f"rec_{i}.wav" for i in range(3)]
    assert found.files == [*day1, *day2]
    assert found.summary() == "6 files used; none skipped"


def test_a_link_to_an_ancestor_ends_the_walk_and_is_reported_as_a_loop(tmp_path):
    (recording,) = touch(tmp_path / "normal" / "day1" / "rec.wav")
    (tmp_path / "normal" / "day1" / "up").symlink_to(tmp_path / "normal")
    (tmp_path / "normal" / "day1" / "self").symlink_to(".")
    found = walk_inputs([tmp_path / "normal"])
    assert found.files == [recording]
    assert reasons(found) == {"self": "link loop", "up": "link loop"}
    assert found.summary() == "1 file used; 2 skipped: 2 link loops (self, up)"
    assert not found.problems


def test_a_file_reached_twice_is_used_once_and_named_as_a_duplicate(tmp_path):
    (recording,) = touch(tmp_path / "normal" / "a.wav")
    (tmp_path / "normal" / "b_link.wav").symlink_to("a.wav")
    os.link(recording, tmp_path / "normal" / "c_hard.wav")
    (tmp_path / "normal" / "d_folder").symlink_to(".")  # a loop: its a.wav not reached
    found = walk_inputs([tmp_path / "normal", recording])
    assert found.files == [recording]
    duplicates = [s for s in found.skipped if s.reason == "duplicate"]
    assert [s.path.name for s in duplicates] == ["b_link.wav", "c_hard.wav", "a.wav"]
    assert all(s.detail == f"same file as {recording}" for s in duplicates)
    assert "3 duplicates (b_link.wav, c_hard.wav, a.wav)" in found.summary()


def test_a_folder_given_twice_or_linked_twice_is_walked_once(tmp_path):
    touch(tmp_path / "normal" / "day1" / "a.wav")
    (tmp_path / "normal" / "again").symlink_to(tmp_path / "normal" / "day1")
    found = walk_inputs([tmp_path / "normal", tmp_path / "normal" / "day1"])
    assert found.files == [tmp_path / "normal" / "again" / "a.wav"]  # first in sorted order
    assert [str(s) for s in found.skipped] == [
        f"{tmp_path / 'normal' / 'day1'}: folder reached twice "
        f"(already walked as {tmp_path / 'normal' / 'again'})",
        f"{tmp_path / 'normal' / 'day1'}: folder reached twice "
        f"(already walked as {tmp_path / 'normal' / 'again'})",
    ]
    assert not found.problems  # nothing is missing: every file was used once


def test_hidden_system_and_non_audio_files_are_left_out_with_their_reason(tmp_path):
    folder = tmp_path / "normal"
    used = touch(folder / "a.wav", folder / "b.FLAC", folder / "sub" / "c.Wav")
    touch(
        *(folder / name for name in (".DS_Store", "Thumbs.db", "desktop.ini", "._a.wav")),
        folder / "__MACOSX" / "._b.wav",
        folder / ".hidden" / "d.wav",
        folder / ".e.wav",
        folder / "notes.txt",
        folder / "a.wav.part",
        folder / "f.mp3",
    )
    os.mkfifo(folder / "g.wav")
    found = walk_inputs([folder])
    assert found.files == used
    assert reasons(found) == {
        ".DS_Store": "system file",
        "Thumbs.db": "system file",
        "desktop.ini": "system file",
        "._a.wav": "system file",
        "__MACOSX": "system file",
        ".hidden": "hidden",
        ".e.wav": "hidden",
        "notes.txt": "not audio",
        "a.wav.part": "not audio",
        "f.mp3": "not WAV or FLAC",
        "g.wav": "not a regular file",
    }
    assert found.summary() == (
        "3 files used; 11 skipped: 2 hidden (.hidden, .e.wav), 5 system files (__MACOSX, "
        ".DS_Store, ._a.wav and 2 more), 2 not audio (a.wav.part, notes.txt), "
        "1 not WAV or FLAC (f.mp3), 1 not a regular file (g.wav)"
    )
    assert not found.problems


def test_a_file_named_on_the_command_line_is_used_whatever_its_name(tmp_path):
    given = touch(tmp_path / ".hidden.wav", tmp_path / "._mac.wav", tmp_path / "take.raw")
    found = walk_inputs(given)
    assert found.files == given and not found.skipped


def test_broken_links_and_missing_paths_are_named_as_problems(tmp_path):
    (recording,) = touch(tmp_path / "normal" / "a.wav")
    (tmp_path / "normal" / "gone.wav").symlink_to(tmp_path / "unplugged" / "gone.wav")
    (tmp_path / "normal" / "day2").symlink_to(tmp_path / "unplugged" / "day2")
    (tmp_path / "given.wav").symlink_to(tmp_path / "unplugged" / "given.wav")
    found = walk_inputs([tmp_path / "normal", tmp_path / "given.wav", tmp_path / "absent"])
    assert found.files == [recording]
    assert [str(p) for p in found.problems] == [
        f"{tmp_path / 'normal' / 'day2'}: broken link (to {tmp_path / 'unplugged' / 'day2'})",
        f"{tmp_path / 'normal' / 'gone.wav'}: broken link "
        f"(to {tmp_path / 'unplugged' / 'gone.wav'})",
        f"{tmp_path / 'given.wav'}: broken link (to {tmp_path / 'unplugged' / 'given.wav'})",
        f"{tmp_path / 'absent'}: no such file or folder",
    ]
    assert "3 broken links (day2, gone.wav, given.wav)" in found.summary()


def test_a_folder_without_audio_is_a_problem_that_says_what_it_holds(tmp_path):
    touch(tmp_path / "exports" / "take1.mp3", tmp_path / "exports" / ".DS_Store")
    (problem,) = walk_inputs([tmp_path / "exports"]).problems
    assert str(problem) == (
        f"{tmp_path / 'exports'}: folder holds no .wav or .flac file "
        "(1 system file (.DS_Store), 1 not WAV or FLAC (take1.mp3))"
    )


def walk_unprivileged(folder: Path) -> tuple[list[str], list[str]]:
    """(files, problems) of `walk_inputs([folder])` as a user without root's right to read
    every folder: this process when it is not root, else a child process as `nobody`."""
    if os.geteuid() != 0:
        found = walk_inputs([folder])
        return [str(p) for p in found.files], [str(p) for p in found.problems]
    code = (
        "import json, sys; from edge_asd.input_files import walk_inputs; "
        "f = walk_inputs([sys.argv[1]]); "
        "print(json.dumps([[str(p) for p in f.files], [str(p) for p in f.problems]]))"
    )
    setpriv = shutil.which("setpriv")  # util-linux; drops root before Python starts
    if setpriv is None:
        pytest.skip("runs as root and has no setpriv to run as another user")
    drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]  # nobody
    result = subprocess.run(
        [*drop, sys.executable, "-c", code, str(folder)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    files, problems = json.loads(result.stdout)
    return files, problems


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder others may enter (pytest's tmp_path is root's alone when run as root)."""
    folder = Path(tempfile.mkdtemp(prefix="edge-asd-walk-"))
    folder.chmod(0o755)
    yield folder
    for path in folder.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder)


def test_an_unreadable_folder_is_named_as_a_problem(shared_tmp):
    (recording,) = touch(shared_tmp / "normal" / "a.wav")
    locked = shared_tmp / "normal" / "locked"
    touch(locked / "b.wav")
    locked.chmod(0)
    files, problems = walk_unprivileged(shared_tmp / "normal")
    assert files == [str(recording)]
    assert problems == [f"{locked}: unreadable (Permission denied)"]
