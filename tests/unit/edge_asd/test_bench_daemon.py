"""The daemon rows of `edge-asd bench`: real `edge-asd run` processes and a real mosquitto,
measured from outside (scores over MQTT, memory and CPU time from /proc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_asd.bench.report import daemon_row
from edge_asd.bench.suite import Options, run_daemons

pytestmark = [pytest.mark.system, pytest.mark.slow]


def test_daemon_runs_are_measured_from_outside(tiny_model: Path, tmp_path: Path):
    options = Options(
        plain_daemon=False, fast_seconds=30.0, realtime_channels=2, realtime_seconds=6.0
    )
    results = run_daemons(tiny_model, options, tmp_path, progress=lambda message: None)
    by_label = {result.label: result for result in results}
    assert list(by_label) == [
        "daemon, split: 1 channel, file, fast",
        "daemon, split: 2 channels, real time",
    ]
    for result in results:
        assert result.exit_code == 0, result.log_tail
        assert result.peak_rss_mb > 50  # python, numpy and onnxruntime at least
        assert 0 < result.first_score_seconds < 60
    fast = by_label["daemon, split: 1 channel, file, fast"]
    assert fast.windows == 21  # (30 s - 10 s) / 1 s + 1: every window of the file
    assert fast.windows_per_second > 1
    live = by_label["daemon, split: 2 channels, real time"]
    assert live.first_score_seconds > 9  # a real-time source needs a whole window first
    assert 1 <= live.windows_per_second <= 3  # two machines, one window each per second
    assert 0 < live.cpu_share < 1 and live.steady_rss_mb > 50
    assert daemon_row(live)[0] == live.label
