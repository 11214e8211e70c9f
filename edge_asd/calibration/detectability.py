"""The detectability table: how strong a fault must be before the calibrated detector alarms.

For each synthetic fault kind (edge_asd.faults) and level, the share p of faulted probe
windows whose honest score is above the threshold, and the probability that a fault that
lasts gives an event within one confirmation span: k of n windows above the threshold,
P = sum_{j >= k} C(n, j) p^j (1 - p)^(n - j). Neighbouring windows overlap, so their
scores are not independent and this is an approximation; for faults whose windows mostly
sit clearly above or below the threshold (p near 1 or 0), the two agree. A level counts
as **detected** when P >= DETECTED_PROBABILITY; the table gives the smallest such level.

The same is given for gain changes of the input (a moved microphone, a gain knob, a
warmer preamplifier): cases that must *not* alarm. Their event probability is printed
and a calibration whose detector would alarm on a ±1 dB change says so loudly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_asd.calibration.select import GAIN_KIND, Cases

DETECTED_PROBABILITY = 0.9
GAIN_ALARM_PROBABILITY = 0.1  # above this, a gain change "alarms"


def event_probability(p: float, k: int, n: int) -> float:
    """P(at least k of n independent windows above the threshold) at window share p."""
    return float(sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1)))


@dataclass(frozen=True)
class Row:
    """One fault kind (or the gain changes): per level, the share of windows above the
    threshold and the event probability; the smallest detected level (None: none)."""

    kind: str
    levels_db: tuple[float, ...]
    windows_above: tuple[float, ...]
    event_probability: tuple[float, ...]
    detected_from_db: float | None

    def to_dict(self) -> dict:
        return {
            "levels_db": list(self.levels_db),
            "windows_above": [round(v, 4) for v in self.windows_above],
            "event_probability": [round(v, 4) for v in self.event_probability],
            "detected_from_db": self.detected_from_db,
        }


def table(probe_scores: np.ndarray, cases: Cases, threshold: float, k: int, n: int) -> list[Row]:
    """The detectability rows: every fault kind in order, then the gain changes."""
    rows = []
    for kind in [*cases.fault_kinds(), GAIN_KIND]:
        mine = cases.kind == kind
        if not mine.any():
            continue
        levels = tuple(sorted({float(v) for v in cases.level_db[mine]}))
        above, events = [], []
        for level in levels:
            scores = probe_scores[mine & (cases.level_db == level)]
            share = float(np.mean(scores > threshold))
            above.append(share)
            events.append(event_probability(share, k, n))
        detected = next(
            (lv for lv, e in zip(levels, events, strict=True) if e >= DETECTED_PROBABILITY), None
        )
        rows.append(Row(kind, levels, tuple(above), tuple(events), detected))
    return rows


def gain_alarms(rows: list[Row]) -> list[float]:
    """The gain changes (dB) whose event probability is above GAIN_ALARM_PROBABILITY."""
    gains = next((r for r in rows if r.kind == GAIN_KIND), None)
    if gains is None:
        return []
    return [
        lv
        for lv, e in zip(gains.levels_db, gains.event_probability, strict=True)
        if e > GAIN_ALARM_PROBABILITY
    ]


def table_lines(rows: list[Row]) -> list[str]:
    """The table as text: one line per fault kind, then the gain changes."""
    lines = ["detectability (synthetic faults made from this machine's normal sound):"]
    for row in rows:
        if row.kind == GAIN_KIND:
            continue
        cells = ", ".join(
            f"{lv:g} dB: {e:.0%}"
            for lv, e in zip(row.levels_db, row.event_probability, strict=True)
        )
        found = (
            f"detected from {row.detected_from_db:g} dB"
            if row.detected_from_db is not None
            else f"not detected up to {max(row.levels_db):g} dB"
        )
        lines.append(f"  {row.kind:<11} {found:<27} (event probability {cells})")
    gains = next((r for r in rows if r.kind == GAIN_KIND), None)
    if gains is not None:
        cells = ", ".join(
            f"{lv:+g} dB: {e:.0%}"
            for lv, e in zip(gains.levels_db, gains.event_probability, strict=True)
        )
        lines.append(f"  gain change (must not alarm): event probability {cells}")
    return lines
