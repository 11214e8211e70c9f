"""Maintenance mode: quiet hours in a time zone, the mode set over MQTT, what changes end."""

from __future__ import annotations

import json
import logging
import stat
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from edge_asd.config.schema import QuietSlot
from edge_asd.daemon.maintenance import MaintenanceGate, MaintenanceModes, QuietHours
from edge_asd.decider import START, UNKNOWN, Decider

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, zone: ZoneInfo = BERLIN) -> float:
    """Unix seconds of a local wall-clock time `YYYY-MM-DD HH:MM` in `zone`."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone).timestamp()


def hours(days, start, end, zone=BERLIN) -> QuietHours:
    return QuietHours([QuietSlot(days=days, start=start, end=end)], zone)


def test_a_weekly_slot_covers_its_local_hours_on_its_days_only():
    monday_service = hours(["mon"], "06:00", "08:00")
    # 2026-11-30 is a Monday.
    assert monday_service.covers(at("2026-11-30 06:00"))
    assert monday_service.covers(at("2026-11-30 07:59"))
    assert not monday_service.covers(at("2026-11-30 08:00"))  # the end is not in the slot
    assert not monday_service.covers(at("2026-11-30 05:59"))
    assert not monday_service.covers(at("2026-12-01 07:00"))  # Tuesday


def test_the_slot_is_in_the_configured_time_zone_not_utc():
    monday_service = hours(["mon"], "06:00", "08:00")
    # 06:30 in Berlin (winter, UTC+1) is 05:30 UTC; 06:30 UTC is 07:30 in Berlin.
    assert monday_service.covers(at("2026-11-30 05:30", ZoneInfo("UTC")))
    assert not monday_service.covers(at("2026-11-30 07:30", ZoneInfo("UTC")))
    new_york = hours(["mon"], "06:00", "08:00", ZoneInfo("America/New_York"))
    assert not new_york.covers(at("2026-11-30 06:30"))  # Berlin's morning is NY's night


def test_a_slot_over_midnight_ends_the_next_day():
    friday_night = hours(["fri"], "22:00", "06:00")
    # 2026-12-04 is a Friday.
    assert friday_night.covers(at("2026-12-04 23:30"))
    assert friday_night.covers(at("2026-12-05 05:59"))  # Saturday morning, Friday's slot
    assert not friday_night.covers(at("2026-12-05 06:00"))
    assert not friday_night.covers(at("2026-12-04 05:00"))  # Friday morning: Thursday's
    assert not friday_night.covers(at("2026-12-05 23:00"))  # Saturday night: not its day
    sunday_night = hours(["sun"], "22:00", "02:00")
    assert sunday_night.covers(at("2026-12-07 01:00"))  # Monday 01:00 (the week wraps)


def test_start_equal_to_end_is_a_whole_day():
    whole_saturday = hours(["sat"], "00:00", "00:00")
    assert whole_saturday.covers(at("2026-12-05 00:00"))
    assert whole_saturday.covers(at("2026-12-05 23:59"))
    assert not whole_saturday.covers(at("2026-12-06 00:00"))


def test_local_time_decides_across_dst_changes():
    slot = hours(["sun"], "01:00", "04:00")
    # 2026-03-29: Berlin springs forward 02:00 -> 03:00, the slot lasts 2 hours of real time.
    start, end = at("2026-03-29 01:00"), at("2026-03-29 04:00")
    assert end - start == 2 * 3600
    assert slot.covers(start) and slot.covers(end - 60) and not slot.covers(end)
    # 2026-10-25: it falls back 03:00 -> 02:00, the same slot lasts 4 hours of real time.
    start, end = at("2026-10-25 01:00"), at("2026-10-25 04:00")
    assert end - start == 4 * 3600
    assert all(slot.covers(t) for t in range(int(start), int(end), 600))
    assert not slot.covers(end)


def test_the_mqtt_mode_survives_a_restart_in_a_private_file(tmp_path):
    path = tmp_path / "outbox.sqlite.maintenance.json"
    modes = MaintenanceModes(path, ["pump-1", "fan-2"])
    assert modes.command("pump-1", b"on")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = MaintenanceModes(path, ["pump-1", "fan-2"])
    assert again.is_on("pump-1") and not again.is_on("fan-2")
    assert again.command("pump-1", b"off\n")  # a trailing newline (mosquitto_pub -l) is fine
    assert not MaintenanceModes(path, ["pump-1", "fan-2"]).is_on("pump-1")


def test_unknown_commands_and_machines_are_refused_and_logged(tmp_path, caplog):
    modes = MaintenanceModes(tmp_path / "m.json", ["pump-1"])
    with caplog.at_level(logging.WARNING):
        assert not modes.command("pump-1", b"ON please")
        assert not modes.command("boiler", b"on")
    assert not modes.is_on("pump-1")
    assert "maintenance command refused: machine 'pump-1', payload 'ON please'" in caplog.text
    assert not (tmp_path / "m.json").exists()  # nothing was changed


def test_an_unreadable_modes_file_starts_with_none_on(tmp_path, caplog):
    path = tmp_path / "m.json"
    path.write_text("{not json")
    assert not MaintenanceModes(path, ["pump-1"]).is_on("pump-1")
    assert "cannot read the maintenance modes" in caplog.text
    path.write_text(json.dumps({"pump-1": True, "gone": True}))
    assert MaintenanceModes(path, ["pump-1"]).is_on("pump-1")


def test_entering_maintenance_ends_the_event_and_leaving_needs_k_fresh_windows(tmp_path):
    modes = MaintenanceModes(tmp_path / "m.json", ["pump-1"])
    gate = MaintenanceGate(modes, {"pump-1": QuietHours([], BERLIN)})
    decider = Decider(0.5, k=2, n=3, m_close=5)
    assert gate.check("pump-1", decider, 0.0) == (False, [])
    decider.feed(0.9, 0.0)
    decider.feed(0.9, 1.0)  # an event is open
    modes.command("pump-1", b"on")
    quiet, ends = gate.check("pump-1", decider, 2.0)
    assert quiet and [(e.type, e.reason, e.ended_at) for e in ends] == [("end", "maintenance", 2.0)]
    assert gate.check("pump-1", decider, 3.0) == (True, [])  # once, not every window
    decider.feed(0.9, 3.5)  # (the daemon does not feed it in maintenance; this is stale)
    modes.command("pump-1", b"off")
    assert gate.check("pump-1", decider, 4.0) == (False, [])
    assert decider.state == UNKNOWN
    assert decider.feed(0.9, 5.0) == []  # one fresh window above is not k=2
    assert [e.type for e in decider.feed(0.9, 6.0)] == [START]


@pytest.mark.parametrize("value", ["Mars/Olympus", "../../etc/passwd"])
def test_an_unknown_time_zone_is_refused_naming_it(value):
    from pydantic import ValidationError

    from edge_asd.config.schema import MaintenanceConfig

    with pytest.raises(ValidationError, match=f"unknown IANA time zone '{value}'"):
        MaintenanceConfig(time_zone=value)
