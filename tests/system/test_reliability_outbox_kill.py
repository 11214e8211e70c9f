"""The outbox file survives a process killed in the middle of writing it (SQLite WAL).

A child process appends events as fast as it can (each append is a committed, fsynced
transaction) and acks some of them, saying on stdout which appends returned and which
acks it is about to make; it is SIGKILLed at random moments, so most kills land inside a
write. After every kill the file must open, pass SQLite's integrity check, and hold every
event whose append had returned and that was not being acked, with its exact payload;
`seq` must go on above every seq handed out. Kills accumulate on one file, as restarts do
on a device. (A kill of the whole daemon with events in the outbox is
tests/system/test_daemon_outage.py::test_events_survive_the_daemon_killed_while_the_broker_is_down.)
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge_asd.mqtt.outbox import Outbox

pytestmark = [pytest.mark.system, pytest.mark.slow]

KILLS = 12
SEED = 20240917

HAMMER = textwrap.dedent(
    """
    import sys
    from edge_asd.mqtt.outbox import Outbox

    def payload(seq):
        return (f'{{"seq": {seq}, "pad": "' + "x" * (seq % 700) + '"}').encode()

    outbox = Outbox(sys.argv[1], max_events=1_000_000)
    print("ready", flush=True)
    while True:
        entry = outbox.append("edge-asd/dev-1/pump-1/event", payload)
        print(f"appended {entry.seq}", flush=True)
        if entry.seq % 3 == 0:  # delete some too: kills also land inside acks
            print(f"acking {entry.seq - 1}", flush=True)
            outbox.ack(entry.seq - 1)
    """
)


def payload(seq: int) -> bytes:
    return (f'{{"seq": {seq}, "pad": "' + "x" * (seq % 700) + '"}').encode()


def hammer_then_kill(path: Path, rng: random.Random) -> tuple[set[int], set[int]]:
    """Run the hammer, SIGKILL it after a random time; (appended seqs, seqs being acked)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HAMMER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(process.pid, signal.SIGKILL)
        lines = process.stdout.read().split()
    finally:
        process.kill()
        process.wait()
    words = iter(lines)
    appended, acking = set(), set()
    for word in words:
        number = next(words, None)
        if number is None or not number.isdigit():
            break  # the last line was cut by the kill
        (appended if word == "appended" else acking).add(int(number))
    return appended, acking


def test_the_outbox_survives_kills_in_the_middle_of_writes(tmp_path: Path):
    path = tmp_path / "outbox.sqlite"
    rng = random.Random(SEED)
    appended_ever: set[int] = set()
    acked_ever: set[int] = set()
    for _ in range(KILLS):
        appended, acking = hammer_then_kill(path, rng)
        assert appended, "the hammer appended nothing before it was killed"
        appended_ever |= appended
        acked_ever |= acking

        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        outbox = Outbox(path, max_events=1_000_000)
        stored = {entry.seq: entry for entry in outbox.pending(limit=10**6)}
        must_be_there = appended_ever - acked_ever
        missing = sorted(must_be_there - stored.keys())
        assert not missing, f"acknowledged appends lost: {missing[:10]}"
        for seq, entry in stored.items():
            assert entry.payload == payload(seq) and entry.topic.endswith("/pump-1/event")
        assert outbox.next_seq > max(appended_ever), "a seq would be handed out twice"
        assert outbox.health().error is None
        outbox.close()
    # Many writes per run: the kills landed among them, not before the first.
    assert len(appended_ever) >= 10 * KILLS
    print(f"{KILLS} kills, {len(appended_ever)} appends, {len(acked_ever)} acks: nothing lost")
