"""The detectability table: per fault kind and level, the share of faulted windows above
the threshold and the probability of an event under the k-of-n rule; gain changes apart."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_asd.calibration.detectability import (
    DETECTED_PROBABILITY,
    event_probability,
    gain_alarms,
    table,
    table_lines,
)
from edge_asd.calibration.select import GAIN_KIND, Cases


def test_event_probability_is_the_binomial_tail_of_k_of_n():
    assert event_probability(0.0, 3, 5) == 0.0
    assert event_probability(1.0, 3, 5) == pytest.approx(1.0)
    assert event_probability(0.5, 3, 5) == pytest.approx(0.5)  # symmetric: 3 of 5
    p = 0.3
    by_hand = sum(math.comb(5, j) * p**j * (1 - p) ** (5 - j) for j in (3, 4, 5))
    assert event_probability(p, 3, 5) == pytest.approx(by_hand)
    assert event_probability(p, 1, 1) == pytest.approx(p)
    shares = np.linspace(0, 1, 21)
    assert np.all(np.diff([event_probability(s, 3, 5) for s in shares]) >= 0)


def cases_and_scores() -> tuple[Cases, np.ndarray]:
    """10 probes per case: `tone` above the threshold of 1.0 in 0, 6 and 10 of 10 at -30,
    -20 and -10 dB; `burst` never; gain changes of -3 and +3 dB in 0 and 10 of 10."""
    kinds, levels, scores = [], [], []
    for kind, level, above in [("tone", -30.0, 0), ("tone", -20.0, 6), ("tone", -10.0, 10),
                               ("burst", -30.0, 0), ("burst", -20.0, 0), ("burst", -10.0, 0),
                               (GAIN_KIND, -3.0, 0), (GAIN_KIND, 3.0, 10)]:  # fmt: skip
        kinds += [kind] * 10
        levels += [level] * 10
        scores += [2.0] * above + [0.0] * (10 - above)
    return Cases(np.asarray(kinds), np.asarray(levels)), np.asarray(scores)


def test_each_kind_gets_its_share_above_its_event_probability_and_its_detected_level():
    c, scores = cases_and_scores()
    rows = table(scores, c, threshold=1.0, k=3, n=5)
    assert [r.kind for r in rows] == ["burst", "tone", GAIN_KIND]  # faults, then gains
    tone = rows[1]
    assert tone.levels_db == (-30.0, -20.0, -10.0)
    assert tone.windows_above == (0.0, 0.6, 1.0)
    assert tone.event_probability == pytest.approx((0.0, event_probability(0.6, 3, 5), 1.0))
    assert event_probability(0.6, 3, 5) < DETECTED_PROBABILITY
    assert tone.detected_from_db == -10.0
    assert rows[0].detected_from_db is None
    assert tone.to_dict()["event_probability"] == [0.0, round(event_probability(0.6, 3, 5), 4), 1]


def test_a_gain_change_that_would_alarm_is_named():
    c, scores = cases_and_scores()
    rows = table(scores, c, threshold=1.0, k=3, n=5)
    assert gain_alarms(rows) == [3.0]
    assert gain_alarms(table(np.zeros_like(scores), c, 1.0, 3, 5)) == []


def test_the_table_reads_as_one_line_per_kind_and_one_for_gain_changes():
    c, scores = cases_and_scores()
    lines = table_lines(table(scores, c, threshold=1.0, k=3, n=5))
    assert lines[0].startswith("detectability")
    assert "tone" in lines[2] and "detected from -10 dB" in lines[2] and "-20 dB: 68%" in lines[2]
    assert "burst" in lines[1] and "not detected up to -10 dB" in lines[1]
    assert lines[3] == "  gain change (must not alarm): event probability -3 dB: 0%, +3 dB: 100%"
