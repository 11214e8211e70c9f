"""`edge-asd calibrate --input FOLDER` as a user runs it: every recording the folder leads
to is used, across links to other disks, and the command says what it used and left out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_asd.calibration.file import load_calibration
from edge_asd.model_file import load_model_info
from edge_asd.synth import MachineSynth, section_profile, write_wav

pytestmark = [pytest.mark.system, pytest.mark.slow]


def write_recordings(folder: Path, seeds: range, seconds: float = 12.0) -> None:
    folder.mkdir(parents=True)
    for seed in seeds:
        synth = MachineSynth(section_profile("fan", 0), seed=seed)
        write_wav(folder / f"normal_{seed}.wav", synth.render(round(seconds * 16000)))


def test_calibrate_uses_the_recordings_of_a_folder_linked_from_another_disk(
    tiny_model: Path, tmp_path: Path
):
    """Issue 16 item 1: normal/day2 a link to another disk; calibrate used day1's 3 of 6."""
    write_recordings(tmp_path / "normal" / "day1", range(3))
    write_recordings(tmp_path / "other_disk" / "day2", range(3, 6))
    (tmp_path / "normal" / "day2").symlink_to(tmp_path / "other_disk" / "day2")
    out = tmp_path / "fan1.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "edge_asd.cli", "calibrate", "--model", str(tiny_model),
         "--machine", "fan1", "--input", "normal", "--quantile", "0.9", "--probes", "8",
         "--threads", "1", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    calibration = load_calibration(out, load_model_info(tiny_model))
    assert calibration.n_recordings == 6
    assert calibration.n_windows == 6 * 3  # 12 s recordings, 10 s windows, 1 s hop
    assert "normal: 6 files used; none skipped" in result.stderr


def test_the_same_files_give_the_same_calibration_however_folders_lay_them_out(
    tiny_model: Path, tmp_path: Path
):
    """A fresh user's trial: the uav train files, some reached through a linked folder
    (so walked in another order), gave another detector and threshold than the plain
    folder, and 10 of 26 normal test clips ANOMALY. Folds and probes follow the
    recordings' order; that order is now their files' names."""
    import yaml

    write_recordings(tmp_path / "flat", range(6))
    write_recordings(tmp_path / "elsewhere" / "zz", range(0))  # made empty, filled below
    (tmp_path / "linked" / "b").mkdir(parents=True)
    for seed in range(6):  # the later files under a link that sorts first: another order
        target = tmp_path / ("linked/b" if seed < 3 else "elsewhere/zz")
        (target / f"normal_{seed}.wav").write_bytes(
            (tmp_path / "flat" / f"normal_{seed}.wav").read_bytes()
        )
    (tmp_path / "linked" / "a").symlink_to(tmp_path / "elsewhere" / "zz")

    def calibrated(folder: str) -> dict:
        out = tmp_path / f"{folder}.yaml"
        result = subprocess.run(
            [sys.executable, "-m", "edge_asd.cli", "calibrate", "--model", str(tiny_model),
             "--machine", "fan1", "--input", folder, "--quantile", "0.9", "--probes", "8",
             "--threads", "1", "--out", str(out)],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        data = yaml.safe_load(out.read_text())
        return {key: data[key] for key in ("detector", "threshold", "selection", "score_stats")}

    assert calibrated("linked") == calibrated("flat")
