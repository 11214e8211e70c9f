"""The daemon's stats: rates against the calibration's expectation, latency, Prometheus."""

from __future__ import annotations

import urllib.request

import pytest

from edge_asd.mosquitto import free_port
from edge_asd.stats import Stats, start_prometheus


def test_alarm_and_window_rates_are_per_day_of_scored_audio():
    stats = Stats()
    stats.add_machine(
        "pump-1", hop_seconds=2.0, expected_alarms_per_day=1.0, expected_window_exceedance=0.01
    )
    for window in range(1800):  # one hour at a 2 s hop
        stats.record_window(
            "pump-1", above=window % 10 == 0, alarm=window in (5, 900), state="normal"
        )
    machine = stats.snapshot()["machines"]["pump-1"]
    assert machine["windows_scored"] == 1800
    assert machine["window_exceedance"] == pytest.approx(0.1)  # ten times the calibration's
    assert machine["expected_window_exceedance"] == 0.01
    assert machine["alarms_per_day"] == pytest.approx(48.0)  # 2 in an hour
    assert machine["expected_alarms_per_day"] == 1.0


def test_rates_are_none_before_any_window():
    stats = Stats()
    stats.add_machine("fan", hop_seconds=1.0)
    snapshot = stats.snapshot()
    assert snapshot["machines"]["fan"]["alarms_per_day"] is None
    assert (snapshot["inference_ms_p50"], snapshot["inference_ms_p95"]) == (None, None)


def test_inference_percentiles_and_values_read_at_snapshot_time():
    stats = Stats(engine="onnxruntime", engine_fallback_reason="no GPU")
    for milliseconds in range(1, 101):
        stats.record_inference(float(milliseconds), n_windows=2)
    depth = iter([3, 0])
    stats.add_source("outbox_depth", lambda: next(depth))
    first, second = stats.snapshot(), stats.snapshot()
    assert (first["inference_ms_p50"], first["inference_ms_p95"]) == (50.5, 95.05)
    assert (first["outbox_depth"], second["outbox_depth"]) == (3, 0)
    assert first["engine_fallback_reason"] == "no GPU"


def test_prometheus_endpoint_serves_the_current_numbers():
    pytest.importorskip("prometheus_client")
    stats = Stats()
    stats.add_machine("pump-1", hop_seconds=1.0, expected_window_exceedance=0.02)
    stats.add_source("outbox_depth", lambda: 7)
    stats.record_window("pump-1", above=True, alarm=True, state="anomaly")
    port = free_port()
    start_prometheus(stats, port)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "edge_asd_outbox_depth 7.0" in text
    assert 'edge_asd_machine_alarms_total{machine="pump-1"} 1.0' in text
    assert 'edge_asd_machine_anomaly{machine="pump-1"} 1.0' in text
    assert 'edge_asd_machine_window_exceedance{kind="realised",machine="pump-1"} 1.0' in text
    stats.record_window("pump-1", above=False, alarm=False, state="normal")
    again = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'edge_asd_machine_windows_scored_total{machine="pump-1"} 2.0' in again
