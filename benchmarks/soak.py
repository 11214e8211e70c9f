"""Soak: hours of audio through `edge-asd run`, watching memory, skipped windows and the outbox.

    .venv/bin/python benchmarks/soak.py --model MODEL_DIR [--hours 2] [--realtime-seconds 120]
        [--warmup-windows 300] [--work DIR] [--json]

1. `edge-asd calibrate` on generated normal fan sound, the threshold at the median of
   its scores (a gamma fit's 0.5 quantile); the daemon's config overrides the decider
   to 1-of-1, so events open and close every few windows and the outbox and MQTT path
   are exercised all along;
2. fast: `edge-asd run` (a real subprocess, a real mosquitto) on a synthetic source of
   `--hours` of audio replayed as fast as it is scored. Its resident memory (VmRSS) is
   sampled every second: the figure is the growth from the end of the warm-up
   (`--warmup-windows` windows scored) to the end of the run (the issue asks < 10 MB);
   at the end every event the daemon logged reached the subscriber, and the outbox file
   holds none (every event left on its PUBACK);
3. live: the same source paced in real time for `--realtime-seconds`: no window may be
   skipped (scoring kept up) or lost (no gap in the input).

Prints one line per figure (and `--json` a JSON object); the exit status is 0 when all
the checks hold. Any model directory works; a random-weight one is enough for a soak.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import yaml

from edge_asd.mosquitto import Broker
from edge_asd.mqtt.outbox import Outbox
from edge_asd.synth import render_clip, write_wav

MAX_GROWTH_MB = 10.0
SEQ = re.compile(r": event (?:start|update|end) \S+ \(seq (\d+)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--hours", type=float, default=2.0, help="audio of the fast run")
    parser.add_argument("--realtime-seconds", type=float, default=120.0, help="live run length")
    parser.add_argument("--machines", type=int, default=1, help="machines (source channels)")
    parser.add_argument("--warmup-windows", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    parser.add_argument("--work", help="working folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.work or temporary)
        work.mkdir(parents=True, exist_ok=True)
        figures = soak(args, work)
    for key, value in figures.items():
        print(f"{key}: {value}")
    if args.json:
        print(json.dumps(figures))
    return 0 if figures["all_checks_pass"] else 1


def soak(args: argparse.Namespace, work: Path) -> dict:
    calibration = median_calibration(Path(args.model), work)
    broker = Broker(work / "broker").start()
    try:
        fast = run_daemon(args, work / "fast", broker.port, calibration, realtime=False)
        live = run_daemon(args, work / "live", broker.port, calibration, realtime=True)
    finally:
        broker.stop()
    growth = fast["rss_end_mb"] - fast["rss_after_warmup_mb"]
    checks = {
        "rss_growth_under_10_mb": growth < MAX_GROWTH_MB,
        "fast_exit_0": fast["exit_code"] == 0,
        "fast_every_event_delivered": fast["events_delivered"] == fast["events_logged"],
        "fast_outbox_empty": fast["outbox_depth_at_end"] == 0,
        "live_no_window_skipped": live["windows_skipped"] == 0 and live["windows_lost"] == 0,
        "live_exit_0": live["exit_code"] == 0,
    }
    return {
        "machines": args.machines,
        "fast_audio_hours": args.hours,
        **{f"fast_{k}": v for k, v in fast.items()},
        "fast_rss_growth_mb": round(growth, 2),
        **{f"live_{k}": v for k, v in live.items()},
        **checks,
        "all_checks_pass": all(checks.values()),
    }


def median_calibration(model: Path, work: Path) -> Path:
    """A knn calibration on generated normal sound, its threshold near the median score."""
    normals = []
    for seed in (1, 2, 3):
        path = work / f"normal_{seed}.wav"
        write_wav(path, render_clip("fan", 0, "source", 40.0, seed=seed))
        normals.append(str(path))
    out = work / "calibration.yaml"
    subprocess.run(
        [sys.executable, "-m", "edge_asd.cli", "calibrate", "--model", str(model),
         "--machine", "pump-1", "--label", "fan/section_00", "--quantile", "0.5",
         "--input", *normals, "--out", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out


def run_daemon(
    args: argparse.Namespace, folder: Path, port: int, calibration: Path, realtime: bool
) -> dict:
    folder.mkdir()
    seconds = args.realtime_seconds if realtime else args.hours * 3600.0
    config_path = folder / "daemon.yaml"
    config_path.write_text(
        yaml.safe_dump(config(args, folder, port, calibration, realtime, seconds))
    )
    watcher = Watcher(port, f"soak/{folder.name}").start()
    log_path = folder / "daemon.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge_asd.cli", "run", "--config", str(config_path)],
            stdout=log,
            stderr=log,
        )
        samples = sample_rss(process, watcher)
    with open(folder / "rss.csv", "w") as csv:  # for a plot of memory against windows
        csv.write("windows_scored,rss_mb\n")
        csv.writelines(f"{windows},{rss:.2f}\n" for windows, rss in samples)
    wall_seconds = time.monotonic() - started
    logged = [int(m) for m in SEQ.findall(log_path.read_text())]
    watcher.wait_for_seqs(set(logged), timeout_s=30)
    watcher.stop()
    stats = watcher.last_stats()
    outbox = Outbox(folder / "outbox.sqlite")
    depth = outbox.health().depth
    outbox.close()
    result = {
        "exit_code": process.returncode,
        "wall_seconds": round(wall_seconds, 1),
        "audio_seconds_per_wall_second": round(seconds / wall_seconds, 2),
        "windows_scored": stats.get("windows_scored"),
        "windows_skipped": stats.get("windows_skipped"),
        "windows_lost": stats.get("windows_lost"),
        "inference_ms_p50": stats.get("inference_ms_p50"),
        "inference_ms_p95": stats.get("inference_ms_p95"),
        "events_logged": len(logged),
        "events_delivered": len(set(logged) & watcher.seqs()),
        "outbox_depth_at_end": depth,
    }
    if not realtime:
        result.update(rss_figures(samples, args.warmup_windows))
    return result


def config(args, folder: Path, port: int, calibration: Path, realtime: bool, seconds: float):
    """The daemon's config: one synthetic source, a machine on each of its channels."""
    source = {"kind": "synthetic", "name": "gen", "machine_type": "fan", "section": 0,
              "seed": 7, "channels": args.machines, "realtime": realtime,
              "duration_seconds": seconds}  # fmt: skip
    decision = {"k": 1, "n": 1, "m_close": 1}
    machines = [
        {
            "name": f"pump-{channel + 1}",
            "source": "gen",
            "channel": channel,
            "calibration": str(calibration),
            "decision": decision,
        }
        for channel in range(args.machines)
    ]
    return {
        "device_id": folder.name,
        "model": args.model,
        "engine": {"threads": args.threads},
        "audio": {"sources": [source]},
        "machines": machines,
        "mqtt": {"host": "127.0.0.1", "port": port, "topic_prefix": "soak"},
        "outbox": {"path": str(folder / "outbox.sqlite")},
        "metrics": {"stats_interval_seconds": 2},
    }


def sample_rss(process: subprocess.Popen, watcher: Watcher) -> list[tuple[int, float]]:
    """(windows scored per the latest stats, VmRSS MB) every second until the process ends."""
    samples = []
    while process.poll() is None:
        rss = vm_rss_mb(process.pid)
        if rss is not None:
            samples.append((watcher.last_stats().get("windows_scored") or 0, rss))
        time.sleep(1.0)
    return samples


def vm_rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024.0 if match else None


def rss_figures(samples: list[tuple[int, float]], warmup_windows: int) -> dict:
    """RSS after the warm-up and at the end, and its trend (MB per 1000 windows)."""
    after = [(w, rss) for w, rss in samples if w >= warmup_windows]
    if len(after) < 2:
        return {"rss_after_warmup_mb": float("nan"), "rss_end_mb": float("nan")}
    windows, rss = np.array(after, dtype=np.float64).T
    slope = np.polyfit(windows, rss, 1)[0] * 1000 if np.ptp(windows) > 0 else 0.0
    return {
        "rss_after_warmup_mb": round(float(rss[0]), 1),
        "rss_end_mb": round(float(rss[-1]), 1),
        "rss_peak_mb": round(float(rss.max()), 1),
        "rss_trend_mb_per_1000_windows": round(float(slope), 3),
    }


class Watcher:
    """A subscriber to one device's topics: event seqs and the latest stats."""

    def __init__(self, port: int, base: str) -> None:
        self.port, self.base = port, base
        self._lock = threading.Lock()
        self._seqs: set[int] = set()
        self._stats: dict = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{base}/#", qos=1)
        self.client.on_message = self._on_message

    def start(self) -> Watcher:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            if message.topic.endswith("/event"):
                self._seqs.add(json.loads(message.payload)["seq"])
            elif message.topic == f"{self.base}/stats":
                self._stats = json.loads(message.payload)

    def seqs(self) -> set[int]:
        with self._lock:
            return set(self._seqs)

    def last_stats(self) -> dict:
        with self._lock:
            return dict(self._stats)

    def wait_for_seqs(self, seqs: set[int], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not seqs <= self.seqs() and time.monotonic() < deadline:
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
