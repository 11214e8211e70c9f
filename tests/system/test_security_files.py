"""Files that name machines, faults and thresholds are readable by their owner only (0o600),
even for a service started with a permissive umask, and an outbox left with a looser mode
by an older version is tightened when the daemon opens it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge_asd.mosquitto import free_port
from tests.harness.daemon_process import DaemonProcess, flapping_calibration
from tests.system.test_daemon_outage import daemon_config

pytestmark = [pytest.mark.system, pytest.mark.slow]

UMASK_000 = ("sh", "-c", 'umask 000 && exec "$0" "$@"')


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


def test_the_daemons_outbox_and_its_wal_are_owner_only_whatever_the_umask(flapping, tmp_path: Path):
    outbox = tmp_path / "outbox.sqlite"
    outbox.touch()
    outbox.chmod(0o644)  # as an older version (or a careless admin) may have left it
    config = daemon_config(flapping, tmp_path, free_port())  # no broker: events stay queued
    daemon = DaemonProcess(config, tmp_path / "daemon.log", wrapper=UMASK_000)
    try:
        daemon.wait_for_log(lambda d: len(d.logged_seqs()) >= 3, timeout_s=120)
        files = {path.name: mode(path) for path in tmp_path.glob("outbox.sqlite*")}
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
    assert set(files) == {"outbox.sqlite", "outbox.sqlite-wal", "outbox.sqlite-shm"}, files
    assert all(m == 0o600 for m in files.values()), {n: oct(m) for n, m in files.items()}
    assert mode(outbox) == 0o600


def test_a_calibration_and_its_bank_and_report_are_owner_only_whatever_the_umask(
    tiny_model: Path, tmp_path: Path
):
    from edge_asd.synth import render_clip, write_wav

    inputs = [tmp_path / f"normal_{seed}.wav" for seed in (1, 2)]
    for seed, path in enumerate(inputs, start=1):
        write_wav(path, render_clip("fan", 0, "source", 12.0, seed=seed))
    out = tmp_path / "cal" / "calibration.yaml"
    out.parent.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "edge_asd.cli", "calibrate", "--model", str(tiny_model),
         "--machine", "pump-1", "--quantile", "0.9", "--input", *map(str, inputs),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = sorted(out.parent.iterdir())
    assert [p.name for p in written] == ["calibration.npz", "calibration.png", "calibration.yaml"]
    assert {p.name: oct(mode(p)) for p in written} == {p.name: "0o600" for p in written}
