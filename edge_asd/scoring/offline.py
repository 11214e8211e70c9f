"""Scoring a recording offline, window by window, exactly as the daemon scores it live.

The windows of a streamed recording (edge_asd.recording) go through the engine as one
stream (`Engine.infer_streams`, so a frame shared by overlapping windows is computed
once, as in the daemon), become `WindowFeatures` and are scored by the machine's
detector; the decider then runs over the scores in order. So `edge-asd score` on a file
says what the daemon would have said listening to it, and memory does not grow with the
recording's length (a few bytes a window are kept: its score, end and level).

A recording's verdict (`verdict`) is the decider's: does k of n open an event? A
recording with fewer than n windows (shorter than the confirmation span, window + (n-1)
hops: 14 s for 3 of 5 at 1 s hops) cannot hold the n windows the daemon always has in
view, and with fewer than k windows no event could ever open: a 10 s DCASE clip would be
"normal" whatever it sounds like. Such a recording is judged by the same share of its
windows: at least ceil(k * w / n) of its w windows above the threshold (1 of 1 for a
10 s clip, 2 of 3 for 12 s), and the verdict says which rule gave it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from edge_asd.decider import START, Decider, DecisionEvent
from edge_asd.engines.base import Engine
from edge_asd.recording import WindowBatch
from edge_asd.scoring.detector import Detector
from edge_asd.scoring.features import WindowFeatures, window_features


@dataclass(frozen=True)
class WindowScores:
    """A recording's windows: `scores` [W], `end_seconds` [W] (each window's end in the
    recording) and `level_db` [W] (each window's level, edge_asd.scoring.features)."""

    scores: np.ndarray
    end_seconds: np.ndarray
    level_db: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def stream_features(
    engine: Engine, batches: Iterable[WindowBatch], stream: str = "offline"
) -> Iterator[tuple[WindowFeatures, np.ndarray]]:
    """(features, ends in s) of each batch of one recording's windows, as the daemon
    computes them (see the module); the engine forgets the stream at the end."""
    try:
        for batch in batches:
            streams = [stream] * len(batch)
            output = engine.infer_streams(batch.waveforms, streams, batch.end_samples)
            yield window_features(output), batch.end_samples / engine.info.sample_rate
    finally:
        engine.forget_streams()


def window_features_of(
    engine: Engine, batches: Iterable[WindowBatch], stream: str = "offline"
) -> tuple[WindowFeatures, np.ndarray]:
    """(features of every window, each window's end in s); ValueError when there is none."""
    parts = list(stream_features(engine, batches, stream))
    if not parts:
        raise ValueError("no window")
    return WindowFeatures.concat([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def score_windows(
    engine: Engine, detector: Detector, batches: Iterable[WindowBatch], stream: str = "offline"
) -> WindowScores:
    """Score every window of one recording's batches, in order, keeping only the scores."""
    scores, ends, levels = [], [], []
    for features, end_seconds in stream_features(engine, batches, stream):
        scores.append(detector.score(features))
        ends.append(end_seconds)
        levels.append(features.level_db)
    if not scores:
        return WindowScores(np.zeros(0), np.zeros(0), np.zeros(0))
    return WindowScores(np.concatenate(scores), np.concatenate(ends), np.concatenate(levels))


def decide(
    scores: WindowScores, threshold: float, k: int, n: int, m_close: int
) -> list[DecisionEvent]:
    """Every event a fresh decider gives over the scores in order (an open one stays open)."""
    decider = Decider(threshold, k, n, m_close)
    events: list[DecisionEvent] = []
    for score, end in zip(scores.scores, scores.end_seconds, strict=True):
        events.extend(decider.feed(float(score), float(end)))
    return events


def opens_event(events: list[DecisionEvent]) -> bool:
    """Whether any event started."""
    return any(event.type == START for event in events)


@dataclass(frozen=True)
class Verdict:
    """Whether a recording is anomalous, and the rule that said so, e.g. `3 of 5 windows`
    or `1 of 1 windows: 10.0 s is shorter than the 14 s that 3 of 5 needs`."""

    anomalous: bool
    rule: str


def verdict(
    scores: WindowScores,
    threshold: float,
    k: int,
    n: int,
    m_close: int,
    span_seconds: float,
    seconds: float,
) -> Verdict:
    """The recording's verdict (see the module). `span_seconds`: window + (n-1) hops, the
    length the k-of-n rule needs; `seconds`: the recording's length, for the rule's text.
    ValueError when there is no window."""
    windows = len(scores)
    if windows == 0:
        raise ValueError("no window to judge")
    if windows >= n:
        return Verdict(opens_event(decide(scores, threshold, k, n, m_close)), f"{k} of {n} windows")
    needed = max(1, math.ceil(k * windows / n))
    above = int((scores.scores > threshold).sum())
    rule = (
        f"{needed} of {windows} windows: {seconds:.1f} s is shorter than the "
        f"{span_seconds:g} s that {k} of {n} needs"
    )
    return Verdict(above >= needed, rule)
