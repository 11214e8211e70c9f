"""What the local page costs the daemon: CPU and RSS with the page off, on with nobody
looking, and on with one headless browser watching it, side by side.

    .venv/bin/python benchmarks/bench_web.py [--model DIR] [--machines 4] [--seconds 60]
        [--fast-seconds 300] [--threads 2]

Two sets of three `edge-asd run` processes, against a private mosquitto, measured from
outside by edge_asd.bench.daemon (/proc of the daemon's process; the browser's own CPU is
not the daemon's and is not counted):
- real time: `--machines` machines (channels of one generated recording) replayed at the
  sample rate for `--seconds` after the first score: the daemon's steady CPU share and RSS;
- as fast as possible: one machine through a `--fast-seconds` recording: windows scored
  per second, which drops if serving the page takes time from scoring.
"On" serves the page (edge_asd/web) with a password; "watched" also has headless Debian
chromium (tests/harness/browser.py) keep it open, polling the API as the page does (status and
machines every second, the selected machine's trace every second, its spectrogram every
2 s, events every 5 s). Without --model the demo's model (full size ST-gram +
MobileFaceNet, `edge-asd demo`'s cache) is used.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from edge_asd.bench import workspace  # noqa: E402
from edge_asd.bench.daemon import DaemonResult, run_daemon  # noqa: E402
from edge_asd.mosquitto import Broker, free_port  # noqa: E402
from tests.harness.browser import chromium_missing, headless_chromium, open_page  # noqa: E402

PASSWORD_ENV = "EDGE_ASD_BENCH_WEB_PASSWORD"
PASSWORD = "bench-page-password"


class Watcher(threading.Thread):
    """Headless chromium that opens the page once the daemon serves it, until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.opened_at: float | None = None
        self.error: str | None = None

    def run(self) -> None:
        import socket

        try:
            with headless_chromium() as driver:
                while not self.stop.is_set():
                    try:
                        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                        break
                    except OSError:
                        time.sleep(0.2)
                url = f"http://127.0.0.1:{self.port}/"
                open_page(driver, url, "edge-asd", PASSWORD)
                self.opened_at = time.monotonic()
                self.stop.wait()
        except Exception as exc:  # reported beside the numbers, not a traceback
            self.error = f"{type(exc).__name__}: {exc}"


MODES = ("off", "on", "watched")  # the page off; on, nobody looking; on, a browser watching


def measure(label: str, config: Path, broker: Broker, mode: str, **kwargs) -> DaemonResult:
    """One daemon run with the page in `mode` (one of MODES)."""
    data = yaml.safe_load(config.read_text())
    watcher = None
    if mode != "off":
        port = free_port()
        data["web"] = {"enabled": True, "port": port, "password_env": PASSWORD_ENV}
    if mode == "watched":
        watcher = Watcher(port)
        watcher.start()
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    os.environ[PASSWORD_ENV] = PASSWORD  # inherited by the daemon
    try:
        result = run_daemon(label, config, broker.port, config.with_suffix(".log"), **kwargs)
    finally:
        if watcher is not None:
            watcher.stop.set()
            watcher.join(30)
    if watcher is not None and (watcher.error or watcher.opened_at is None):
        raise RuntimeError(f"{label}: the browser did not watch the page: {watcher.error}")
    return result


def ratio(on: float | None, off: float | None) -> str:
    return "–" if on is None or not off else f"{on / off:.2f}"


def number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def report(runs: list[tuple[str, DaemonResult, DaemonResult, DaemonResult]]) -> str:
    rows = [
        "| run | measure | page off | page on, nobody looking | page on, a browser watching "
        "| watched / off |",
        "|---|---|---|---|---|---|",
    ]
    for name, off, idle, watched in runs:
        measures = [
            ("daemon CPU, % of one core", _core_percent, 1),
            ("daemon CPU ms per window", lambda r: r.cpu_ms_per_window, 1),
            ("steady RSS, MB", lambda r: r.steady_rss_mb, 0),
            ("peak RSS, MB", lambda r: r.peak_rss_mb, 0),
            ("windows scored per second", lambda r: r.windows_per_second, 2),
        ]
        for measure_name, read, digits in measures:
            cells = " | ".join(number(read(r), digits) for r in (off, idle, watched))
            rows.append(
                f"| {name} | {measure_name} | {cells} | {ratio(read(watched), read(off))} |"
            )
    return "\n".join(rows)


def _core_percent(result: DaemonResult) -> float | None:
    return None if result.cpu_share is None else 100 * result.cpu_share * result.cores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (default: the demo's model)")
    parser.add_argument("--machines", type=int, default=4, help="machines in the real-time run")
    parser.add_argument("--seconds", type=float, default=60.0, help="real-time run length")
    parser.add_argument("--fast-seconds", type=float, default=1800.0, help="fast run's audio")
    parser.add_argument("--threads", type=int, default=2, help="engine threads")
    args = parser.parse_args()
    missing = chromium_missing()
    if missing:
        print(f"bench_web: {missing}", file=sys.stderr)
        return 2
    if args.model is None:
        from edge_asd.demo.model import default_cache_dir, ensure_demo_model

        args.model = ensure_demo_model(default_cache_dir(), "fan")
    model = Path(args.model)
    with tempfile.TemporaryDirectory(prefix="edge-asd-bench-web-") as folder:
        work = Path(folder)
        names = [f"m{i}" for i in range(args.machines)]
        print("generating recordings and calibrations", file=sys.stderr)
        calibrations = workspace.write_calibrations(model, work / "calibration", names)
        live = workspace.write_recording(
            work / "live.wav", 10.0 + args.seconds + 10.0, args.machines, seed=50
        )
        fast = workspace.write_recording(work / "fast.wav", args.fast_seconds)
        engine = {"threads": args.threads}
        broker = Broker(work / "broker").start()
        pairs = []
        try:
            for name, audio, machines, realtime in (
                (f"{args.machines} machines, real time", live, calibrations, True),
                ("1 machine, as fast as possible", fast, {names[0]: calibrations[names[0]]},
                 False),
            ):  # fmt: skip
                results = []
                for mode in MODES:
                    print(f"{name}: page {mode}", file=sys.stderr)
                    source = {"kind": "file", "path": str(audio), "realtime": realtime}
                    config = workspace.write_config(
                        work / f"run-{len(pairs)}-{mode}.yaml",
                        model, source, machines, broker.port, engine,
                    )  # fmt: skip
                    results.append(
                        measure(name, config, broker, mode, max_seconds=900.0,
                                measure_seconds=args.seconds if realtime else None)
                    )  # fmt: skip
                pairs.append((name, *results))
        finally:
            broker.stop()
    print(f"model {model}, engine threads {args.threads}, {os.cpu_count()} cores")
    print(report(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
