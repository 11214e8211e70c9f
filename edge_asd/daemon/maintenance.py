"""Maintenance mode: a machine being serviced is scored but raises no events.

A machine is in maintenance while an operator has set it over MQTT (`on` on
`{prefix}/{device_id}/{machine}/maintenance/set`, until `off`) or while one of its quiet
hours covers the window's time (`maintenance.quiet_hours` for every machine and the
machine's own `quiet_hours`, in `maintenance.time_zone`). Meanwhile its state topic says
`maintenance`, its windows are still scored and counted in the stats, and its decider is
not fed. Entering maintenance ends an open event (`reason: maintenance`); entering and
leaving it reset the decider's k-of-n history, so that windows from before cannot open an
event after it: the first event after maintenance needs k fresh windows above.

The mode set over MQTT survives a restart: it is kept in a small JSON file next to the
outbox (`<outbox>.maintenance.json`, mode 0600, replaced atomically).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge_asd.config.schema import Config, QuietSlot
from edge_asd.decider import END_MAINTENANCE, Decider, DecisionEvent
from edge_asd.files import FILE_MODE, write_atomic
from edge_asd.logs import RepeatedWarning
from edge_asd.mqtt.publisher import Publisher

log = logging.getLogger(__name__)

MAINTENANCE = "maintenance"  # the state topic's value while a machine is in maintenance
COMMANDS = {"on": True, "off": False}  # payloads of `{machine}/maintenance/set`
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order


class QuietHours:
    """Weekly slots in a time zone: `covers(unix_seconds)` says whether one covers it.

    A slot starts at `start` on each of its `days` (local wall-clock time) and ends at
    `end` the same day, or the next day when `end` is not after `start` (a night shift
    22:00-06:00; `start == end` is 24 hours). Around DST changes local time decides: a
    slot in the hour a spring-forward skips does not happen that day, one in the hour a
    fall-back repeats covers both.
    """

    def __init__(self, slots: list[QuietSlot], time_zone: ZoneInfo) -> None:
        self.slots = slots
        self.time_zone = time_zone

    def covers(self, unix_seconds: float) -> bool:
        local = datetime.fromtimestamp(unix_seconds, tz=self.time_zone)
        minute = local.hour * 60 + local.minute
        today, yesterday = WEEKDAYS[local.weekday()], WEEKDAYS[local.weekday() - 1]
        for slot in self.slots:
            start, end = _minutes(slot.start), _minutes(slot.end)
            if today in slot.days and start <= minute and (minute < end or end <= start):
                return True
            if yesterday in slot.days and end <= start and minute < end:
                return True  # the part after midnight of yesterday's slot
        return False


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


class MaintenanceModes:
    """The modes set over MQTT, per machine, kept in `path` across restarts; thread-safe.

    A file that cannot be read starts with no machine in maintenance (logged); one that
    cannot be written keeps the mode in memory (logged), so a command is never lost for
    the running daemon.
    """

    def __init__(self, path: Path, machines: list[str]) -> None:
        self.path = path
        self.machines = set(machines)
        self._lock = threading.Lock()
        self._on: set[str] = set()
        self._refused = RepeatedWarning(log, "maintenance command refused")
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            saved = json.loads(self.path.read_text())
            on = {name for name, value in saved.items() if value is True}
        except (OSError, ValueError, AttributeError) as exc:
            log.error("%s: cannot read the maintenance modes (%s); none is on", self.path, exc)
            return
        self._on = on & self.machines
        if self._on:
            log.warning("maintenance on (set before the restart): %s", ", ".join(sorted(self._on)))

    def is_on(self, machine: str) -> bool:
        with self._lock:
            return machine in self._on

    def command(self, machine: str, payload: bytes) -> bool:
        """Apply `on` or `off` for `machine`; False (and a warning) for anything else."""
        text = payload.decode("utf-8", errors="replace").strip()
        if machine not in self.machines or text not in COMMANDS:
            self._refused.occurred(
                f"machine {machine!r}, payload {text[:40]!r}: expected a configured machine "
                f"and one of {', '.join(COMMANDS)}"
            )
            return False
        with self._lock:
            if COMMANDS[text]:
                self._on.add(machine)
            else:
                self._on.discard(machine)
            self._save()
        log.warning("%s: maintenance %s (MQTT command)", machine, text)
        return True

    def _save(self) -> None:
        data = json.dumps({name: True for name in sorted(self._on)})
        try:
            write_atomic(self.path, data.encode(), mode=FILE_MODE)
        except OSError as exc:
            log.error("%s: cannot keep the maintenance modes (%s); in memory", self.path, exc)

    def close(self) -> None:
        self._refused.close()


class MaintenanceGate:
    """Per window: is the machine in maintenance, and what does a change of mode end."""

    def __init__(self, modes: MaintenanceModes, schedules: dict[str, QuietHours]) -> None:
        self.modes = modes
        self.schedules = schedules
        self._quiet: dict[str, bool] = {}

    def check(
        self, machine: str, decider: Decider, timestamp: float
    ) -> tuple[bool, list[DecisionEvent]]:
        """(in maintenance now, the end of the event entering it closed, if any).

        Entering and leaving reset the decider: entering ends its open event (reason
        maintenance), leaving forgets the history so k fresh windows are needed.
        """
        by_command = self.modes.is_on(machine)
        quiet = by_command or self.schedules[machine].covers(timestamp)
        if quiet == self._quiet.get(machine, False):
            return quiet, []
        self._quiet[machine] = quiet
        why = "MQTT command" if by_command else "quiet hours"
        log.warning("%s: %s", machine, f"in maintenance ({why})" if quiet else "maintenance over")
        return quiet, decider.reset(timestamp, END_MAINTENANCE)


def modes_path(outbox_path: Path) -> Path:
    """Where the MQTT-set modes are kept: next to the outbox, on the same state volume."""
    return outbox_path.with_name(outbox_path.name + ".maintenance.json")


def maintenance_gate(config: Config, publisher: Publisher) -> MaintenanceGate:
    """The daemon's gate: quiet hours from `config`, modes kept next to the outbox and set
    over MQTT through `publisher` (subscribed before it starts)."""
    zone = ZoneInfo(config.maintenance.time_zone)
    modes = MaintenanceModes(modes_path(config.outbox.path), [m.name for m in config.machines])
    schedules = {
        m.name: QuietHours([*config.maintenance.quiet_hours, *m.quiet_hours], zone)
        for m in config.machines
    }
    publisher.subscribe(
        publisher.topics.maintenance_set("+"),
        lambda topic, payload: modes.command(topic.split("/")[-3], payload),
    )
    return MaintenanceGate(modes, schedules)
