"""Events always end: an event open when the daemon stops, or when it is killed, gets its end.

A looping file source replays a recording as fast as it is scored, with a calibration
whose threshold is the median of the recording's own scores, a 1-of-1 decider and
m_close 600: the first window above opens an event that no run of this test lasts long
enough to close, so an event is open whenever the daemon stops or dies.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_asd.evidence.layout import EVENT_JSON
from tests.harness.daemon_process import (
    flapping_calibration,
    flapping_config,
    write_config,
)
from tests.harness.durable_subscriber import DurableRun, DurableSubscriber

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("ends"))


def daemon_config(flapping: dict[str, Path], folder: Path, port: int) -> Path:
    mqtt = {"port": port, "reconnect_max_seconds": 2}
    decision = {"k": 1, "n": 1, "m_close": 600}
    return write_config(folder, flapping_config(flapping, folder, mqtt, decision=decision))


def started(subscriber: DurableSubscriber) -> list[dict]:
    return [e for e in subscriber.events() if e["type"] == "start"]


def test_an_event_open_at_sigterm_ends_with_reason_stopped(flapping, tmp_path: Path):
    with DurableRun(tmp_path) as run:
        daemon = run.daemon(daemon_config(flapping, tmp_path, run.broker.port), "log")
        run.subscriber.wait_for(lambda s: started(s), timeout_s=90)
        assert daemon.terminate() == 0
        run.subscriber.wait_for(lambda s: [m.text for m in s.on("/available")][-1:] == ["stopped"])
    subscriber = run.subscriber

    (start,) = started(subscriber)
    ends = [e for e in subscriber.events() if e["type"] == "end"]
    assert [(e["event_id"], e["reason"]) for e in ends] == [(start["event_id"], "stopped")]
    assert ends[0]["seq"] > start["seq"] and ends[0]["ended_at"] >= start["started_at"]


def test_an_event_open_at_sigkill_ends_with_reason_restart_before_anything_new(
    flapping, tmp_path: Path
):
    with DurableRun(tmp_path) as run:
        config = daemon_config(flapping, tmp_path, run.broker.port)
        first = run.daemon(config, "first.log")
        run.subscriber.wait_for(lambda s: started(s), timeout_s=90)
        first.kill()  # SIGKILL: no end, no `stopped`
        second = run.daemon(config, "second.log")
        run.subscriber.wait_for(lambda s: len(started(s)) >= 2, timeout_s=90)
        assert second.terminate() == 0
    subscriber = run.subscriber

    first_start, second_start = started(subscriber)[:2]
    by_seq = {e["seq"]: e for e in subscriber.events()}
    second_seqs = second.logged_seqs()
    restart_end = by_seq[second_seqs[0]]  # the restarted daemon's first event
    assert (restart_end["type"], restart_end["reason"]) == ("end", "restart")
    assert second_seqs[0] == max(first.logged_seqs()) + 1  # seq goes on, nothing between
    assert restart_end["event_id"] == first_start["event_id"]
    assert restart_end["started_at"] == first_start["started_at"]
    assert second_start["seq"] > restart_end["seq"]
    assert "left open by the daemon before this one" in second.log()
    # The event's evidence says it ended: its event.json was the start's, open forever.
    assert restart_end["clip"] == first_start["clip"] is not None
    event_json = Path(restart_end["clip"]).parent / EVENT_JSON
    assert json.loads(event_json.read_text()) == restart_end
