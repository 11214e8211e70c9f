"""Maintenance mode over MQTT and by quiet hours, with the daemon as a process.

A looping file source replays a recording as fast as it is scored, with a calibration
whose threshold is the median of the recording's own scores and a 2-of-2 decider: events
start every few windows unless the machine is in maintenance.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.publish
import pytest

from tests.harness.daemon_process import (
    DaemonProcess,
    flapping_calibration,
    flapping_config,
    write_config,
)
from tests.harness.durable_subscriber import DurableRun, DurableSubscriber

pytestmark = [pytest.mark.system, pytest.mark.slow]

COMMAND_TOPIC = "edge-asd/dev-1/pump-1/maintenance/set"
QUIET_SECONDS = 4.0  # without maintenance several events start in this time


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("maintenance"))


def daemon_config(flapping, folder: Path, port: int, maintenance: dict | None = None) -> Path:
    mqtt = {"port": port, "reconnect_max_seconds": 2}
    sections = {"metrics": {"stats_interval_seconds": 1}}
    if maintenance:
        sections["maintenance"] = maintenance
    decision = {"k": 2, "n": 2, "m_close": 1}
    return write_config(
        folder, flapping_config(flapping, folder, mqtt, decision=decision, **sections)
    )


def last_state(subscriber: DurableSubscriber) -> str | None:
    states = [m.text for m in subscriber.on("/pump-1/state")]
    return states[-1] if states else None


def starts_after(subscriber: DurableSubscriber, index: int) -> list[dict]:
    return [e for e in subscriber.events()[index:] if e["type"] == "start"]


def pump_stats(subscriber: DurableSubscriber) -> dict:
    return json.loads(subscriber.on("/stats")[-1].payload)["machines"]["pump-1"]


def command(port: int, payload: str) -> float:
    paho.mqtt.publish.single(COMMAND_TOPIC, payload, qos=1, hostname="127.0.0.1", port=port)
    return time.time()


def online(subscriber: DurableSubscriber, count: int = 1):
    return lambda s: [m.text for m in s.on("/available")].count("online") >= count


def assert_quiet(subscriber: DurableSubscriber, daemon: DaemonProcess) -> None:
    """No event starts for QUIET_SECONDS, the state stays maintenance, windows are scored."""
    events_before = len(subscriber.events())
    stats_before = len(subscriber.on("/stats"))  # a new one: this daemon's, not the last's
    subscriber.wait_for(lambda s: len(s.on("/stats")) > stats_before, timeout_s=10)
    scored_before = pump_stats(subscriber)["windows_scored"]
    time.sleep(QUIET_SECONDS)
    assert starts_after(subscriber, events_before) == [], daemon.log()[-2000:]
    assert last_state(subscriber) == "maintenance"
    stats = pump_stats(subscriber)
    assert stats["state"] == "maintenance"
    assert stats["windows_scored"] > scored_before  # still scored and counted


def test_maintenance_over_mqtt_silences_a_machine_across_a_restart_until_off(
    flapping, tmp_path: Path
):
    with DurableRun(tmp_path) as run:
        broker, subscriber = run.broker, run.subscriber
        config = daemon_config(flapping, tmp_path, broker.port)
        first = run.daemon(config, "first.log")
        subscriber.wait_for(lambda s: starts_after(s, 0), timeout_s=90)  # it does alarm
        command(broker.port, "on")
        subscriber.wait_for(lambda s: last_state(s) == "maintenance", timeout_s=10)
        assert_quiet(subscriber, first)
        command(broker.port, "bogus")  # refused: nothing changes
        assert first.terminate() == 0

        second = run.daemon(config, "second.log")
        subscriber.wait_for(online(subscriber, 2), timeout_s=60)
        subscriber.wait_for(lambda s: last_state(s) == "maintenance", timeout_s=30)
        assert_quiet(subscriber, second)

        events_before = len(subscriber.events())
        off_at = command(broker.port, "off")
        subscriber.wait_for(lambda s: starts_after(s, events_before), timeout_s=60)
        assert second.terminate() == 0

    assert "maintenance command refused: machine 'pump-1', payload 'bogus'" in first.log()
    assert "maintenance on (set before the restart): pump-1" in second.log()
    # The first event after `off` was confirmed by windows scored after it, none older.
    start = starts_after(subscriber, events_before)[0]
    started_at = datetime.fromisoformat(start["started_at"].replace("Z", "+00:00"))
    assert started_at.timestamp() >= off_at - 1.0
    # An event open when maintenance began was ended by it, or by its own windows before.
    reasons = {e["reason"] for e in subscriber.events() if e["type"] == "end"}
    assert reasons <= {"normal", "maintenance", "stopped"}


def test_quiet_hours_covering_now_in_the_configured_time_zone_silence_a_machine(
    flapping, tmp_path: Path
):
    zone = "America/New_York"
    now = datetime.now(ZoneInfo(zone))
    slot = {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    maintenance = {"time_zone": zone, "quiet_hours": [slot]}
    with DurableRun(tmp_path) as run:
        subscriber = run.subscriber
        daemon = run.daemon(daemon_config(flapping, tmp_path, run.broker.port, maintenance), "log")
        subscriber.wait_for(lambda s: last_state(s) == "maintenance", timeout_s=90)
        assert_quiet(subscriber, daemon)
        assert daemon.terminate() == 0
    assert "pump-1: in maintenance (quiet hours)" in daemon.log()
    assert [e for e in subscriber.events() if e["type"] == "start"] == []
