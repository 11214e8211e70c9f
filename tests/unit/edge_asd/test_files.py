"""write_atomic: the one atomic write; a reader sees the old file or the new, never half."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge_asd.files import is_temporary_of, write_atomic


def test_a_reader_of_a_file_being_replaced_sees_the_old_file_whole(tmp_path: Path):
    path = tmp_path / "state.json"
    write_atomic(path, b"old")
    with open(path, "rb") as reader:
        write_atomic(path, b"new and longer")
        assert reader.read() == b"old"
    assert path.read_bytes() == b"new and longer"
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary left


@pytest.mark.parametrize("mode", [0o600, 0o644])
@pytest.mark.parametrize("durable", [True, False])
def test_the_file_gets_the_mode_asked_whatever_the_umask(tmp_path: Path, mode: int, durable):
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "f", b"x", mode=mode, durable=durable)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == mode


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    path = tmp_path / "calibration.yaml"
    write_atomic(path, b"old")
    (tmp_path / "calibration.yaml.blocked").mkdir()
    with pytest.raises(IsADirectoryError):  # the rename over a folder fails
        write_atomic(tmp_path / "calibration.yaml.blocked", b"new")
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["calibration.yaml", "calibration.yaml.blocked"]


def test_temporary_names_are_told_from_the_files_they_stand_for():
    assert is_temporary_of(".event.json.k2j3h4.tmp", "event.json")
    assert not is_temporary_of("event.json", "event.json")
    assert not is_temporary_of(".start.flac.k2j3h4.tmp", "event.json")
