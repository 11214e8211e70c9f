"""The demo's judgement of alerts, and its model cache."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from edge_asd.demo.live import Alert, LiveView
from edge_asd.demo.model import cached_model_dir, ensure_demo_model
from edge_asd.demo.scenario import SHORT, Scenario
from edge_asd.synth import Fault

SCENARIO = Scenario("fan", 0, (Fault("tone", 30.0, 40.0),), duration_s=80.0, realtime=False)


def test_a_window_belongs_to_a_fault_while_its_ten_seconds_overlap_it():
    assert SCENARIO.fault_for(30.0) is None  # the window ends as the fault begins
    assert SCENARIO.fault_for(30.5) is SCENARIO.faults[0]
    assert SCENARIO.fault_for(49.9) is SCENARIO.faults[0]  # reaches back to 39.9 s
    assert SCENARIO.fault_for(50.0) is None


def test_summary_counts_detections_with_their_delay_and_unexplained_alerts_as_false():
    view = LiveView(SCENARIO, "edge-asd/demo", "fan-1", out=io.StringIO())
    view.alerts += [
        Alert("start", "a", "t1", 1.0, 0.0, stream_seconds=34.0),
        Alert("end", "a", "t2", 0.1, 0.0),
        Alert("start", "b", "t3", 1.0, 0.0, stream_seconds=65.0),
    ]
    summary = view.summary()
    assert [d.delay_seconds for d in summary.detections] == [4.0]
    assert [a.event_id for a in summary.false_alarms] == ["b"]
    assert summary.all_detected


def test_short_scenario_leaves_clean_windows_between_faults():
    first, second = SHORT.faults
    assert second.start_s - (first.end_s + 10.0) >= 10.0
    assert SHORT.duration_s - (second.end_s + 10.0) >= 10.0


def test_a_cached_demo_model_is_used_without_training(tiny_model: Path, tmp_path: Path):
    target = cached_model_dir(tmp_path)
    shutil.copytree(tiny_model, target)
    assert ensure_demo_model(tmp_path, "fan") == target
