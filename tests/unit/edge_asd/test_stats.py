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


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    """The endpoint's samples parsed by prometheus_client: name -> {labels: value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def test_inference_latency_is_a_histogram_whose_buckets_count_and_sum_move_per_batch():
    pytest.importorskip("prometheus_client")
    stats = Stats()
    port = free_port()
    start_prometheus(stats, port)
    before = scrape(port)
    assert before["edge_asd_inference_batch_seconds_count"] == {(): 0.0}
    for milliseconds in (4.0, 12.0, 12.0, 250.0, 900.0, 5000.0):
        stats.record_inference(milliseconds, n_windows=3)
    after = scrape(port)
    buckets = {
        dict(k)["le"]: v for k, v in after["edge_asd_inference_batch_seconds_bucket"].items()
    }
    assert buckets["0.005"] == 1  # 4 ms
    assert buckets["0.02"] == 3  # and twice 12 ms
    assert buckets["0.3"] == 4 and buckets["1.0"] == 5  # 250 ms, 900 ms
    assert buckets["+Inf"] == 6  # 5 s: past every edge, still counted
    assert after["edge_asd_inference_batch_seconds_count"] == {(): 6.0}
    assert after["edge_asd_inference_batch_seconds_sum"][()] == pytest.approx(6.178)
    stats.record_inference(0.02, n_windows=3)  # an edge counts in its own bucket: le
    edge = scrape(port)["edge_asd_inference_batch_seconds_bucket"][(("le", "0.005"),)]
    assert edge == 2


def test_windows_and_events_are_counted_per_machine_with_its_state():
    pytest.importorskip("prometheus_client")
    stats = Stats()
    for machine in ("pump-1", "fan-2"):
        stats.add_machine(machine, hop_seconds=1.0)
    port = free_port()
    start_prometheus(stats, port)
    for alarm in (False, True, False):
        stats.record_window("pump-1", above=alarm, alarm=alarm, state="anomaly")
    stats.record_window("fan-2", above=False, alarm=False, state="maintenance")
    got = scrape(port)
    pump, fan = (("machine", "pump-1"),), (("machine", "fan-2"),)
    assert got["edge_asd_machine_windows_scored_total"] == {pump: 3.0, fan: 1.0}
    assert got["edge_asd_machine_alarms_total"] == {pump: 1.0, fan: 0.0}
    states = {
        dict(k)["machine"] + "/" + dict(k)["state"]: v
        for k, v in got["edge_asd_machine_state"].items()
    }
    assert states["pump-1/anomaly"] == 1 and states["pump-1/normal"] == 0
    assert states["fan-2/maintenance"] == 1  # a state the gauge did not know of
    assert states["fan-2/unknown"] == 0
