"""`edge-asd run` as a real subprocess, with its log kept for assertions."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
EDGE_ASD = REPO_ROOT / ".venv" / "bin" / "edge-asd"
SEQ = re.compile(r": event (start|update|end) \S+ \(seq (\d+)")


def write_config(folder: Path, config: dict, name: str = "daemon.yaml") -> Path:
    """Write a daemon config dict as YAML in `folder`; returns its path."""
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class DaemonProcess:
    """One `edge-asd run --config FILE` process; its stderr goes to `log_path`.

    `wrapper` is a command the daemon is run under (e.g. `unshare` with its arguments).
    """

    def __init__(
        self, config_path: Path, log_path: Path, env: dict | None = None, wrapper: tuple = ()
    ) -> None:
        self.config_path = config_path
        self.log_path = log_path
        command = [str(EDGE_ASD)] if EDGE_ASD.exists() else [sys.executable, "-m", "edge_asd.cli"]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*wrapper, *command, "run", "--config", str(config_path)],
                stdout=log,
                stderr=log,
                env={**os.environ, **(env or {})},
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logged_seqs(self) -> list[int]:
        """The seq of every event the daemon logged (it logs once the outbox holds it)."""
        return [int(match.group(2)) for match in SEQ.finditer(self.log())]

    def wait_for_log(self, predicate, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the daemon exited ({self.process.returncode}):\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"log condition not met in {timeout_s} s:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def ensure_dead(self) -> None:
        if self.process.poll() is None:
            self.kill()


def flapping_calibration(model: Path, folder: Path, seconds: float = 40.0) -> dict[str, Path]:
    """`rec.wav` (normal fan sound) and `calibration.yaml` in `folder` for `model`.

    The calibration (made by the functions `edge-asd calibrate` runs, knn scorer) gets the
    median of the recording's own window scores as its threshold: about every other window
    of a replay is above it, so a 1-of-1 decider opens and closes events every few windows
    whatever the model has learnt. For tests of delivery, not of detection.
    """
    from dataclasses import replace

    import numpy as np

    from edge_asd.calibration.file import save_calibration
    from edge_asd.engines import open_engine
    from edge_asd.recording import stream_windows
    from edge_asd.scoring.offline import score_windows
    from edge_asd.synth import render_clip, write_wav
    from tests.harness.calibration import calibrate_files

    write_wav(folder / "rec.wav", render_clip("fan", 0, "source", seconds, seed=3))
    # Delivery, not detection: a knn this model cannot make see faults is fine here.
    result = calibrate_files(
        model, [folder / "rec.wav"], machine="pump-1", scorer="knn", refuse_blind=False
    )
    calibration = result.calibration
    engine = open_engine(model, threads=2)
    try:
        window = engine.info.window_samples
        batches = stream_windows([folder / "rec.wav"], window_samples=window, hop_samples=16000)
        scores = score_windows(engine, calibration.detector, batches).scores
    finally:
        engine.close()
    calibration = replace(calibration, threshold=float(np.median(scores)))
    save_calibration(calibration, folder / "calibration.yaml")
    return {"model": Path(model), "folder": folder}


def flapping_config(
    flapping: dict[str, Path],
    folder: Path,
    mqtt: dict,
    *,
    decision: dict | None = None,
    realtime: bool = False,
    source: str = "rec",
    **sections: dict,
) -> dict:
    """A daemon config replaying `flapping_calibration`'s recording in a loop to machine
    `pump-1` (`decision` overrides its k-of-n), with the outbox in `folder`; `mqtt` adds
    to the broker section (host 127.0.0.1), `sections` add top-level sections (metrics,
    maintenance, ...)."""
    recording = {"kind": "file", "name": source, "path": str(flapping["folder"] / "rec.wav"),
                 "realtime": realtime, "loop": True}  # fmt: skip
    machine = {"name": "pump-1", "source": source,
               "calibration": str(flapping["folder"] / "calibration.yaml")}  # fmt: skip
    if decision is not None:
        machine["decision"] = decision
    return {
        "device_id": "dev-1",
        "model": str(flapping["model"]),
        "audio": {"sources": [recording]},
        "machines": [machine],
        "mqtt": {"host": "127.0.0.1", **mqtt},
        "outbox": {"path": str(folder / "outbox.sqlite")},
        **sections,
    }
