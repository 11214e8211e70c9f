"""No event is lost: the broker stops while events occur, or the daemon is killed meanwhile.

The daemon replays a recording as fast as it can score it (a looping file source) with a
calibration whose threshold sits at the median of the recording's own scores and a
1-of-1 decider, so events start and end every few windows whatever the model; what is
under test is their delivery, not their detection (test_daemon.py covers that). A
subscriber with a persistent session on a broker that keeps sessions across restarts
sees every message published while it was away, so what it received is what the daemon
delivered.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.harness.daemon_process import (
    DaemonProcess,
    flapping_calibration,
    flapping_config,
    write_config,
)
from tests.harness.durable_subscriber import DurableRun

pytestmark = [pytest.mark.system, pytest.mark.slow]

RECORDING_SECONDS = 40.0


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A recording and a calibration that makes a 1-of-1 decider flip every few windows."""
    folder = tmp_path_factory.mktemp("flapping")
    return flapping_calibration(tiny_model, folder, RECORDING_SECONDS)


def daemon_config(flapping: dict[str, Path], folder: Path, port: int) -> Path:
    mqtt = {"port": port, "reconnect_max_seconds": 2}
    decision = {"k": 1, "n": 1, "m_close": 1}
    return write_config(folder, flapping_config(flapping, folder, mqtt, decision=decision))


def more_events_logged(daemon: DaemonProcess, than: int, by: int) -> bool:
    return len(daemon.logged_seqs()) >= than + by


def test_events_during_a_broker_outage_all_arrive_in_seq_order(flapping, tmp_path: Path):
    with DurableRun(tmp_path) as run:
        broker, subscriber = run.broker, run.subscriber
        daemon = run.daemon(daemon_config(flapping, tmp_path, broker.port), "log")
        subscriber.wait_for(lambda s: len(s.event_seqs()) >= 2, timeout_s=90)
        broker.stop()
        before = len(daemon.logged_seqs())
        daemon.wait_for_log(lambda d: more_events_logged(d, before, by=6))
        logged_during_outage = daemon.logged_seqs()[before:]
        broker.start()
        subscriber.wait_for(lambda s: set(logged_during_outage) <= set(s.event_seqs()), 60)
        assert daemon.terminate() == 0
        subscriber.wait_for(lambda s: [m.text for m in s.on("/available")][-1:] == ["stopped"])

    logged = daemon.logged_seqs()
    assert logged == list(range(1, len(logged) + 1))
    # Everything the daemon produced arrived, first arrivals in seq order, none missing;
    # the final flush delivered the events of the last windows before `stopped`.
    assert subscriber.event_seqs() == logged
    types = [e["type"] for e in subscriber.events()]
    assert types.count("start") >= 3 and types.count("end") >= 3


def test_events_survive_the_daemon_killed_while_the_broker_is_down(flapping, tmp_path: Path):
    with DurableRun(tmp_path) as run:
        broker, subscriber = run.broker, run.subscriber
        config = daemon_config(flapping, tmp_path, broker.port)
        first = run.daemon(config, "first.log")
        subscriber.wait_for(lambda s: len(s.event_seqs()) >= 2, timeout_s=90)
        broker.stop()
        before = len(first.logged_seqs())
        first.wait_for_log(lambda d: more_events_logged(d, before, by=6))
        first.kill()  # SIGKILL: no flush, no `stopped`
        unsent = first.logged_seqs()
        broker.start()
        second = run.daemon(config, "second.log")
        subscriber.wait_for(lambda s: set(unsent) <= set(s.event_seqs()), timeout_s=90)
        second.wait_for_log(lambda d: len(d.logged_seqs()) >= 3)
        assert second.terminate() == 0

    # seq goes on from where the killed daemon left it: no number is used twice.
    produced = unsent + second.logged_seqs()
    assert produced == list(range(1, len(produced) + 1))
    assert subscriber.event_seqs() == produced
    # The second daemon sent them from its outbox: at least the six of the outage.
    replayed = re.search(r"the outbox holds (\d+) event", second.log())
    assert replayed and int(replayed.group(1)) >= 6
