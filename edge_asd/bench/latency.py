"""Per-window latency and throughput of engines, measured round-robin in one run.

Every subject scores consecutive windows of one long generated signal at a 1 s hop, as
the daemon would, each from its own position (so a subject that keeps frames between
windows of a stream reuses them as in the daemon). The subjects take turns call by call,
so a machine that gets busier or quieter during the run slows them all alike, and their
ratios hold even where the absolute numbers do not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edge_asd.audio import SAMPLE_RATE, WINDOW_SAMPLES

BATCH_SIZES = (1, 4, 16)
SIGNAL_SECONDS = 60.0  # generated once, repeated as far as the windows asked for go
# Between two timed calls: threads a subject leaves spinning (onnxruntime's stock
# options do) must not run into the next subject's call and its CPU time.
PAUSE_SECONDS = 0.02


@dataclass(frozen=True)
class Subject:
    """Something that scores windows: `run(windows [B, W] float32, end_frames [B] int64)`.

    `end_frames` are the windows' exclusive ends in their stream (named `stream`).
    """

    label: str
    run: Callable[[np.ndarray, np.ndarray], object]
    stream: str = "bench"


@dataclass(frozen=True)
class LatencyResult:
    """One subject at one batch size: call latency percentiles (ms, a whole batch),
    windows per second over all timed calls, and the CPU time this process spent per
    window (all its threads: what the work costs, whatever else the machine runs)."""

    label: str
    batch: int
    p50_ms: float
    p95_ms: float
    windows_per_second: float
    calls: int
    cpu_ms_per_window: float | None = None

    @property
    def per_window_ms(self) -> float:
        return self.p50_ms / self.batch


class _Signal:
    """Windows of a repeated generated clip at a 1 s hop, window k ending at W + k * hop."""

    def __init__(self, window_samples: int, hop_samples: int, max_windows: int) -> None:
        from edge_asd.synth import render_clip

        clip = render_clip("fan", 0, "source", SIGNAL_SECONDS, seed=42)
        length = window_samples + (max_windows - 1) * hop_samples
        self.samples = np.resize(clip, length).astype(np.float32)
        self.window_samples, self.hop_samples = window_samples, hop_samples

    def windows(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        starts = (first + np.arange(count)) * self.hop_samples
        view = np.lib.stride_tricks.sliding_window_view(self.samples, self.window_samples)
        return np.ascontiguousarray(view[starts]), starts + self.window_samples


def measure_latency(
    subjects: Sequence[Subject],
    batch_sizes: Sequence[int] = BATCH_SIZES,
    calls: int = 10,
    warm_up_calls: int = 1,
    window_samples: int = WINDOW_SAMPLES,
    progress: Callable[[str], None] | None = None,
) -> list[LatencyResult]:
    """Time `calls` calls of every subject at every batch size, subjects taking turns.

    Each subject walks through the signal's windows in order from window 0; the first
    `warm_up_calls` calls per batch size are not timed.
    """
    per_subject = sum((calls + warm_up_calls) * b for b in batch_sizes)
    signal = _Signal(window_samples, SAMPLE_RATE, per_subject)
    cursor = {subject.label: 0 for subject in subjects}
    results = []
    for batch in batch_sizes:
        times: dict[str, list[float]] = {subject.label: [] for subject in subjects}
        cpu: dict[str, float] = {subject.label: 0.0 for subject in subjects}
        for call in range(calls + warm_up_calls):
            for subject in subjects:
                windows, ends = signal.windows(cursor[subject.label], batch)
                cursor[subject.label] += batch
                started, started_cpu = time.perf_counter(), time.process_time()
                subject.run(windows, ends)
                if call >= warm_up_calls:
                    times[subject.label].append(time.perf_counter() - started)
                    cpu[subject.label] += time.process_time() - started_cpu
                time.sleep(PAUSE_SECONDS)
        for subject in subjects:
            seconds = np.asarray(times[subject.label])
            results.append(
                LatencyResult(
                    label=subject.label,
                    batch=batch,
                    p50_ms=float(np.percentile(seconds, 50) * 1000),
                    p95_ms=float(np.percentile(seconds, 95) * 1000),
                    windows_per_second=float(batch * len(seconds) / seconds.sum()),
                    calls=len(seconds),
                    cpu_ms_per_window=1000 * cpu[subject.label] / (batch * len(seconds)),
                )
            )
        if progress is not None:
            progress(f"batch {batch}: done")
    return results
