"""The demo's MQTT subscriber: prints each window's score and each alert as it arrives.

Scores carry `stream_seconds` (where the window ends in the generated stream); an event
carries `started_at`, the time stamp of the window that opened it, which is also that
window's score `ts`. The event is published before its window's score, so an alert is
printed (and placed on the stream) when the score with the same `ts` arrives.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

import paho.mqtt.client as mqtt

from edge_asd.demo.scenario import Scenario
from edge_asd.synth import Fault

BAR_WIDTH = 40
BAR_THRESHOLD_AT = 24  # the threshold sits at this column of the bar


@dataclass
class Alert:
    """An event message as the subscriber got it."""

    type: str
    event_id: str
    started_at: str
    score: float
    arrived_unix: float
    stream_seconds: float | None = None
    clip: str | None = None  # the event's FLAC on the device (edge_asd.evidence)


@dataclass
class Detection:
    """A fault and the first alert that started during it (None: missed)."""

    fault: Fault
    alert: Alert | None

    @property
    def delay_seconds(self) -> float | None:
        if self.alert is None or self.alert.stream_seconds is None:
            return None
        return self.alert.stream_seconds - self.fault.start_s


@dataclass
class Summary:
    detections: list[Detection]
    false_alarms: list[Alert]
    windows: int

    @property
    def all_detected(self) -> bool:
        return all(d.alert is not None for d in self.detections)


@dataclass
class LiveView:
    """Subscribes to one device's topics and keeps (and prints) what the demo shows."""

    scenario: Scenario
    base_topic: str  # {prefix}/{device_id}
    machine: str
    out: TextIO = sys.stdout
    scores: list[tuple[float, float, float]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    available: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Alert] = []
        self._stopped = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edge-asd-demo-view")
        self.client.on_connect = lambda c, *a: c.subscribe(f"{self.base_topic}/#", qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message

    def start(self, port: int) -> None:
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the demo's subscriber could not subscribe to its broker")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_stopped(self, timeout_s: float) -> bool:
        """Wait for the daemon's retained `available` to say `stopped`."""
        return self._stopped.wait(timeout_s)

    def _on_message(self, client, userdata, message) -> None:
        topic = message.topic[len(self.base_topic) + 1 :]
        with self._lock:
            if topic == "available":
                self.available.append(message.payload.decode())
                if self.available[-1] == "stopped":
                    self._stopped.set()
            elif topic == f"{self.machine}/score":
                self._on_score(json.loads(message.payload))
            elif topic == f"{self.machine}/event":
                payload = json.loads(message.payload)
                alert = Alert(
                    payload["type"],
                    payload["event_id"],
                    payload["started_at"],
                    payload["score"],
                    time.time(),
                    clip=payload.get("clip"),
                )
                self.alerts.append(alert)
                self._pending.append(alert)

    def _on_score(self, payload: dict) -> None:
        stream_s, score, threshold = (
            payload["stream_seconds"],
            payload["score"],
            payload["threshold"],
        )
        score = float("nan") if score is None else score
        self.scores.append((stream_s, score, threshold))
        self._print_score(stream_s, score, threshold)
        for alert in [a for a in self._pending if a.started_at <= payload["ts"]]:
            alert.stream_seconds = stream_s if alert.type == "start" else None
            self._pending.remove(alert)
            self._print_alert(alert)

    def _print_score(self, stream_s: float, score: float, threshold: float) -> None:
        filled = 0 if not threshold or score != score else score / threshold * BAR_THRESHOLD_AT
        cells = min(BAR_WIDTH, max(0, round(filled)))
        bar = "".join(
            "|" if i == BAR_THRESHOLD_AT else ("#" if i < cells else " ") for i in range(BAR_WIDTH)
        )
        fault = self.scenario.fault_for(stream_s)
        note = f"  <- {fault.kind} in this window" if fault else ""
        above = "ABOVE" if score > threshold else "     "
        print(f"  {stream_s:6.1f} s  {score:8.4f}  [{bar}] {above}{note}", file=self.out)

    def _print_alert(self, alert: Alert) -> None:
        if alert.type != "start":
            print(f"  >>> MQTT event {alert.type}: {alert.event_id[:8]}", file=self.out)
            return
        fault = self.scenario.fault_for(alert.stream_seconds or 0.0)
        if fault is None:
            print(
                f"  >>> MQTT ALERT {alert.event_id[:8]}: no fault here (a false alarm)",
                file=self.out,
            )
            self._print_clip(alert)
            return
        delay = (alert.stream_seconds or 0.0) - fault.start_s
        print(
            f"  >>> MQTT ALERT {alert.event_id[:8]}: {fault.kind} fault detected "
            f"{delay:.1f} s after it began",
            file=self.out,
        )
        self._print_clip(alert)

    def _print_clip(self, alert: Alert) -> None:
        if alert.clip:
            print(f"      its sound: {alert.clip} (and event.png beside it)", file=self.out)

    def summary(self) -> Summary:
        """Each fault with its first alert, and the alerts no fault explains."""
        with self._lock:
            starts = [a for a in self.alerts if a.type == "start" and a.stream_seconds is not None]
            windows = len(self.scores)
        detections, false_alarms = [], []
        for fault in self.scenario.faults:
            mine = [a for a in starts if self.scenario.fault_for(a.stream_seconds) is fault]
            detections.append(Detection(fault, mine[0] if mine else None))
        for alert in starts:
            if self.scenario.fault_for(alert.stream_seconds) is None:
                false_alarms.append(alert)
        return Summary(detections, false_alarms, windows)


def print_summary(summary: Summary, out: TextIO = sys.stdout) -> None:
    """The closing lines: faults injected and detected (with delay), false alarms."""
    detected = sum(d.alert is not None for d in summary.detections)
    print(f"\nwindows scored: {summary.windows}", file=out)
    print(f"faults injected: {len(summary.detections)}, detected: {detected}", file=out)
    for d in summary.detections:
        when = f"{d.fault.start_s:.0f}-{d.fault.end_s:.0f} s"
        verdict = f"alert after {d.delay_seconds:.1f} s" if d.alert else "MISSED"
        print(f"  {d.fault.kind:<15} {when:<12} {verdict}", file=out)
    print(f"false alarms: {len(summary.false_alarms)}", file=out)
