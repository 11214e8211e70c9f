"""Why a machine's state changed, in the daemon's log.

Every change into `unknown` says its cause (the input and why it stopped, a silent window
under the RMS gate, a score that is not finite), and every change out of it says that
windows are scored (again). Changes between `normal` and `anomaly` are the events, which
the loop logs with their scores and threshold. A change that can repeat every window (a
machine hovering at the RMS gate) is logged once, then counted (edge_asd.logs).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from edge_asd.decider import UNKNOWN
from edge_asd.logs import RepeatedWarning

log = logging.getLogger(__name__)


def unknown_reason(score: float, rms: float, rms_gate: float | None) -> str:
    """Why the decider made a scored window `unknown`: not finite, or under the RMS gate.

    `rms` and `rms_gate` are full-scale RMS (0..1); the text gives them in dBFS.
    """
    if not math.isfinite(score):
        return f"the window's score is {score} (the model's output is not a number)"
    gate = "no gate" if rms_gate is None else f"rms_gate_dbfs {_dbfs(rms_gate):.1f}"
    return f"window RMS {_dbfs(rms):.1f} dBFS is under {gate} (machine stopped or input silent)"


def _dbfs(rms: float) -> float:
    return 20.0 * math.log10(max(rms, 1e-10))


class MachineStateLog:
    """The log lines of each machine's changes into and out of `unknown`."""

    def __init__(self, machines: Iterable[str]) -> None:
        self._unknown: dict[str, RepeatedWarning] = {}
        self._scored: dict[str, RepeatedWarning] = {}
        for name in machines:
            self._unknown[name] = RepeatedWarning(log, f"{name}: state unknown")
            self._scored[name] = RepeatedWarning(log, f"{name}: scoring", level=logging.INFO)
        self._scored_before: set[str] = set()

    def changed(self, machine: str, before: str, after: str, why_unknown: str) -> None:
        """Log `machine`'s change from `before` to `after` if it enters or leaves unknown."""
        if before == after or UNKNOWN not in (before, after):
            return
        if after == UNKNOWN:
            self._unknown[machine].occurred(why_unknown)
            return
        again = "again after unknown" if machine in self._scored_before else "first window"
        self._scored_before.add(machine)
        self._scored[machine].occurred(f"state {after} ({again})")

    def close(self) -> None:
        """Log the changes still counted (at the end of the run)."""
        for repeated in (*self._unknown.values(), *self._scored.values()):
            repeated.close()
