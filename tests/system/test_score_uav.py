"""Real flights: calibrated on the train flights, no alarm on a normal test flight, an alarm
on every broken-propeller flight (../shared/data/uav_propeller, joined back per flight).

Runs benchmarks/uav_propeller.py, which calls `edge-asd calibrate` (its defaults: the
detector chosen by synthetic faults, its threshold, a 3-of-5 decider) on the train flights
and scores each joined test flight window by window at a 1 s hop, as the daemon would hear
it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "uav_propeller.py"

pytestmark = [pytest.mark.system, pytest.mark.data, pytest.mark.slow]


@pytest.fixture(scope="module")
def uav_model(exported_model: Path) -> Path:
    """The network: EDGE_ASD_UAV_MODEL when set (a model trained on the train flights),
    else the random-weight export: the detector calibrated on the train flights only must
    already tell the flights apart."""
    given = os.environ.get("EDGE_ASD_UAV_MODEL")
    return Path(given) if given else exported_model


def test_normal_flights_stay_quiet_and_broken_ones_raise_an_event(
    shared_data: Path, uav_model: Path, tmp_path: Path
):
    if not (shared_data / "uav_propeller" / "train").is_dir():
        pytest.skip(f"uav_propeller is not in {shared_data}")
    argv = ["--model", str(uav_model), "--data", str(shared_data), "--work", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *argv, "--threads", "2", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )
    print(result.stdout)  # the per-flight table, for the log of a failing run
    flights = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    normal = [f for f in flights if f["broken"] == 0]
    broken = [f for f in flights if f["broken"] > 0]
    assert len(normal) == 4 and len(broken) == 6, result.stderr
    for flight in normal:
        assert flight["events"] == 0, f"false alarm on normal flight {flight}"
    for flight in broken:
        assert flight["events"] >= 1, f"no alarm on broken flight {flight}"
        assert flight["windows_above"] >= 3  # k of the decider
    assert result.returncode == 0, result.stderr
