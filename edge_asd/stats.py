"""The daemon's running numbers: published as `stats` on MQTT and, optionally, to Prometheus.

Counts since start: windows scored and skipped (the consumer was late) or lost (gaps in
the input), input overflows, inference time p50/p95 over recent batches (and, for
Prometheus, a histogram of every batch since start), outbox depth and
drops, failed MQTT connection attempts and why the last one failed, uptime, the engine
(and why it fell back, if it did). Per machine: the realised rate of windows above the
threshold and of alarms (events started) a day, beside what the calibration expects, and
the latest window's score and the threshold (Home Assistant's score sensor reads them). A
machine whose sound drifts away from its calibration shows it in its window rate first,
long before the alarm rate is measurable.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_asd.calibration.false_alarms import SECONDS_PER_DAY
from edge_asd.decider import ANOMALY, NORMAL, UNKNOWN
from edge_asd.mqtt.payloads import iso_utc

INFERENCE_HISTORY = 1000  # batches kept for the percentiles
LEVEL_HISTORY = 30  # windows whose level offsets give the median in `stats`
# Upper bounds of the inference histogram's buckets, seconds (Prometheus' base unit): one
# batch takes ~5 ms on a Jetson's GPU to ~500 ms for many machines on a small CPU; the
# edges are finest where a regression between releases would show.
LATENCY_BUCKETS_SECONDS = (
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
)  # fmt: skip
# States the per-machine state gauge always reports (0 or 1), so a panel sees each series
# from the start; a state outside them (a newer one) is reported while it holds.
KNOWN_STATES = (NORMAL, ANOMALY, UNKNOWN)


@dataclass
class MachineCounts:
    """One machine's windows and alarms, and what its calibration expects of them."""

    hop_seconds: float
    expected_alarms_per_day: float | None
    expected_window_exceedance: float | None
    threshold: float | None = None
    score: float | None = None  # the latest window's
    windows: int = 0
    windows_above: int = 0
    alarms: int = 0
    state: str = "unknown"
    level_offsets_db: deque = field(default_factory=lambda: deque(maxlen=LEVEL_HISTORY))

    @property
    def level_offset_db(self) -> float | None:
        """Median input level of the recent windows minus the calibration's (dB)."""
        if not self.level_offsets_db:
            return None
        return round(float(np.median(self.level_offsets_db)), 2)

    def snapshot(self) -> dict[str, Any]:
        scored_days = self.windows * self.hop_seconds / SECONDS_PER_DAY
        return {
            "state": self.state,
            "windows_scored": self.windows,
            "windows_above_threshold": self.windows_above,
            "window_exceedance": self.windows_above / self.windows if self.windows else None,
            "expected_window_exceedance": self.expected_window_exceedance,
            "alarms": self.alarms,
            "alarms_per_day": self.alarms / scored_days if scored_days > 0 else None,
            "expected_alarms_per_day": self.expected_alarms_per_day,
            "level_offset_db": self.level_offset_db,
            "score": self.score,
            "threshold": self.threshold,
        }


@dataclass
class Stats:
    """Thread-safe counters; `snapshot()` is the `stats` JSON object."""

    engine: str = ""
    engine_fallback_reason: str | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    machines: dict[str, MachineCounts] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._inference_ms: deque[float] = deque(maxlen=INFERENCE_HISTORY)
        self._windows_per_batch: deque[int] = deque(maxlen=INFERENCE_HISTORY)
        # batches per bucket of LATENCY_BUCKETS_SECONDS (not cumulative), the last one
        # past the largest edge; and the sum of every batch's seconds
        self._latency_buckets = [0] * (len(LATENCY_BUCKETS_SECONDS) + 1)
        self._latency_sum_seconds = 0.0
        self.windows_scored = 0
        self._external: dict[str, Callable[[], Any]] = {}

    def add_machine(
        self,
        name: str,
        hop_seconds: float,
        expected_alarms_per_day: float | None = None,
        expected_window_exceedance: float | None = None,
        threshold: float | None = None,
    ) -> None:
        with self._lock:
            self.machines[name] = MachineCounts(
                hop_seconds, expected_alarms_per_day, expected_window_exceedance, threshold
            )

    def add_source(self, name: str, read: Callable[[], Any]) -> None:
        """A value read at snapshot time (`windows_skipped`, `outbox_depth`, ...)."""
        self._external[name] = read

    def record_inference(self, milliseconds: float, n_windows: int) -> None:
        """One engine batch of `n_windows` windows took `milliseconds`."""
        seconds = milliseconds / 1000.0
        with self._lock:
            self._inference_ms.append(milliseconds)
            self._windows_per_batch.append(n_windows)
            # bisect_left: a batch on an edge counts in that bucket (Prometheus' `le`)
            self._latency_buckets[bisect.bisect_left(LATENCY_BUCKETS_SECONDS, seconds)] += 1
            self._latency_sum_seconds += seconds

    def inference_histogram(self) -> tuple[list[tuple[str, int]], float]:
        """Cumulative (upper bound in seconds, batches) pairs ending with "+Inf", and the
        sum of all batches' seconds: a Prometheus histogram since start."""
        with self._lock:
            counts, total = list(self._latency_buckets), self._latency_sum_seconds
        edges = [*(repr(edge) for edge in LATENCY_BUCKETS_SECONDS), "+Inf"]
        cumulative = np.cumsum(counts).tolist()
        return list(zip(edges, cumulative, strict=True)), total

    def record_window(
        self,
        machine: str,
        above: bool,
        alarm: bool,
        state: str,
        level_offset_db: float | None = None,
        score: float | None = None,
    ) -> None:
        """A machine's window was scored; `alarm`: it started an event; `level_offset_db`:
        its level minus the calibration's; `score`: the window's score."""
        with self._lock:
            counts = self.machines[machine]
            counts.score = score
            if level_offset_db is not None:
                counts.level_offsets_db.append(level_offset_db)
            counts.windows += 1
            counts.windows_above += int(above)
            counts.alarms += int(alarm)
            counts.state = state
            self.windows_scored += 1

    def settled_level_offset_db(self, machine: str) -> float | None:
        """The median level offset of a machine's last LEVEL_HISTORY windows, once it has
        that many (None before, or without a calibration level)."""
        with self._lock:
            counts = self.machines[machine]
            if len(counts.level_offsets_db) < LEVEL_HISTORY:
                return None
            return counts.level_offset_db

    def set_state(self, machine: str, state: str) -> None:
        with self._lock:
            self.machines[machine].state = state

    def inference_percentiles(self) -> tuple[float | None, float | None]:
        """p50 and p95 of recent batches' inference time, ms (None before the first)."""
        with self._lock:
            times = np.asarray(self._inference_ms)
        if times.size == 0:
            return None, None
        p50, p95 = np.percentile(times, [50, 95])
        return round(float(p50), 2), round(float(p95), 2)

    def snapshot(self) -> dict[str, Any]:
        """The `stats` JSON object (numbers since start; rates per day of scored audio)."""
        p50, p95 = self.inference_percentiles()
        with self._lock:
            machines = {name: counts.snapshot() for name, counts in self.machines.items()}
            scored = self.windows_scored
        payload: dict[str, Any] = {
            "ts": iso_utc(time.time()),
            "uptime_seconds": round(time.monotonic() - self.started_monotonic, 1),
            "windows_scored": scored,
            "inference_ms_p50": p50,
            "inference_ms_p95": p95,
            "engine": self.engine,
            "engine_fallback_reason": self.engine_fallback_reason,
        }
        for name, read in self._external.items():
            payload[name] = read()
        payload["machines"] = machines
        return payload


def start_prometheus(stats: Stats, port: int, address: str = "127.0.0.1") -> None:
    """Serve `stats` as Prometheus metrics on http://address:port/metrics (a thread).

    Needs prometheus-client (`pip install edge-asd[metrics]`); raises ImportError without.
    """
    from prometheus_client import start_http_server
    from prometheus_client.core import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_PrometheusView(stats))
    start_http_server(port, addr=address, registry=registry)


class _PrometheusView:
    """A prometheus-client collector that reads a Stats snapshot at each scrape."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap = self.stats.snapshot()
        gauges = {
            "uptime_seconds": "seconds since the daemon started",
            "inference_ms_p50": "median engine batch time over recent batches, ms",
            "inference_ms_p95": "95th percentile engine batch time, ms",
            "outbox_depth": "events waiting in the outbox for a PUBACK",
        }
        counters = {
            "windows_scored": "machine windows scored",
            "windows_skipped": "machine windows skipped because scoring fell behind",
            "windows_lost": "machine windows lost to gaps in the input",
            "input_overflows": "audio input overflows",
            "outbox_dropped": "events dropped because the outbox was full",
            "mqtt_connect_failures": "failed attempts to connect to the MQTT broker",
        }
        for name, help_text in gauges.items():
            if isinstance(snap.get(name), (int, float)):
                yield GaugeMetricFamily(f"edge_asd_{name}", help_text, value=snap[name])
        for name, help_text in counters.items():
            if isinstance(snap.get(name), (int, float)):
                yield CounterMetricFamily(f"edge_asd_{name}", help_text, value=snap[name])
        yield _latency_histogram(self.stats)
        yield from _machine_metrics(snap["machines"])


def _latency_histogram(stats: Stats) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    buckets, sum_seconds = stats.inference_histogram()
    return HistogramMetricFamily(
        "edge_asd_inference_batch_seconds",
        "engine time of one batch (every machine's newest window), seconds",
        buckets=buckets,
        sum_value=sum_seconds,
    )


def _machine_metrics(machines: dict[str, dict[str, Any]]) -> Iterable[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    windows = CounterMetricFamily(
        "edge_asd_machine_windows_scored", "windows scored per machine", labels=["machine"]
    )
    alarms = CounterMetricFamily(
        "edge_asd_machine_alarms", "events started (alarms) per machine", labels=["machine"]
    )
    exceedance = GaugeMetricFamily(
        "edge_asd_machine_window_exceedance",
        "fraction of windows above the threshold (compare with the expected)",
        labels=["machine", "kind"],
    )
    anomaly = GaugeMetricFamily(
        "edge_asd_machine_anomaly", "1 while the machine is in anomaly", labels=["machine"]
    )
    states = GaugeMetricFamily(
        "edge_asd_machine_state", "1 for the machine's current state", labels=["machine", "state"]
    )
    for name, m in machines.items():
        windows.add_metric([name], m["windows_scored"])
        alarms.add_metric([name], m["alarms"])
        for kind, key in (
            ("realised", "window_exceedance"),
            ("expected", "expected_window_exceedance"),
        ):
            if m[key] is not None:
                exceedance.add_metric([name, kind], m[key])
        anomaly.add_metric([name], 1.0 if m["state"] == ANOMALY else 0.0)
        for state in dict.fromkeys([*KNOWN_STATES, m["state"]]):
            states.add_metric([name, state], 1.0 if m["state"] == state else 0.0)
    yield from (windows, alarms, exceedance, anomaly, states)
