"""`edge-asd demo --short`: the whole chain, end to end, with its own broker and daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]


def test_short_demo_alerts_on_every_injected_fault_and_never_on_normal_sound(
    trained_model: Path, tmp_path: Path
):
    summary_path = tmp_path / "summary.json"
    png = tmp_path / "trace.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_asd.cli",
            "demo",
            "--short",
            "--model",
            str(trained_model),
            "--work-dir",
            str(tmp_path / "work"),
            "--png",
            str(png),
            "--summary-json",
            str(summary_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert len(summary["detections"]) == 2
    for detection in summary["detections"]:
        assert detection["alert"] is not None, detection["fault"]
        delay = detection["alert"]["stream_seconds"] - detection["fault"]["start_s"]
        assert 0 < delay <= 10.0  # within one window length of the fault's start
    assert summary["false_alarms"] == []
    assert summary["windows"] == 91  # 100 s of sound, 10 s windows, 1 s hop
    assert "MQTT ALERT" in result.stdout and "false alarms: 0" in result.stdout
    # Each alert says where its sound is, and the demo where evidence went.
    clips = [line.split("its sound: ")[1].split(" ")[0] for line in result.stdout.splitlines()
             if "its sound: " in line]  # fmt: skip
    assert len(clips) == 2 and all(Path(clip).is_file() for clip in clips)
    assert f"each event's sound and picture: {tmp_path / 'work' / 'evidence'}" in result.stdout
    assert png.stat().st_size > 10_000
