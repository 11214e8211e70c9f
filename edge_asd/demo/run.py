"""The demo's orchestration: model, calibration, broker, daemon, live view, summary."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from edge_asd.demo.live import LiveView, Summary, print_summary
from edge_asd.demo.plot import plot_trace
from edge_asd.demo.scenario import Scenario
from edge_asd.errors import EXIT_RUNTIME, UserError
from edge_asd.mosquitto import Broker
from edge_asd.synth import MachineSynth, section_profile, write_wav

DEVICE_ID = "demo"
MACHINE = "fan-1"
TOPIC_PREFIX = "edge-asd"
CALIBRATION_RECORDINGS = 6
CALIBRATION_SECONDS = 40.0


@dataclass(frozen=True)
class DemoOptions:
    scenario: Scenario
    work_dir: Path
    model_dir: Path
    scorer: str
    threshold_args: tuple[str, ...]
    threads: int
    png_path: Path


def calibrate(options: DemoOptions) -> Path:
    """Calibrate MACHINE on generated normal recordings of the scenario's machine.

    The recordings use other seeds than the live stream: the daemon then hears sound the
    calibration has never heard, as on a real machine.
    """
    from edge_asd.cli import main as cli_main

    scenario = options.scenario
    folder = options.work_dir / "normal"
    folder.mkdir(parents=True, exist_ok=True)
    profile = section_profile(scenario.machine_type, scenario.section)
    for i in range(CALIBRATION_RECORDINGS):
        synth = MachineSynth(profile, seed=scenario.seed + 1000 + i)
        write_wav(folder / f"normal_{i:02d}.wav", synth.render(int(CALIBRATION_SECONDS * 16000)))
    out = options.work_dir / "calibration" / "calibration.yaml"
    label = f"{scenario.machine_type}/section_{scenario.section:02d}"
    args = ["calibrate", "--model", str(options.model_dir), "--machine", MACHINE]
    args += ["--label", label, "--input", str(folder), "--scorer", options.scorer]
    args += [*options.threshold_args, "--hop-seconds", str(scenario.hop_seconds)]
    args += ["--threads", str(options.threads), "--out", str(out)]
    print(
        f"\ncalibrating on {CALIBRATION_RECORDINGS} x {CALIBRATION_SECONDS:.0f} s of normal sound"
    )
    code = cli_main(args)
    if code != 0:
        raise UserError(f"calibration failed (exit {code})", code)
    return out


def daemon_config(options: DemoOptions, calibration: Path, port: int) -> Path:
    """The daemon's YAML config for the scenario: a synthetic source with its faults."""
    scenario = options.scenario
    source = {
        "kind": "synthetic",
        "name": "synth",
        "machine_type": scenario.machine_type,
        "section": scenario.section,
        "seed": scenario.seed,
        "realtime": scenario.realtime,
        "duration_seconds": scenario.duration_s,
        "faults": [
            {"kind": f.kind, "start_s": f.start_s, "end_s": f.end_s, "strength": f.strength}
            for f in scenario.faults
        ],
    }
    config = {
        "device_id": DEVICE_ID,
        "model": str(options.model_dir),
        "engine": {"kind": "onnxruntime", "threads": options.threads},
        "audio": {"hop_seconds": scenario.hop_seconds, "sources": [source]},
        "machines": [
            {"name": MACHINE, "source": "synth", "channel": 0, "calibration": str(calibration)}
        ],
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "topic_prefix": TOPIC_PREFIX,
            "publish_scores": True,
        },
        "outbox": {"path": str(options.work_dir / "outbox.sqlite")},
        "metrics": {"stats_interval_seconds": 30},
    }
    path = options.work_dir / "daemon.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_live(options: DemoOptions, calibration: Path) -> tuple[LiveView, Summary]:
    """Start a broker, the subscriber and the daemon; print until the stream ends."""
    scenario = options.scenario
    broker = Broker(options.work_dir / "broker").start()
    view = LiveView(scenario, f"{TOPIC_PREFIX}/{DEVICE_ID}", MACHINE)
    daemon = None
    try:
        view.start(broker.port)
        config = daemon_config(options, calibration, broker.port)
        log_path = options.work_dir / "daemon.log"
        pace = "in real time" if scenario.realtime else "as fast as it can be scored"
        print(
            f"\nbroker on 127.0.0.1:{broker.port}; daemon log: {log_path}\n"
            f"playing {scenario.duration_s:.0f} s of {scenario.machine_type} sound {pace}; "
            f"faults: " + ", ".join(f"{f.kind} at {f.start_s:.0f} s" for f in scenario.faults)
        )
        print("  stream     score   [score bar; '|' is the threshold]")
        with open(log_path, "ab") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "edge_asd.cli", "run", "--config", str(config)],
                stdout=log,
                stderr=log,
            )
        wait_for_daemon(daemon, view, scenario, log_path)
        time.sleep(0.5)  # the last score messages (QoS 0) after `stopped`
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        view.stop()
        broker.stop()
    return view, view.summary()


def wait_for_daemon(
    daemon: subprocess.Popen, view: LiveView, scenario: Scenario, log: Path
) -> None:
    """Until the daemon has published `stopped` and exited; UserError when it fails."""
    budget_s = scenario.duration_s * (1.5 if scenario.realtime else 10.0) + 120.0
    deadline = time.monotonic() + budget_s
    while daemon.poll() is None:
        if time.monotonic() > deadline:
            raise UserError(
                f"the daemon did not finish in {budget_s:.0f} s; see {log}", EXIT_RUNTIME
            )
        time.sleep(0.2)
    if daemon.returncode != 0:
        raise UserError(f"the daemon exited with {daemon.returncode}; see {log}", EXIT_RUNTIME)
    view.wait_stopped(5.0)


def run_demo(options: DemoOptions) -> Summary:
    """The whole demo after the model exists; returns the summary (also printed)."""
    calibration = calibrate(options)
    view, summary = run_live(options, calibration)
    print_summary(summary)
    plot_trace(view.scores, options.scenario, summary, options.png_path)
    print(f"score trace: {options.png_path}")
    return summary
