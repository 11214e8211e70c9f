"""The calibration's input files: bad ones named one by one, clips joined per recording."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile

from edge_asd.audio import SAMPLE_RATE, WINDOW_SAMPLES, read_audio
from edge_asd.calibration.inputs import (
    Recording,
    judge_level,
    level_meter,
    level_problem,
    plan_recordings,
)
from edge_asd.errors import AudioFileError, UserError
from edge_asd.synth import render_clip, write_wav
from edge_asd.windows import sliding_windows


def machine(seconds: float, seed: int = 0) -> np.ndarray:
    return render_clip("fan", 0, "source", seconds, seed=seed)


def plan(paths, **kwargs):
    return plan_recordings([str(p) for p in paths], window_samples=WINDOW_SAMPLES, **kwargs)


def windows_of(recording: Recording, channel: int | None = None, hop: int = SAMPLE_RATE):
    """(windows [W, WINDOW_SAMPLES], end samples [W]) of a recording, all batches joined."""
    batches = list(recording.windows(channel, WINDOW_SAMPLES, hop, batch_size=3))
    return (
        np.concatenate([b.waveforms for b in batches]),
        np.concatenate([b.end_samples for b in batches]),
    )


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    """One file per kind of problem, each with the words its message must contain."""
    folder = tmp_path / "bad"
    folder.mkdir()
    files = {}
    files["random bytes"] = folder / "noise.wav"
    files["random bytes"].write_bytes(np.random.default_rng(0).bytes(3000))
    files["empty"] = folder / "empty.wav"
    write_wav(files["empty"], np.zeros(0))
    files["silent"] = folder / "silent.wav"
    write_wav(files["silent"], np.zeros(12 * SAMPLE_RATE))
    files["partly silent"] = folder / "off.wav"
    write_wav(files["partly silent"], np.concatenate([machine(6), np.zeros(6 * SAMPLE_RATE)]))
    files["clipped"] = folder / "clipped.wav"
    write_wav(files["clipped"], np.clip(machine(12) * 40, -1, 1))
    files["too short"] = folder / "short.wav"
    write_wav(files["too short"], machine(3))
    files["8 kHz"] = folder / "low_rate.wav"
    soundfile.write(files["8 kHz"], machine(12)[::2], 8000)
    files["NaN"] = folder / "nan.wav"
    soundfile.write(
        files["NaN"], np.full(12 * SAMPLE_RATE, np.nan, np.float32), SAMPLE_RATE, subtype="FLOAT"
    )
    files["anomaly"] = folder / "section_00_source_test_anomaly_0001.wav"
    write_wav(files["anomaly"], machine(12))
    return files


EXPECTED_WORDS = {
    "random bytes": "cannot read",
    "empty": "no samples",
    "silent": "silent",
    "partly silent": "seconds are silent",
    "clipped": "clipped",
    "too short": "too short",
    "8 kHz": "8000 Hz",
    "NaN": "NaN",
    "anomaly": "anomaly",
}


def test_every_bad_file_is_named_with_its_problem(bad_files, tmp_path: Path):
    good = tmp_path / "good.wav"
    write_wav(good, machine(12))
    with pytest.raises(AudioFileError) as caught:
        plan([good, *bad_files.values()])
    lines = str(caught.value).splitlines()
    assert f"{len(bad_files)} input problem(s)" in lines[0]
    for kind, path in bad_files.items():
        mine = [line for line in lines if str(path) in line]
        assert len(mine) == 1, f"{kind}: {mine}"
        assert EXPECTED_WORDS[kind] in mine[0], f"{kind}: {mine[0]}"
    assert not any(str(good) in line for line in lines)


def test_skipping_bad_files_keeps_the_good_ones(bad_files, tmp_path, caplog):
    good = tmp_path / "good.wav"
    write_wav(good, machine(12))
    with caplog.at_level(logging.WARNING):
        recordings = plan([good, *bad_files.values()], skip_bad=True)
    assert [r.files for r in recordings] == [(good,)]
    assert sum("left out" in r.message for r in caplog.records) == len(bad_files)


def test_only_bad_files_leave_nothing_to_calibrate(bad_files):
    with pytest.raises(UserError, match="no usable"):
        plan([bad_files["silent"]], skip_bad=True)


def test_missing_paths_and_empty_folders_are_named(tmp_path: Path):
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(AudioFileError) as caught:
        plan([tmp_path / "absent.wav", tmp_path / "empty_folder"])
    assert "absent.wav: no such file" in str(caught.value)
    assert "empty_folder: folder holds no .wav" in str(caught.value)


def test_a_folder_linked_elsewhere_is_used_and_what_was_left_out_is_summarised(tmp_path, caplog):
    """Issue 16 item 1: a folder link in --input was not followed, and nothing said so."""
    for i, day in enumerate(("normal/day1", "elsewhere/day2")):
        (tmp_path / day).mkdir(parents=True)
        write_wav(tmp_path / day / "rec.wav", machine(12, seed=i))
    (tmp_path / "normal" / "day2").symlink_to(tmp_path / "elsewhere" / "day2")
    (tmp_path / "normal" / "notes.txt").write_text("gain 3")
    (tmp_path / "normal" / ".DS_Store").write_bytes(b"")
    with caplog.at_level(logging.INFO):
        recordings = plan([tmp_path / "normal"])
    assert [r.files for r in recordings] == [
        (tmp_path / "normal" / "day1" / "rec.wav",),
        (tmp_path / "normal" / "day2" / "rec.wav",),
    ]
    said = "2 files used; 2 skipped: 1 system file (.DS_Store), 1 not audio (notes.txt)"
    assert f"{tmp_path / 'normal'}: {said}" in caplog.messages


def test_a_broken_link_in_an_input_folder_is_a_problem_unless_bad_files_are_skipped(
    tmp_path, caplog
):
    (tmp_path / "normal").mkdir()
    write_wav(tmp_path / "normal" / "rec.wav", machine(12))
    (tmp_path / "normal" / "day2").symlink_to(tmp_path / "unmounted" / "day2")
    with pytest.raises(AudioFileError) as caught:
        plan([tmp_path / "normal"])
    assert f"{tmp_path / 'normal' / 'day2'}: broken link (to {tmp_path / 'unmounted'}" in str(
        caught.value
    )
    with caplog.at_level(logging.WARNING):
        recordings = plan([tmp_path / "normal"], skip_bad=True)
    assert [r.files for r in recordings] == [(tmp_path / "normal" / "rec.wav",)]
    assert any("left out" in m and "broken link" in m for m in caplog.messages)


def test_a_higher_rate_stereo_file_is_resampled(tmp_path: Path):
    stereo = np.stack([machine(12), machine(12, seed=1)], axis=1)
    path = tmp_path / "studio.flac"
    soundfile.write(path, np.repeat(stereo, 3, axis=0), 48000)  # crude 48 kHz
    (recording,) = plan([path])
    assert abs(recording.seconds - 12) <= 2 / SAMPLE_RATE
    mean, ends = windows_of(recording)
    assert mean.dtype == np.float32 and list(ends) == [
        WINDOW_SAMPLES + k * SAMPLE_RATE for k in (0, 1, 2)
    ]
    np.testing.assert_allclose(
        mean, sliding_windows(read_audio(path).mono(), WINDOW_SAMPLES, SAMPLE_RATE), atol=1e-6
    )
    left, _ = windows_of(recording, channel=0)
    assert not np.allclose(left, mean)


def test_a_channel_the_file_lacks_is_named(tmp_path: Path):
    path = tmp_path / "mono.wav"
    write_wav(path, machine(12))
    with pytest.raises(AudioFileError, match="--channel 3 does not exist"):
        plan([path], channel=3)


def test_dcase_clips_are_joined_per_recording_in_segment_order(tmp_path: Path):
    folder = tmp_path / "fan" / "train"
    folder.mkdir(parents=True)
    stream = machine(15)
    parts = np.split(stream, 3)
    for seg in (2, 0, 1):  # written out of order; indices unrelated to seg
        name = f"section_00_source_train_normal_{9 - seg:04d}_state_on_rec_77_seg_{seg}.wav"
        write_wav(folder / name, parts[seg])
    other = "section_00_source_train_normal_0100_state_on_rec_88_seg_0.wav"
    write_wav(folder / other, machine(12, seed=5))
    recordings = plan([tmp_path])
    assert sorted(r.name.split()[1] for r in recordings) == ["77", "88"]
    joined = next(r for r in recordings if "77" in r.name)
    assert len(joined.files) == 3 and joined.seconds == pytest.approx(15.0)
    windows, ends = windows_of(joined, hop=SAMPLE_RATE // 2)
    expected = np.round(np.clip(stream, -1, 1) * 32767) / 32768
    assert len(windows) == 11 and ends[-1] == 15 * SAMPLE_RATE
    np.testing.assert_allclose(
        windows, sliding_windows(expected, WINDOW_SAMPLES, SAMPLE_RATE // 2), atol=1e-4
    )


def test_a_clip_shorter_than_a_window_is_tiled_with_a_warning(tmp_path, caplog):
    path = tmp_path / "five_seconds.wav"
    write_wav(path, machine(6))
    with caplog.at_level(logging.WARNING):
        (recording,) = plan([path])
    assert recording.tiled
    assert any("tiled" in r.message for r in caplog.records)
    windows, ends = windows_of(recording)
    assert windows.shape == (1, WINDOW_SAMPLES) and list(ends) == [WINDOW_SAMPLES]
    window = windows[0]
    np.testing.assert_array_equal(window[: 6 * SAMPLE_RATE], read_audio(path).mono())
    np.testing.assert_array_equal(window[6 * SAMPLE_RATE :], window[: 4 * SAMPLE_RATE])


def test_checks_and_windows_never_read_a_file_whole(tmp_path: Path, monkeypatch):
    paths = [tmp_path / "quiet.wav", tmp_path / "loud.flac"]
    write_wav(paths[0], machine(12))
    soundfile.write(paths[1], np.repeat(machine(12, seed=3), 3), 48000)  # crude 48 kHz

    def whole_file_read(*args, **kwargs):
        raise AssertionError("a whole file was read")

    monkeypatch.setattr(soundfile, "read", whole_file_read)
    recordings = plan(paths)
    assert [len(windows_of(r)[0]) for r in recordings] == [3, 3]


@pytest.mark.parametrize("kind", ["silent", "partly silent", "clipped", "too short"])
def test_level_measured_block_by_block_says_what_the_whole_signal_says(bad_files, kind):
    samples = read_audio(bad_files[kind]).mono()
    meter = level_meter()
    for block in np.array_split(samples, 37):  # blocks across the 1 s level blocks
        meter.feed(block)
    assert meter.samples == len(samples)
    assert judge_level(bad_files[kind], meter) == level_problem(bad_files[kind], samples)
