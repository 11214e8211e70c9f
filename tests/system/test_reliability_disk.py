"""The outbox's disk is full or read-only: events still go out live, the failure is logged
once and shown in `stats`.

`edge-asd run` runs in its own mount namespace (`unshare`) where the outbox's folder is a
real tmpfs: a small one that fills up after a few events, or a read-only one. (The outbox
alone, with a file-size limit standing in for a full disk and its recovery, is
tests/unit/edge_asd/mqtt/test_outbox.py::test_disk_full_keeps_events_flowing_logs_once_and_recovers.)
The set-up otherwise is tests/system/test_daemon_outage.py's: a recording replayed as
fast as it is scored, with a calibration that opens and closes events every few windows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness.broker import Broker, Collector
from tests.harness.daemon_process import DaemonProcess, flapping_calibration, write_config
from tests.system.test_daemon_outage import daemon_config

pytestmark = [pytest.mark.system, pytest.mark.slow]

BASE = "edge-asd/dev-1"
SMALL_DISK = "size=160k"  # the SQLite file, its shared memory and a few WAL frames
EVENTS_AFTER_FAILURE = 8


def tmpfs_wrapper(folder: Path, options: str) -> tuple[str, ...]:
    """A command prefix that runs its command with a tmpfs (`options`) mounted on `folder`,
    in a private mount namespace; skips the test where namespaces are not allowed."""
    unshare = shutil.which("unshare")
    script = 'mount -t tmpfs -o "$1" tmpfs "$0" && shift && exec "$@"'
    command = (unshare or "unshare", "-rm", "sh", "-c", script, str(folder), options)
    if unshare is None or subprocess.run([*command, "true"], capture_output=True).returncode:
        pytest.skip("needs unshare with user and mount namespaces (util-linux; not in CI)")
    return command


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


def run_on_a_bad_disk(
    flapping, broker: Broker, collector: Collector, tmp_path: Path, options: str
) -> tuple[DaemonProcess, list[int]]:
    """Run the daemon with the outbox on a tmpfs mounted with `options` until it has made
    EVENTS_AFTER_FAILURE events since the disk failed; returns it (stopped) and their seqs."""
    disk = tmp_path / "disk"
    disk.mkdir()
    config = yaml.safe_load(daemon_config(flapping, tmp_path, broker.port).read_text())
    config["outbox"]["path"] = str(disk / "o.sqlite")
    config["metrics"] = {"stats_interval_seconds": 1}
    config_path = write_config(tmp_path, config)
    wrapper = tmpfs_wrapper(disk, options)
    daemon = DaemonProcess(config_path, tmp_path / "daemon.log", wrapper=wrapper)
    try:
        daemon.wait_for_log(lambda d: "outbox cannot write" in d.log(), timeout_s=120)
        failed_at = len(daemon.logged_seqs())
        daemon.wait_for_log(
            lambda d: len(d.logged_seqs()) >= failed_at + EVENTS_AFTER_FAILURE, timeout_s=120
        )
        after = daemon.logged_seqs()[failed_at:]
        collector.wait_for(lambda ms: set(after) <= set(event_seqs(collector)), timeout_s=30)
        collector.wait_for(lambda ms: last_stats(collector).get("outbox_error"), timeout_s=10)
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()
    assert not (disk / "o.sqlite").exists()  # the tmpfs was the daemon's own
    return daemon, after


def event_seqs(collector: Collector) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in collector.on(f"{BASE}/pump-1/event")]


def last_stats(collector: Collector) -> dict:
    stats = collector.on(f"{BASE}/stats")
    return json.loads(stats[-1].payload) if stats else {}


def test_a_full_disk_keeps_events_going_out_live_logs_once_and_says_so_in_stats(
    flapping, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    daemon, after = run_on_a_bad_disk(flapping, mqtt_broker, mqtt_collector, tmp_path, SMALL_DISK)
    log = daemon.log()
    assert log.count("outbox cannot write") == 1, log[-3000:]
    assert "database or disk is full" in log
    assert len(daemon.logged_seqs()) > len(after)  # some went to disk before it filled
    stats = last_stats(mqtt_collector)
    assert "database or disk is full" in stats["outbox_error"]
    assert stats["outbox_write_failures"] >= EVENTS_AFTER_FAILURE
    # Every event, before and after the disk filled, reached the broker, in seq order.
    logged = daemon.logged_seqs()
    assert sorted(set(event_seqs(mqtt_collector))) == logged == list(range(1, len(logged) + 1))


def test_a_read_only_disk_keeps_events_going_out_live_logs_once_and_says_so_in_stats(
    flapping, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    daemon, after = run_on_a_bad_disk(
        flapping, mqtt_broker, mqtt_collector, tmp_path, f"ro,{SMALL_DISK}"
    )
    log = daemon.log()
    assert log.count("outbox cannot write") == 1, log[-3000:]
    assert "Read-only file system" in log
    stats = last_stats(mqtt_collector)
    assert "Read-only file system" in stats["outbox_error"]
    assert stats["outbox_write_failures"] >= len(after)  # every event: nothing reaches disk
    logged = daemon.logged_seqs()
    assert sorted(set(event_seqs(mqtt_collector))) == logged == list(range(1, len(logged) + 1))
