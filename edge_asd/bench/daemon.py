"""`edge-asd run` measured from outside: a real process, a real mosquitto, its scores.

The daemon publishes every window's score (`publish_scores: true`); a subscriber notes
when each arrives. /proc gives the process's memory and CPU time while it runs. Nothing
inside the daemon is instrumented, so what is measured is what a user gets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.1  # how often /proc is read
SETTLE_SECONDS = 2.0  # after the first score, before RSS and CPU count as steady
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class DaemonResult:
    """One daemon run. Times in seconds, memory in MB (2**20 bytes).

    windows: windows the daemon scored (its last `stats`, else the scores received);
    windows_per_second: scores received over the time between the first and the last;
    first_score_seconds: from the process start to the first score at the broker;
    peak_rss_mb: the process's high-water mark (VmHWM); steady_rss_mb: median RSS once
    scoring; cpu_share: its CPU time over the steady part, as a share of all `cores`;
    cpu_ms_per_window: that CPU time per window scored meanwhile.
    """

    label: str
    windows: int
    windows_per_second: float | None
    first_score_seconds: float | None
    peak_rss_mb: float
    steady_rss_mb: float | None
    cpu_share: float | None
    cores: int
    exit_code: int | None
    cpu_ms_per_window: float | None = None
    log_tail: str = ""


@dataclass
class _Scores:
    """Arrival times (monotonic s) of score messages, and the last stats payload."""

    times: list[float] = field(default_factory=list)
    stats: dict | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _subscribe(port: int, scores: _Scores):
    """A paho client on `port` noting score and stats messages of device `bench`."""
    import paho.mqtt.client as mqtt

    subscribed = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([("edge-asd/bench/+/score", 0), ("edge-asd/bench/stats", 0)])

    def on_message(client, userdata, message) -> None:
        now = time.monotonic()
        with scores.lock:
            if message.topic.endswith("/score"):
                scores.times.append(now)
            else:
                scores.stats = json.loads(message.payload)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="")
    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not subscribed.wait(10):
        raise TimeoutError("the bench subscriber could not subscribe")
    return client


def _proc_sample(pid: int) -> tuple[float, float, float] | None:
    """(CPU seconds, RSS MB, peak RSS MB) of a running process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as handle:
            status = dict(line.split(":", 1) for line in handle if ":" in line)
    except (OSError, ValueError):
        return None
    cpu_seconds = (int(fields[11]) + int(fields[12])) / PAGE_TICKS  # utime + stime
    rss_mb = int(status.get("VmRSS", "0 kB").split()[0]) / 1024
    peak_mb = int(status.get("VmHWM", "0 kB").split()[0]) / 1024
    return cpu_seconds, rss_mb, peak_mb


def run_daemon(
    label: str,
    config: Path,
    port: int,
    log_path: Path,
    max_seconds: float,
    measure_seconds: float | None = None,
) -> DaemonResult:
    """Run `edge-asd run --config config` until it exits by itself (a file replayed as fast
    as possible) or, with `measure_seconds`, that long after its first score (then
    SIGTERM). Raises TimeoutError when it runs past `max_seconds`, killing it."""
    scores = _Scores()
    client = _subscribe(port, scores)
    command = [sys.executable, "-m", "edge_asd.cli", "run", "--config", str(config)]
    samples: list[tuple[float, float, float, float]] = []  # (time, cpu s, rss, peak)
    with open(log_path, "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        _watch(process, scores, samples, started, max_seconds, measure_seconds)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        time.sleep(0.2)  # the stats published at exit are on their way
        client.disconnect()
        client.loop_stop()
    return _summarise(label, process.returncode, scores, samples, started, log_path)


def _watch(process, scores: _Scores, samples: list, started: float, max_seconds, measure):
    """Sample /proc until the process ends (or `measure` s after its first score)."""
    stop_sent = False
    while process.poll() is None:
        now = time.monotonic()
        sample = _proc_sample(process.pid)
        if sample is not None:
            samples.append((now, *sample))
        with scores.lock:
            first = scores.times[0] if scores.times else None
        if measure is not None and first is not None and now - first >= measure and not stop_sent:
            process.send_signal(signal.SIGTERM)
            stop_sent = True
        if now - started > max_seconds:
            process.kill()
            raise TimeoutError(f"the daemon ran past {max_seconds:.0f} s (see its log)")
        time.sleep(SAMPLE_SECONDS)
    process.wait(timeout=STOP_TIMEOUT_SECONDS)


def _summarise(label, exit_code, scores: _Scores, samples, started, log_path) -> DaemonResult:
    import numpy as np

    with scores.lock:
        times = list(scores.times)
        stats = scores.stats
    first = times[0] if times else None
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 else None
    steady = [s for s in samples if first is not None and s[0] >= first + SETTLE_SECONDS]
    if times and len(steady) >= 2:
        last = min(steady[-1][0], times[-1]) if rate is not None else steady[-1][0]
        steady = [s for s in steady if s[0] <= last] or steady
    cores = os.cpu_count() or 1
    cpu_share = cpu_ms = None
    if len(steady) >= 2 and steady[-1][0] > steady[0][0]:
        (start, start_cpu), (end, end_cpu) = steady[0][:2], steady[-1][:2]
        cpu_share = (end_cpu - start_cpu) / ((end - start) * cores)
        scored = sum(1 for t in times if start < t <= end)
        cpu_ms = 1000 * (end_cpu - start_cpu) / scored if scored else None
    windows = int(stats["windows_scored"]) if stats else len(times)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    return DaemonResult(
        label=label,
        windows=windows,
        windows_per_second=rate,
        first_score_seconds=None if first is None else first - started,
        peak_rss_mb=max((s[3] for s in samples), default=0.0),
        steady_rss_mb=float(np.median([s[2] for s in steady])) if steady else None,
        cpu_share=cpu_share,
        cores=cores,
        exit_code=exit_code,
        cpu_ms_per_window=cpu_ms,
        log_tail=tail,
    )
