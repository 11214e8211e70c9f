"""The system clock jumps (NTP at boot, a clock set back by hand) while the daemon runs.

The wall clock is replaced by one that jumps (`time.time` in this process), the daemon
runs in this process, and its clock-synchronisation check is switched from "not synced"
to "synced" at the moment of the jump, as NTP does at boot. What must hold:

- windows are scheduled by sample counts and the monotonic clock: a jump neither skips
  nor repeats a window, and consecutive windows end exactly one hop apart;
- window timestamps follow the system clock (so that events are stamped correctly once
  NTP has answered), and events say whether the clock was synchronised (`clock_synced`);
- `seq` rises by one per event whatever the clock does, also across a restart;
- an event never ends before it starts, even when the clock was set back in between.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_asd.capture import Machine, SyntheticSource, Windower
from edge_asd.config import load_config
from edge_asd.daemon import Daemon
from edge_asd.decider import Decider
from edge_asd.mqtt.outbox import Outbox
from edge_asd.synth import MachineSynth, section_profile
from tests.harness.broker import Broker, Collector
from tests.harness.daemon_process import flapping_calibration
from tests.system.test_daemon_outage import daemon_config

pytestmark = pytest.mark.system

DAY_S = 86400.0
HOUR_S = 3600.0
HOP_S = 0.25


class JumpingClock:
    """`time.time` plus an offset that a test changes: the system clock, set by NTP."""

    def __init__(self, real=time.time, offset_s: float = 0.0) -> None:
        self.real = real
        self.offset_s = offset_s

    def __call__(self) -> float:
        return self.real() + self.offset_s


def test_clock_jumps_neither_skip_nor_repeat_windows_and_stamps_follow_the_clock(monkeypatch):
    clock = JumpingClock()
    monkeypatch.setattr(time, "time", clock)
    synth = MachineSynth(section_profile("fan", 0), seed=1)
    source = SyntheticSource([synth], block_seconds=0.02)  # REALTIME: paced by the clock
    windower = Windower({"mic": source}, [Machine("m", "mic")], window_samples=4000,
                        hop_seconds=HOP_S)  # fmt: skip
    batches, offsets = [], []
    jumps = {5: -HOUR_S, 10: +DAY_S}  # after the 5th window: set back an hour; 10th: NTP
    with source:
        while len(batches) < 16:
            batch = windower.next_batch(timeout=2.0)
            assert batch is not None, "no window for 2 s"
            batches.append(batch)
            offsets.append(clock.offset_s)
            clock.offset_s += jumps.get(len(batches), 0.0)
    ends = np.array([int(b.end_frames[0]) for b in batches])
    assert np.all(np.diff(ends) == windower.hop_samples), ends  # none skipped, none repeated
    assert windower.stats.skipped == windower.stats.lost == 0
    stamps = np.array([float(b.end_times[0]) for b in batches]) - np.array(offsets)
    assert np.all(np.abs(np.diff(stamps) - HOP_S) < 0.15), np.diff(stamps)  # a hop apart
    assert abs(stamps[-1] - clock.real()) < 1.0


def test_seq_keeps_rising_across_a_restart_with_the_clock_set_back(tmp_path: Path, monkeypatch):
    clock = JumpingClock()
    monkeypatch.setattr(time, "time", clock)
    outbox = Outbox(tmp_path / "o.sqlite")
    first = [outbox.append("t", lambda seq: b"{}").seq for _ in range(3)]
    outbox.close()
    clock.offset_s = -30 * DAY_S  # the next boot comes up a month in the past
    reopened = Outbox(tmp_path / "o.sqlite")
    then = [reopened.append("t", lambda seq: b"{}").seq for _ in range(3)]
    assert first + then == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in reopened.pending()] == [1, 2, 3, 4, 5, 6]


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


@pytest.mark.slow
def test_events_say_clock_synced_keep_seq_and_never_end_before_they_start(
    flapping, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path, monkeypatch
):
    clock = JumpingClock(offset_s=-30 * DAY_S)  # booted with a stale clock, not synced yet
    synced = {"now": False}
    monkeypatch.setattr(time, "time", clock)
    monkeypatch.setattr("edge_asd.daemon.loop.clock_synced", lambda: synced["now"])
    config = load_config(daemon_config(flapping, tmp_path, mqtt_broker.port))
    daemon = Daemon(config)

    def events() -> list[dict]:
        return [
            json.loads(m.payload) for m in mqtt_collector.messages if m.topic.endswith("/event")
        ]

    def ntp_then_set_back() -> None:
        try:
            mqtt_collector.wait_for(lambda ms: len(events()) >= 4, timeout_s=120)
            clock.offset_s, synced["now"] = 0.0, True  # NTP answers: a month forward
            mqtt_collector.wait_for(lambda ms: len(events()) >= 10, timeout_s=120)
            set_back.set()  # at the next start, someone sets the clock back an hour
            mqtt_collector.wait_for(lambda ms: len(events()) >= 16, timeout_s=120)
        finally:
            daemon.request_stop()

    set_back = threading.Event()
    feed = Decider.feed

    def feed_then_maybe_set_back(self, score, timestamp, rms=None):
        events = feed(self, score, timestamp, rms)
        if set_back.is_set() and any(event.type == "start" for event in events):
            set_back.clear()
            clock.offset_s = -HOUR_S  # the event just opened ends on the set-back clock
        return events

    monkeypatch.setattr(Decider, "feed", feed_then_maybe_set_back)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    driver = threading.Thread(target=ntp_then_set_back, daemon=True)
    driver.start()
    try:
        assert daemon.run() == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        driver.join(timeout=5)
    received = events()
    assert len(received) >= 16
    assert [e["seq"] for e in received] == list(range(1, len(received) + 1))
    flags = [e["clock_synced"] for e in received]
    assert flags[0] is False and flags[-1] is True
    assert flags == sorted(flags)  # unsynced until NTP answered, synced from then on
    month_ago = time.strftime("%Y-%m-%d", time.gmtime(clock.real() - 30 * DAY_S))
    assert received[0]["started_at"].startswith(month_ago)  # stamped by the stale clock
    starts = [e["started_at"] for e in received if e["type"] == "start"]
    assert any(b < a for a, b in itertools.pairwise(starts)), "the clock was never set back"
    for event in received:
        if event["type"] == "end":
            assert event["ended_at"] >= event["started_at"], event  # ISO UTC sorts as time
