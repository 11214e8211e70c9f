"""The daemon's log of machine states: every change into or out of `unknown` says why."""

from __future__ import annotations

import logging

from edge_asd.daemon.state_log import MachineStateLog, unknown_reason
from edge_asd.decider import ANOMALY, NORMAL, UNKNOWN


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "edge_asd.daemon.state_log"]


def test_a_machine_hovering_at_the_rms_gate_says_why_once_then_counts(caplog):
    states = MachineStateLog(["pump-1"])
    silent = unknown_reason(0.5, rms=0.0005, rms_gate=0.001)
    with caplog.at_level(logging.INFO, logger="edge_asd.daemon.state_log"):
        states.changed("pump-1", UNKNOWN, NORMAL, silent)
        for _ in range(100):  # every window crosses the gate, one way or the other
            states.changed("pump-1", NORMAL, UNKNOWN, silent)
            states.changed("pump-1", UNKNOWN, NORMAL, silent)
        states.changed("pump-1", NORMAL, ANOMALY, silent)  # an event: logged with it
        states.close()

    assert lines(caplog) == [
        "pump-1: scoring: state normal (first window)",
        "pump-1: state unknown: window RMS -66.0 dBFS is under rms_gate_dbfs -60.0 "
        "(machine stopped or input silent)",
        "pump-1: state unknown 100 times in all, 99 of them since the last line (latest: "
        "window RMS -66.0 dBFS is under rms_gate_dbfs -60.0 (machine stopped or input silent))",
        "pump-1: scoring 101 times in all, 100 of them since the last line (latest: state "
        "normal (again after unknown))",
    ]


def test_a_score_that_is_not_a_number_is_named_as_the_cause():
    assert unknown_reason(float("nan"), rms=0.1, rms_gate=None) == (
        "the window's score is nan (the model's output is not a number)"
    )
