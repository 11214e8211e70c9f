"""Scoring a whole recording offline, window by window as the daemon would see it live.

Windows end on hop boundaries (edge_asd.windows); each is scored by the engine and the
machine's scorer, and the decider runs over the scores in order, so that `edge-asd score`
on a file says what the daemon would have said listening to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edge_asd.decider import START, Decider, DecisionEvent
from edge_asd.engines.base import Engine, EngineOutput
from edge_asd.scoring.scorer import Scorer
from edge_asd.windows import sliding_windows, window_starts


@dataclass(frozen=True)
class WindowScores:
    """Scores of a recording's windows: `scores` [W], `end_seconds` [W] (each window's end)."""

    scores: np.ndarray
    end_seconds: np.ndarray


def batched_outputs(
    engine: Engine, samples: np.ndarray, hop: int, batch_size: int = 8
) -> Iterator[EngineOutput]:
    """Engine outputs of every window of mono float32 `samples`, `batch_size` at a time."""
    windows = sliding_windows(samples, engine.info.window_samples, hop)
    for first in range(0, len(windows), batch_size):
        batch = np.ascontiguousarray(windows[first : first + batch_size], dtype=np.float32)
        yield engine.infer(batch)


def score_signal(
    engine: Engine, scorer: Scorer, samples: np.ndarray, hop: int, batch_size: int = 8
) -> WindowScores:
    """Every full window's score of mono `samples` [n] at the model's rate, `hop` samples apart.

    A signal shorter than one window gives no scores (the caller decides whether that is
    an error).
    """
    samples = np.asarray(samples, dtype=np.float32)
    window = engine.info.window_samples
    starts = window_starts(len(samples), window, hop)
    parts = [scorer(output) for output in batched_outputs(engine, samples, hop, batch_size)]
    scores = np.concatenate(parts) if parts else np.zeros(0)
    return WindowScores(scores=scores, end_seconds=(starts + window) / engine.info.sample_rate)


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
