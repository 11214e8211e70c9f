"""The durable outbox: events survive restarts, seq never repeats, the file stays bounded."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from edge_asd.mqtt.outbox import Outbox


def payload(seq: int) -> bytes:
    return f'{{"seq": {seq}}}'.encode()


def test_outbox_survives_restart_with_events_in_order(tmp_path: Path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    for machine in ("pump", "fan", "pump"):
        outbox.append(f"edge-asd/dev/{machine}/event", payload)
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.sqlite")
    pending = reopened.pending()
    assert [e.seq for e in pending] == [1, 2, 3]
    assert [e.topic for e in pending][1] == "edge-asd/dev/fan/event"
    assert pending[2].payload == b'{"seq": 3}'
    assert all(e.durable for e in pending)


def test_seq_rises_by_one_across_restarts_even_when_everything_was_acked(tmp_path: Path):
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    seqs = [outbox.append("t", payload).seq for _ in range(3)]
    for seq in seqs:
        outbox.ack(seq)
    outbox.close()

    reopened = Outbox(path)
    assert reopened.pending() == []
    assert reopened.append("t", payload).seq == 4
    assert reopened.health().depth == 1


def test_ack_removes_that_event_only(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.sqlite")
    for _ in range(4):
        outbox.append("t", payload)
    outbox.ack(2)
    outbox.ack(2)  # a second PUBACK of the same event is harmless
    outbox.ack(99)  # so is one for an event dropped long ago
    assert [e.seq for e in outbox.pending()] == [1, 3, 4]


def test_pending_pages_from_a_seq(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.sqlite")
    for _ in range(10):
        outbox.append("t", payload)
    assert [e.seq for e in outbox.pending(after_seq=4, limit=3)] == [5, 6, 7]


def test_full_outbox_drops_the_oldest_and_counts_them_across_restarts(tmp_path: Path):
    path = tmp_path / "o.sqlite"
    outbox = Outbox(path, max_events=10)
    for _ in range(15):
        outbox.append("t", payload)
    assert [e.seq for e in outbox.pending()] == list(range(6, 16))
    assert outbox.health().dropped == 5
    outbox.close()

    reopened = Outbox(path, max_events=10)
    reopened.append("t", payload)
    health = reopened.health()
    assert (health.depth, health.dropped) == (10, 6)
    assert reopened.pending()[0].seq == 7


def test_a_full_outbox_says_so_once_then_counts_the_drops(tmp_path: Path, caplog):
    # Full while the broker is away: every new event drops one, for hours on end.
    outbox = Outbox(tmp_path / "o.sqlite", max_events=10)
    with caplog.at_level(logging.WARNING, logger="edge_asd.mqtt.outbox"):
        for _ in range(200):
            outbox.append("t", payload)
        outbox.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "edge_asd.mqtt.outbox"]

    assert lines == [
        "outbox full: 11 events wait for the broker (max_events 10): dropped the 1 oldest, "
        "1 in all",
        "outbox full 190 times in all, 189 of them since the last line (latest: 11 events "
        "wait for the broker (max_events 10): dropped the 1 oldest, 190 in all)",
    ]


def test_outbox_files_are_readable_by_the_owner_only(tmp_path: Path):
    path = tmp_path / "o.sqlite"
    outbox = Outbox(path)
    outbox.append("t", payload)
    for name in ("o.sqlite", "o.sqlite-wal"):
        mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"


def test_outbox_at_an_unusable_path_still_numbers_events_and_reports_why(tmp_path: Path):
    path = tmp_path / "is-a-directory"
    path.mkdir()
    outbox = Outbox(path)
    entries = [outbox.append("t", payload) for _ in range(3)]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert not any(e.durable for e in entries)
    assert [e.seq for e in outbox.pending()] == [1, 2, 3]  # kept in memory for the publisher
    outbox.ack(2)
    health = outbox.health()
    assert health.depth == 2
    assert health.write_failures == 3
    assert "is-a-directory" in health.error


DISK_FULL_SCRIPT = textwrap.dedent(
    """
    import logging, os, resource, signal, sys
    from edge_asd.mqtt.outbox import Outbox

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    path = sys.argv[1]
    outbox = Outbox(path)
    outbox.append("t", lambda seq: b"x" * 100)
    size = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))  # the disk is now full
    full = [outbox.append("t", lambda seq: b"y" * 50000) for _ in range(3)]
    health = outbox.health()
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
    after = outbox.append("t", lambda seq: b"z")
    print("SEQS", [e.seq for e in full], after.seq)
    print("DURABLE", [e.durable for e in full], after.durable)
    print("HEALTH", health.write_failures, health.error is not None, health.depth)
    outbox.close()
    print("REOPENED", [e.seq for e in Outbox(path).pending()])
    """
)


def test_disk_full_keeps_events_flowing_logs_once_and_recovers(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-c", DISK_FULL_SCRIPT, str(tmp_path / "o.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "SEQS [2, 3, 4] 5" in out
    assert "DURABLE [False, False, False] True" in out
    assert "HEALTH 3 True 4" in out
    # Once the disk had room again, the events it had refused were written after all.
    assert "REOPENED [1, 2, 3, 4, 5]" in out
    assert result.stderr.count("outbox cannot write") == 1
    assert "outbox writes again" in result.stderr


def test_appends_and_acks_from_two_threads_lose_nothing(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.sqlite")
    appended: list[int] = []

    def producer() -> None:
        for _ in range(200):
            appended.append(outbox.append("t", payload).seq)

    thread = threading.Thread(target=producer)
    thread.start()
    acked = 0
    while thread.is_alive() or acked < len(appended):
        for entry in outbox.pending(limit=50):
            outbox.ack(entry.seq)
            acked += 1
    thread.join()
    assert appended == list(range(1, 201))
    assert acked == 200 and outbox.pending() == []
    health = outbox.health()  # every event was on disk, whichever thread wrote it
    assert (health.write_failures, health.error) == (0, None)


@pytest.mark.parametrize("max_events", [0, -5])
def test_an_outbox_that_could_hold_no_event_is_refused(tmp_path: Path, max_events: int):
    with pytest.raises(ValueError, match=r"^max_events must be >= 1$"):
        Outbox(tmp_path / "o.sqlite", max_events=max_events)


def test_an_outbox_of_one_event_keeps_the_newest(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.sqlite", max_events=1)
    for _ in range(3):
        outbox.append("t", payload)
    assert [e.seq for e in outbox.pending()] == [3]
    assert outbox.health().dropped == 2


def test_events_kept_in_memory_while_the_disk_fails_reach_it_when_it_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "o.sqlite"
    path.mkdir()  # a path sqlite cannot open: the disk "fails" until the folder goes
    outbox = Outbox(path, max_events=2)
    with caplog.at_level(logging.WARNING, logger="edge_asd.mqtt.outbox"):
        failed = [outbox.append(f"t/{i}", payload) for i in range(4)]
        # in memory too the outbox stays bounded: the two oldest are dropped and counted
        assert [e.seq for e in outbox.pending(after_seq=3)] == [4]
        health = outbox.health()
        assert (health.depth, health.dropped, health.write_failures) == (2, 2, 4)
        assert health.error.startswith(f"{path}: ")
        path.rmdir()
        recovered = outbox.append("t/4", payload)
    assert [e.durable for e in failed] == [False] * 4 and recovered.durable
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"outbox cannot write ({path}: ")
    assert f"outbox writes again: {path}" in caplog.text
    health = outbox.health()
    assert (health.error, health.dropped) == (None, 3)  # on disk too it holds two
    outbox.close()
    on_disk = Outbox(path, max_events=2).pending()
    assert [(e.seq, e.topic, e.payload) for e in on_disk] == [
        (seq, f"t/{seq - 1}", payload(seq)) for seq in (4, 5)
    ]


def test_the_disk_error_in_the_stats_names_the_file_once_and_the_cause(tmp_path: Path):
    # regression: each append while the file could not be opened put the path in front
    # of the error again ("o.sqlite: o.sqlite: unable to open database file")
    path = tmp_path / "o.sqlite"
    path.mkdir()
    outbox = Outbox(path)
    for _ in range(3):
        outbox.append("t", payload)
    assert outbox.health().error == f"{path}: unable to open database file"
