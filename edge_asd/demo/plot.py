"""The demo's score trace: scores against the threshold, with the injected faults shaded."""

from __future__ import annotations

from pathlib import Path

from edge_asd.demo.live import Summary
from edge_asd.demo.scenario import WINDOW_SECONDS, Scenario


def plot_trace(
    scores: list[tuple[float, float, float]], scenario: Scenario, summary: Summary, path: Path
) -> Path:
    """Write a PNG of (stream seconds, score, threshold) rows; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 4), dpi=100)
    if scores:
        times, values, thresholds = zip(*scores, strict=True)
        axes.plot(times, values, lw=1.2, label="window score")
        axes.step(times, thresholds, where="post", color="black", ls="--", label="threshold")
    for i, fault in enumerate(scenario.faults):
        axes.axvspan(
            fault.start_s,
            fault.end_s,
            color="tab:red",
            alpha=0.25,
            label="injected fault" if i == 0 else None,
        )
        axes.axvspan(fault.end_s, fault.end_s + WINDOW_SECONDS, color="tab:red", alpha=0.08)
        axes.annotate(
            fault.kind,
            (fault.start_s, 1.0),
            xycoords=("data", "axes fraction"),
            va="top",
            fontsize=8,
        )
    for d in summary.detections:
        if d.alert and d.alert.stream_seconds is not None:
            axes.axvline(d.alert.stream_seconds, color="tab:green", lw=1.5)
    for alert in summary.false_alarms:
        axes.axvline(alert.stream_seconds, color="tab:orange", lw=1.5)
    axes.set_xlabel("stream time (s): each score is the 10 s window ending there")
    axes.set_ylabel("anomaly score")
    axes.set_title("edge-asd demo: green = MQTT alert, orange = false alarm")
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
