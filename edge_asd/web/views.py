"""What the page shows, as JSON-ready dicts, read from the running daemon.

Every read is a snapshot: the stats under their lock (edge_asd.stats), each machine's
trace and latest window under its Recent lock (edge_asd.daemon.recent), plain attribute
reads of the decider's settings. Nothing here holds a lock the scoring loop waits on for
longer than a copy; the spectrogram and every formatting happen in the request's thread.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np

from edge_asd.capture.source import FINISHED, RUNNING, STARTING
from edge_asd.daemon.maintenance import MAINTENANCE
from edge_asd.daemon.state_log import unknown_reason
from edge_asd.decider import ANOMALY, NORMAL, UNKNOWN
from edge_asd.evidence.listing import DEFAULT_LIMIT, recent_events

STATS_MAX_AGE_SECONDS = 1.0  # requests within this share one stats snapshot
OVERVIEW_TRACE_SECONDS = 120.0  # the overview's small trace per machine
SPECTROGRAM_MEL_POOL = 2  # 128 mel bands -> 64 rows on the page
SPECTROGRAM_FRAME_POOL = 2  # 313 frames (32 ms hop) -> 156 columns
SPECTROGRAM_RANGE_DB = 80.0  # shown below the window's loudest cell; quieter is black
SOURCE_FINE = (RUNNING, STARTING, FINISHED)  # input states that are no health problem


class DaemonView:
    """The daemon as the page reads it: `loop` is the running edge_asd.daemon.loop._Loop."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._stats: tuple[float, dict[str, Any]] | None = None
        self._spectrograms: dict[str, tuple[float, dict[str, Any]]] = {}

    def stats(self) -> dict[str, Any]:
        """The `stats` snapshot, at most STATS_MAX_AGE_SECONDS old (bounds the cost of
        many browsers: the snapshot counts the outbox's rows)."""
        now = time.monotonic()
        with self._lock:
            if self._stats is not None and now - self._stats[0] < STATS_MAX_AGE_SECONDS:
                return self._stats[1]
        snapshot = self.loop.stats.snapshot()
        with self._lock:
            self._stats = (now, snapshot)
        return snapshot

    def status(self) -> dict[str, Any]:
        """`/api/status`: health and why, uptime, engine and fallback, outbox, skipped windows."""
        snap = self.stats()
        healthy, problems = health(snap)
        keys = ("uptime_seconds", "windows_scored", "windows_skipped", "windows_lost",
                "input_overflows", "inference_ms_p50", "inference_ms_p95", "engine",
                "engine_fallback_reason", "outbox_depth", "outbox_dropped", "mqtt_connected",
                "mqtt_last_error", "inputs")  # fmt: skip
        from edge_asd import __version__

        return {
            "device_id": self.loop.config.device_id,
            "version": __version__,
            "time": time.time(),
            "health": "ok" if healthy else "degraded",
            "health_problems": problems,
            "hop_seconds": self.loop.config.audio.hop_seconds,
            **{key: snap.get(key) for key in keys},
        }

    def machines(self, since: float | None = None) -> list[dict[str, Any]]:
        """`/api/machines`: every machine's summary with its trace of the last
        OVERVIEW_TRACE_SECONDS, only after `since` (Unix s) when that is later: a page
        that keeps what it had asks for the new windows alone (64 machines: ~200 bytes
        each a second, not ~10 kB)."""
        start = time.time() - OVERVIEW_TRACE_SECONDS
        start = start if since is None else max(since, start)
        return [self._summary(name, start) for name in self.loop.machines]

    def machine(self, name: str, since: float | None = None) -> dict[str, Any] | None:
        """`/api/machines/{name}`: summary, trace after `since` (all 10 min when None), level
        against calibration, detectability table; None for an unknown machine."""
        runtime = self.loop.machines.get(name)
        if runtime is None:
            return None
        detail = self._summary(name, since)
        cal = runtime.calibration
        detail["calibration"] = {
            "created_at": cal.created_at,
            "scorer": cal.scorer,
            "level_db": cal.level_db,
            "expected_false_alarms_per_day": cal.expected_false_alarms_per_day,
            "detectability": cal.detectability,
        }
        return detail

    def _summary(self, name: str, since: float | None) -> dict[str, Any]:
        runtime = self.loop.machines[name]
        counts = self.stats()["machines"][name]
        decider = runtime.decider
        trace = runtime.recent.trace(since)
        state = counts["state"]
        window = runtime.recent.latest()  # the latest window, whatever `since` leaves out
        latest = window.point if window is not None else None
        return {
            "name": name,
            "source": runtime.source,
            "state": state,
            "why": self._why(name, state, trace if since is None else runtime.recent.trace()),
            "threshold": _number(decider.threshold),
            "score": _number(latest.score) if latest else None,
            "k": decider.k,
            "n": decider.n,
            "level_offset_db": counts["level_offset_db"],  # median of recent windows
            "latest_level_offset_db": _number(latest.level_offset_db) if latest else None,
            "calibration_level_db": runtime.calibration.level_db,
            "alarms": counts["alarms"],
            "windows_scored": counts["windows_scored"],
            # rows [time (Unix s), score, threshold], oldest first
            "trace": [[p.time, _number(p.score), _number(p.threshold)] for p in trace],
        }

    def _why(self, name: str, state: str, trace: list) -> str:
        """One line: why the machine is in `state` (what the page shows beside it)."""
        runtime = self.loop.machines[name]
        decider = runtime.decider
        if state == MAINTENANCE:
            by_command = self.loop.maintenance.modes.is_on(name)
            return "maintenance: " + ("set by MQTT command" if by_command else "quiet hours")
        if state == UNKNOWN:
            return self._why_unknown(name, runtime)
        recent = trace[-decider.n :]
        above = sum(1 for p in recent if p.score > p.threshold)
        if state == ANOMALY:
            return (
                f"event open: {above} of the last {len(recent)} windows above the threshold "
                f"(k-of-n {decider.k} of {decider.n}; closes after {decider.m_close} below)"
            )
        if state == NORMAL:
            return (
                f"{above} of the last {len(recent)} windows above the threshold "
                f"(an event needs {decider.k} of {decider.n})"
            )
        return state

    def _why_unknown(self, name: str, runtime: Any) -> str:
        inputs = self.stats().get("inputs") or {}
        source = inputs.get(runtime.source) or {}
        if source.get("state") not in (None, *SOURCE_FINE):
            reason = source.get("reason") or source.get("last_error")
            return f"input {runtime.source!r} {source['state']} ({reason})"
        window = runtime.recent.latest()
        if window is None:
            return "no window scored yet: the first fills in one window's length"
        rms = float(np.sqrt(np.mean(np.square(window.waveform, dtype=np.float64))))
        return unknown_reason(window.point.score, rms, runtime.decider.rms_gate)

    def spectrogram(self, name: str) -> dict[str, Any] | None:
        """`/api/machines/{name}/spectrogram`: log-mel of the latest window (None before the
        first window or for an unknown machine); computed once per window."""
        runtime = self.loop.machines.get(name)
        window = None if runtime is None else runtime.recent.latest()
        if window is None:
            return None
        with self._lock:
            cached = self._spectrograms.get(name)
        if cached is not None and cached[0] == window.point.time:
            return cached[1]
        picture = spectrogram(window.waveform, runtime.recent.sample_rate)
        picture["time"] = window.point.time
        with self._lock:
            self._spectrograms[name] = (window.point.time, picture)
        return picture

    def events(self, machine: str | None, limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
        """`/api/events`: recent events with evidence, newest first (edge_asd.evidence.listing)."""
        root = self.loop.config.evidence_path
        listed = recent_events(root, self.loop.machines, machine=machine, limit=limit)
        rows = []
        for event in listed:
            row = event.to_dict()
            base = f"/api/evidence/{event.machine}/{event.folder}/"
            row["urls"] = {name: base + name for name in event.files}
            rows.append(row)
        return rows


def spectrogram(waveform: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """The window's log-mel (edge_asd.melspec, the model's own front end), pooled for a
    canvas: `values` rows low to high mel band, each a list of 0..255 (0: SPECTROGRAM_RANGE_DB
    or more below `db_max`), columns in time order over `seconds`."""
    from edge_asd.melspec import reference_logmel

    # On the daemon's one BLAS thread (edge_asd.blas, set at start for the whole process):
    # with OpenBLAS' workers awake, these 9 ms of CPU became ~120 ms (benchmarks/bench_web.py).
    logmel = reference_logmel(waveform)  # dB [n_mels, frames]
    mels = logmel.shape[0] // SPECTROGRAM_MEL_POOL * SPECTROGRAM_MEL_POOL
    frames = logmel.shape[1] // SPECTROGRAM_FRAME_POOL * SPECTROGRAM_FRAME_POOL
    pooled = logmel[:mels, :frames].reshape(
        mels // SPECTROGRAM_MEL_POOL, SPECTROGRAM_MEL_POOL,
        frames // SPECTROGRAM_FRAME_POOL, SPECTROGRAM_FRAME_POOL,
    ).mean(axis=(1, 3))  # fmt: skip
    db_max = float(pooled.max())
    scaled = (pooled - (db_max - SPECTROGRAM_RANGE_DB)) / SPECTROGRAM_RANGE_DB * 255.0
    values = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return {
        "db_max": round(db_max, 1),
        "range_db": SPECTROGRAM_RANGE_DB,
        "seconds": len(waveform) / sample_rate,
        "max_hz": sample_rate / 2,
        "values": values.tolist(),
    }


def health(snapshot: dict[str, Any]) -> tuple[bool, list[str]]:
    """(healthy, the problems): MQTT down, an input not running, outbox trouble, evidence
    that could not be written (its latest error; scoring goes on without it)."""
    problems = []
    if snapshot.get("mqtt_connected") is False:
        problems.append(f"MQTT broker not connected ({snapshot.get('mqtt_last_error')})")
    for name, source in (snapshot.get("inputs") or {}).items():
        if source.get("state") not in SOURCE_FINE:
            why = source.get("reason") or source.get("last_error")
            problems.append(f"input {name} {source.get('state')} ({why})")
    if snapshot.get("outbox_error"):
        problems.append(f"outbox: {snapshot['outbox_error']}")
    if snapshot.get("outbox_dropped"):
        problems.append(f"outbox full: {snapshot['outbox_dropped']} events dropped")
    if snapshot.get("evidence_error"):
        failures = snapshot.get("evidence_failures")
        count = f" ({failures} failures)" if failures else ""
        problems.append(f"evidence not written: {snapshot['evidence_error']}{count}")
    return not problems, problems


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null; others keep 6 significant digits."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")
