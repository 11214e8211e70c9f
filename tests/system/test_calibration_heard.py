"""A calibration remembers how it heard the machine (issue 16, item 4).

Case: calibrated with `--channel 0` on 8-channel MIMII-style recordings; `score` without
`--channel` scored the mean of all 8 channels and called a normal training clip far
above the threshold, without a word. Now `calibration.yaml` records the channel, the
recordings' channel counts and sample rates, and `score` takes the calibration's channel
by default and warns when the channel, the rate or the level differ.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from edge_asd.audio import resample
from edge_asd.cli import main
from edge_asd.synth import MachineSynth, section_profile, write_wav

pytestmark = [pytest.mark.system, pytest.mark.slow]

CHANNELS = 8


def eight_channels(seconds: float, seed: int) -> np.ndarray:
    """float32 [frames, 8]: channel 0 the fan at its microphone, the others other machines
    (as in a MIMII array, where each microphone hears the room differently)."""
    frames = round(seconds * 16000)
    columns = [MachineSynth(section_profile("fan", 0), seed=seed).render(frames)]
    for channel in range(1, CHANNELS):
        profile = section_profile("pump", channel % 3)
        columns.append(2.5 * MachineSynth(profile, seed=100 * seed + channel).render(frames))
    return np.clip(np.stack(columns, axis=1), -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def calibrated(tiny_model, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("mimii")
    normal = []
    for i in range(3):
        normal.append(folder / "normal" / f"normal_{i}.wav")
        normal[-1].parent.mkdir(exist_ok=True)
        write_wav(normal[-1], eight_channels(14.0, i))
    out = folder / "fan.yaml"
    argv = ["calibrate", "--model", str(tiny_model), "--machine", "fan", "--threads", "1"]
    argv += ["--input", str(folder / "normal"), "--channel", "0", "--probes", "8"]
    argv += ["--quantile", "0.99", "--out", str(out)]
    assert main(argv) == 0
    return {"folder": folder, "normal": normal, "calibration": out}


def score(capsys, model: Path, calibration: Path, path: Path, *extra: str) -> dict:
    argv = ["score", "--json", "--threads", "1", "--model", str(model)]
    assert main([*argv, "--calibration", str(calibration), *extra, str(path)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    return json.loads(line)


def test_the_calibration_records_channel_channels_and_rates(calibrated):
    data = yaml.safe_load(calibrated["calibration"].read_text())
    assert data["input"] == {
        "channel": 0,
        "channels": [CHANNELS],
        "sample_rates_hz": [16000],
        "model_rate_hz": 16000,
        "resampled": False,
        "device": None,
    }


def test_score_takes_the_calibrations_channel_by_default(tiny_model, calibrated, capsys, caplog):
    caplog.set_level(logging.INFO)
    clip = calibrated["normal"][0]
    default = score(capsys, tiny_model, calibrated["calibration"], clip)
    chosen = score(capsys, tiny_model, calibrated["calibration"], clip, "--channel", "0")
    assert default == chosen  # the same channel, the same scores
    assert default["anomalous"] is False
    assert "scoring channel 0, as the calibration did" in caplog.text
    assert "on another scale" not in caplog.text


def test_score_warns_when_the_channel_differs_from_the_calibrations(
    tiny_model, calibrated, capsys, caplog
):
    clip = calibrated["normal"][0]
    other = score(capsys, tiny_model, calibrated["calibration"], clip, "--channel", "3")
    normal = score(capsys, tiny_model, calibrated["calibration"], clip)
    assert other["max_score"] != normal["max_score"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "scored as channel 3, but the calibration heard channel 0" in m and "--channel 0" in m
        for m in warned
    ), warned


def test_score_warns_when_the_rate_or_the_level_differ(tiny_model, calibrated, capsys, caplog):
    samples, _ = soundfile.read(calibrated["normal"][1], dtype="float32", always_2d=True)
    at_48k = calibrated["folder"] / "at_48k.wav"
    soundfile.write(at_48k, resample(samples, 16000, 48000), 48000, subtype="PCM_16")
    louder = calibrated["folder"] / "louder.wav"
    write_wav(louder, np.clip(samples * 10 ** (12 / 20), -1, 1))  # +12 dB
    resampled = score(capsys, tiny_model, calibrated["calibration"], at_48k)
    loud = score(capsys, tiny_model, calibrated["calibration"], louder)
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "recorded at 48000 Hz, the calibration's recordings at 16000 Hz" in warned
    assert abs(resampled["level_offset_db"]) < 1.0
    assert loud["level_offset_db"] == pytest.approx(12.0, abs=0.5)
    assert "dB louder than at calibration" in warned


def test_the_daemon_warns_when_its_source_is_not_heard_as_the_calibration_was(
    tiny_model, calibrated, tmp_path
):
    import shutil
    import subprocess
    import sys

    mean = tmp_path / "mean.yaml"  # the same recordings, calibrated on their channel mean
    argv = ["calibrate", "--model", str(tiny_model), "--machine", "fan", "--threads", "1"]
    argv += ["--input", str(calibrated["folder"] / "normal"), "--probes", "8"]
    assert main([*argv, "--quantile", "0.99", "--out", str(mean)]) == 0
    samples, _ = soundfile.read(calibrated["normal"][0], dtype="float32", always_2d=True)
    soundfile.write(tmp_path / "rec.wav", resample(samples[:, :1], 16000, 48000), 48000)
    shutil.copytree(tiny_model, tmp_path / "model")
    config = {
        "device_id": "jetson-01",
        "model": "model",
        "audio": {"sources": [{"kind": "file", "name": "rec", "path": "rec.wav"}]},
        "machines": [{"name": "fan", "source": "rec", "channel": 0, "calibration": "mean.yaml"}],
        "mqtt": {"host": "127.0.0.1", "port": 1883},
        "outbox": {"path": "outbox.sqlite"},
    }
    (tmp_path / "daemon.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "edge_asd.cli", "validate-config", str(tmp_path / "daemon.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "calibrated on the mean of 8 channels, but the daemon hears one" in result.stderr
    assert "its source delivers 48000 Hz, the calibration's audio was 16000 Hz" in result.stderr


def test_the_calibration_says_how_it_heard_the_machine(tiny_model, calibrated, tmp_path, capsys):
    from edge_asd.calibration.heard import HeardAs

    assert HeardAs(None, (1,), (48000,), 16000).describe() == (
        "mono audio at 48000 Hz, resampled to 16000 Hz"
    )
    assert HeardAs(None, (8,), (16000,), 16000).describe() == (
        "the mean of all channels of 8-channel audio at 16000 Hz"
    )
    out = tmp_path / "again.yaml"
    argv = ["calibrate", "--model", str(tiny_model), "--machine", "fan", "--threads", "1"]
    argv += ["--input", str(calibrated["folder"] / "normal"), "--channel", "0", "--probes", "8"]
    assert main([*argv, "--quantile", "0.99", "--out", str(out)]) == 0
    assert "heard as channel 0 of 8-channel audio at 16000 Hz" in capsys.readouterr().out
