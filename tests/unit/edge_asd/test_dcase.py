"""The DCASE layout's listing (`list_clips`, `machine_types`) leaves out what any input
folder leaves out (edge_asd.input_files), and says what it left out."""

from __future__ import annotations

import logging

import pytest

from edge_asd.dcase import list_clips, machine_types
from edge_asd.errors import UserError

CLIP = "section_00_source_train_normal_{:04d}.wav"


def test_a_dcase_listing_follows_links_and_summarises_what_it_left_out(tmp_path, caplog):
    train = tmp_path / "fan" / "train"
    train.mkdir(parents=True)
    (tmp_path / "usb" / "more").mkdir(parents=True)
    for path in (train / CLIP.format(0), tmp_path / "usb" / "more" / CLIP.format(1)):
        path.write_bytes(b"RIFF")
    (train / "more").symlink_to(tmp_path / "usb" / "more")
    (train / CLIP.format(2)).symlink_to(train / CLIP.format(0))  # the same clip again
    for name in (".DS_Store", "._" + CLIP.format(0), "readme.txt", "recording.wav"):
        (train / name).write_bytes(b"")
    with caplog.at_level(logging.INFO):
        clips = list_clips(tmp_path, "fan", "train")
    assert [c.path for c in clips] == [train / "more" / CLIP.format(1), train / CLIP.format(0)]
    assert [c.index for c in clips] == [1, 0]
    said = (
        f"2 files used; 5 skipped: 2 system files (.DS_Store, ._{CLIP.format(0)}), "
        f"1 not audio (readme.txt), 1 duplicate ({CLIP.format(2)}), "
        "1 not named in the DCASE form (recording.wav)"
    )
    assert f"{train}: {said}" in caplog.messages


def test_a_dcase_folder_of_only_misnamed_audio_names_it_first(tmp_path):
    train = tmp_path / "fan" / "train"
    train.mkdir(parents=True)
    for name in (".DS_Store", "a_notes.txt", "recording.wav"):
        (train / name).write_bytes(b"")
    with pytest.raises(UserError, match=r"\(found recording\.wav, \.DS_Store, a_notes\.txt\)"):
        list_clips(tmp_path, "fan", "train")


def test_hidden_and_system_folders_are_not_machine_types(tmp_path):
    for folder in ("fan/train", ".fan_backup/train", "__MACOSX/test", "pump/test"):
        (tmp_path / folder).mkdir(parents=True)
    assert machine_types(tmp_path) == ["fan", "pump"]
