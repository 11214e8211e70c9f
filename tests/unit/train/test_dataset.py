"""Reading a DCASE tree for training: labels, short clips, other rates, bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from edge_asd.audio import SAMPLE_RATE
from edge_asd.dcase import parse_clip
from edge_asd.errors import UserError
from edge_asd.synth import render_clip, write_wav
from train.clip_audio import clip_windows, fit_to_window
from train.config import TrainConfig
from train.dataset import (
    WindowDataset,
    clip_label,
    resolve_machine_types,
    scan_recordings,
    split_validation,
)
from train.mixup import mixup
from train.model import ModelConfig

WINDOW_SAMPLES = 2 * SAMPLE_RATE  # 2 s windows keep these tests small


def config(**overrides) -> TrainConfig:
    return TrainConfig(model=ModelConfig(window_samples=WINDOW_SAMPLES), **overrides)


def write_clip(root: Path, name: str, seconds: float, rate: int = SAMPLE_RATE, seed: int = 0):
    folder = root / "fan" / name.split("/")[0]
    folder.mkdir(parents=True, exist_ok=True)
    x = render_clip("fan", int(name.split("section_")[1][:2]), "source", seconds, seed)
    if rate != SAMPLE_RATE:
        x = np.interp(np.arange(round(seconds * rate)) * SAMPLE_RATE / rate, np.arange(len(x)), x)
    write_wav(folder / name.split("/")[1], x, rate)
    return folder / name.split("/")[1]


def test_label_schemes_name_sections_or_sections_with_attributes():
    clip = parse_clip(Path("fan/train/section_01_target_train_normal_0003_vel_6_seg_02.wav"))
    assert clip_label(clip, "section") == "fan/section_01"
    assert clip_label(clip, "type_section") == "fan/section_01"
    assert clip_label(clip, "section_attribute", ("seg",)) == "fan/section_01/vel_6"
    plain = parse_clip(Path("fan/train/section_01_source_train_normal_0003.wav"))
    assert clip_label(plain, "section_attribute") == "fan/section_01"


def test_short_clips_are_tiled_and_the_log_says_so(tmp_path, caplog):
    write_clip(tmp_path, "train/section_00_source_train_normal_0000.wav", 0.5)
    write_clip(tmp_path, "train/section_00_source_train_normal_0001.wav", 2.5)
    with caplog.at_level(logging.WARNING):
        recordings = scan_recordings(tmp_path, ["fan"], config())
    assert "1 of 2 recordings are shorter than the 2.0 s window" in caplog.text
    assert "repeated end to end" in caplog.text
    dataset = WindowDataset(recordings, ["fan/section_00"], WINDOW_SAMPLES, "tile")
    window, label = dataset[0]
    assert window.shape == (WINDOW_SAMPLES,) and label == 0
    short = window.numpy()
    np.testing.assert_array_equal(short[: SAMPLE_RATE // 2], short[SAMPLE_RATE // 2 : SAMPLE_RATE])


def test_join_puts_a_recordings_clips_end_to_end(tmp_path):
    for seg in range(3):
        name = f"train/section_00_source_train_normal_000{seg}_rec_7_seg_0{seg}.wav"
        write_clip(tmp_path, name, 1.0, seed=seg)
    write_clip(tmp_path, "train/section_00_source_train_normal_0009_rec_8_seg_00.wav", 1.0)
    recordings = scan_recordings(tmp_path, ["fan"], config(short_clips="join", join_key="rec"))
    lengths = sorted(r.samples for r in recordings)
    assert lengths == [SAMPLE_RATE, 3 * SAMPLE_RATE]
    joined = next(r for r in recordings if len(r.clips) == 3)
    assert [c.attribute("seg") for c in joined.clips] == ["00", "01", "02"]


def test_other_sample_rates_are_resampled_and_said(tmp_path, caplog):
    write_clip(tmp_path, "train/section_00_source_train_normal_0000.wav", 2.0, rate=48000)
    with caplog.at_level(logging.INFO):
        recordings = scan_recordings(tmp_path, ["fan"], config())
    assert "1 clips are at 48000 Hz: resampled to 16000 Hz" in caplog.text
    assert recordings[0].samples == 2 * SAMPLE_RATE


def test_unreadable_files_are_skipped_by_name_and_nothing_usable_is_an_error(tmp_path, caplog):
    folder = tmp_path / "fan" / "train"
    folder.mkdir(parents=True)
    (folder / "section_00_source_train_normal_0000.wav").write_bytes(b"not audio at all")
    with caplog.at_level(logging.WARNING), pytest.raises(UserError, match="no usable normal"):
        scan_recordings(tmp_path, ["fan"], config())
    assert "section_00_source_train_normal_0000.wav: skipped, cannot read audio" in caplog.text


def test_a_folder_without_the_dcase_layout_is_refused(tmp_path):
    with pytest.raises(UserError, match="no <machine_type>/train"):
        resolve_machine_types(tmp_path, None)
    (tmp_path / "fan" / "train").mkdir(parents=True)
    (tmp_path / "fan" / "train" / "recording.wav").write_bytes(b"")
    with pytest.raises(UserError, match=r"found recording\.wav"):
        scan_recordings(tmp_path, ["fan"], config())
    with pytest.raises(UserError, match="no machine type"):
        resolve_machine_types(tmp_path, ["pump"])


def test_validation_keeps_a_share_of_every_label_and_one_for_training(tmp_path):
    for i in range(4):
        write_clip(tmp_path, f"train/section_00_source_train_normal_000{i}.wav", 0.2, seed=i)
    write_clip(tmp_path, "train/section_01_source_train_normal_0000.wav", 0.2)
    recordings = scan_recordings(tmp_path, ["fan"], config())
    train, held = split_validation(recordings, 0.5, seed=0)
    assert sorted(r.label for r in held) == ["fan/section_00", "fan/section_00"]
    assert {r.label for r in train} == {"fan/section_00", "fan/section_01"}


def test_long_recordings_give_random_crops_and_short_ones_padding():
    x = np.arange(10, dtype=np.float32)
    crops = {tuple(fit_to_window(x, 4, "tile", np.random.default_rng(s))) for s in range(20)}
    assert len(crops) > 1 and all(np.all(np.diff(c) == 1) for c in crops)
    np.testing.assert_array_equal(fit_to_window(x[:3], 5, "pad"), [0, 1, 2, 0, 0])
    np.testing.assert_array_equal(fit_to_window(x[:3], 5, "tile"), [0, 1, 2, 0, 1])
    assert clip_windows(x, 4, "tile", hop_samples=2).shape == (4, 4)


def test_mixup_mixes_waveforms_and_labels_with_one_weight():
    targets = torch.eye(3)
    waveforms = torch.eye(3) * 2.0  # each waveform codes its label: mixed alike, they stay 2x
    changed = 0
    for seed in range(10):
        mixed_x, mixed_y = mixup(waveforms, targets, 1.0, 0.4, np.random.default_rng(seed))
        torch.testing.assert_close(mixed_x, 2.0 * mixed_y)
        torch.testing.assert_close(mixed_y.sum(dim=1), torch.ones(3))
        changed += not torch.equal(mixed_y, targets)
    assert changed >= 5
    same_x, same_y = mixup(waveforms, targets, 0.0, 0.4, np.random.default_rng(0))
    assert same_x is waveforms and same_y is targets
