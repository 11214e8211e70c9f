"""The microphone fails, disappears and comes back while `edge-asd run` captures from it.

The ALSA virtual microphone (tests/harness/alsa.py) reads its samples from `infile`; here
that file is a named pipe that this test feeds at the real rate, so the test controls
the device as a cable would: stop feeding (the device hangs: PortAudio gets no audio),
remove the pipe (the device is gone: opening it fails), put it back (plugged in again).
The daemon must say `unknown` for the machine, explain in `stats`, retry opening with a
growing delay, score again once audio is back, and never crash.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tests.harness.broker import Broker, Collector
from tests.harness.daemon_process import DaemonProcess, flapping_calibration, write_config
from tests.system.test_daemon import config_dict, texts

pytestmark = [pytest.mark.system, pytest.mark.slow]

BLOCK_FRAMES = 1600  # 0.1 s at 16 kHz
RETRY = re.compile(
    r"^(\S+ \S+) WARNING edge_asd\.capture\.device: cannot open input device.*retrying$", re.M
)


class PipeMicrophone:
    """Feeds int16 samples into the microphone's named pipe at the real rate, in a thread.

    `pause()`: stop feeding but keep the pipe open (the device hangs); `unplug()`: close
    it (with the pipe renamed away, the device is gone); `plug()`: feed again.
    """

    def __init__(self, pipe: Path, samples_int16: np.ndarray) -> None:
        self.pipe = pipe
        self.blocks = [
            samples_int16[i : i + BLOCK_FRAMES].tobytes()
            for i in range(0, len(samples_int16) - BLOCK_FRAMES + 1, BLOCK_FRAMES)
        ]
        self.feeding = threading.Event()
        self.plugged = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PipeMicrophone:
        self.feeding.set()
        self.plugged.set()
        self.thread.start()
        return self

    def pause(self) -> None:
        self.feeding.clear()

    def unplug(self) -> None:
        self.plugged.clear()

    def plug(self) -> None:
        self.feeding.set()
        self.plugged.set()

    def stop(self) -> None:
        self.stopping.set()
        self.plugged.clear()
        with contextlib.suppress(OSError):  # a writer blocked in open() waits for a reader
            os.close(os.open(self.pipe, os.O_RDONLY | os.O_NONBLOCK))
        self.thread.join(timeout=5)

    def _run(self) -> None:
        index = 0
        while not self.stopping.is_set():
            if not self.plugged.wait(0.05):
                continue
            try:
                with open(self.pipe, "wb", buffering=0) as pipe:  # blocks until ALSA reads
                    index = self._feed(pipe, index)
            except (BrokenPipeError, FileNotFoundError):
                time.sleep(0.02)  # PortAudio probed the device and closed it: open again

    def _feed(self, pipe, index: int) -> int:
        started, sent = time.monotonic(), 0
        while self.plugged.is_set() and not self.stopping.is_set():
            if not self.feeding.is_set():
                time.sleep(0.02)
                started, sent = time.monotonic(), 0
                continue
            pipe.write(self.blocks[index % len(self.blocks)])
            index, sent = index + 1, sent + 1
            time.sleep(max(0.0, started + sent * BLOCK_FRAMES / 16000 - time.monotonic()))
        return index


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


def last_stats(collector: Collector) -> dict:
    stats = texts(collector, "stats")
    return json.loads(stats[-1]) if stats else {}


def input_says(collector: Collector, state: str, reason: str):
    def check(_messages) -> bool:
        mic = last_stats(collector).get("inputs", {}).get("in", {})
        return mic.get("state") == state and reason in (mic.get("last_error") or "")

    return check


def scored_since(collector: Collector, count: int):
    return lambda _messages: any(
        s in ("normal", "anomaly") for s in texts(collector, "pump-1/state")[count:]
    )


def test_a_failing_then_unplugged_microphone_is_unknown_retried_and_scored_again(
    flapping, virtual_mic, mqtt_broker: Broker, mqtt_collector: Collector, tmp_path: Path
):
    from edge_asd.audio import read_audio

    samples = read_audio(flapping["folder"] / "rec.wav").samples
    mic = virtual_mic(samples[:BLOCK_FRAMES], sample_rate=16000)  # HOME, .asoundrc
    pipe, hidden = mic.home / "mic.raw", mic.home / "unplugged.raw"
    pipe.unlink()
    os.mkfifo(pipe)
    feeder = PipeMicrophone(pipe, np.round(samples[:, 0] * 32767).astype("<i2")).start()
    source = {"kind": "device", "device": mic.name, "channels": 1, "stall_seconds": 1.0}
    calibration = flapping["folder"] / "calibration.yaml"
    config = config_dict(flapping["model"], calibration, tmp_path, mqtt_broker.port, source)
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")
    try:
        mqtt_collector.wait_for(scored_since(mqtt_collector, 0), timeout_s=120)

        feeder.pause()  # the device hangs: no audio
        mqtt_collector.wait_for(
            lambda ms: texts(mqtt_collector, "pump-1/state")[-1] == "unknown", timeout_s=20
        )
        mqtt_collector.wait_for(input_says(mqtt_collector, "reopening", "no audio"), 20)

        pipe.rename(hidden)  # the device is gone
        feeder.unplug()
        daemon.wait_for_log(lambda d: len(RETRY.findall(d.log())) >= 3, timeout_s=40)
        mqtt_collector.wait_for(
            input_says(mqtt_collector, "reopening", "cannot open input device"), 10
        )
        assert texts(mqtt_collector, "pump-1/state")[-1] == "unknown"
        states_before_return = len(texts(mqtt_collector, "pump-1/state"))

        hidden.rename(pipe)  # plugged in again
        feeder.plug()
        mqtt_collector.wait_for(scored_since(mqtt_collector, states_before_return), 60)
        mqtt_collector.wait_for(input_says(mqtt_collector, "running", ""), timeout_s=10)
        assert daemon.terminate() == 0  # it never crashed
    finally:
        daemon.ensure_dead()
        feeder.stop()

    stats = last_stats(mqtt_collector)
    assert stats["inputs"]["in"]["reopens"] >= 1
    assert stats["windows_scored"] > 0
    retries = [datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f") for t in RETRY.findall(daemon.log())]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(retries)]
    assert all(later > 1.5 * earlier for earlier, later in itertools.pairwise(gaps)), gaps
    print(f"retries to open the unplugged microphone {gaps} s apart (backoff)")
    assert "Traceback" not in daemon.log()
