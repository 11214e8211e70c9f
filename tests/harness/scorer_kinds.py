"""Scorer kinds made for tests, registered for the length of a `with` block.

Each is a real `Scorer` subclass (edge_asd.scoring.registry) that calibration, the
detector and the calibration file handle exactly as they handle the product's kinds:
- `LoudnessScorer`: a window's level above the normal windows' median (a real, if crude,
  detector: it sees a louder machine);
- `ConstantScorer`: the same score for every window (a scorer that tells nothing apart);
- `RandomScorer`: random numbers, whatever the window (a blind scorer that does vary).
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from edge_asd.scoring import registry
from edge_asd.scoring.features import WindowFeatures
from edge_asd.scoring.registry import FitContext, FitData, Scorer


@contextlib.contextmanager
def registered(*kinds: type[Scorer]) -> Iterator[None]:
    """Register `kinds` (by the registry's own decorator) for the block, then forget them."""
    for kind in kinds:
        registry.register(kind)
    try:
        yield
    finally:
        for kind in kinds:
            registry._KINDS.pop(kind.kind, None)


class LoudnessScorer(Scorer):
    kind = "loudness"
    summary = "the window's level above the median normal level (dB)"

    def __init__(self, median_db: float) -> None:
        self.median_db = float(median_db)

    @classmethod
    def candidates(cls, context: FitContext) -> list[dict[str, Any]]:
        return [{}]

    @classmethod
    def fit(cls, data: FitData, options: Mapping[str, Any], context: FitContext) -> Scorer:
        return cls(float(np.median(data.features.level_db)))

    def score(self, features: WindowFeatures) -> np.ndarray:
        return features.level_db - self.median_db

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"median_db": self.median_db}, {}

    @classmethod
    def restore(cls, params, arrays, context: FitContext) -> Scorer:
        if "median_db" not in params:
            raise ValueError("the loudness scorer needs its median_db")
        return cls(params["median_db"])


class ConstantScorer(LoudnessScorer):
    kind = "constant"
    summary = "the same score for every window"

    def score(self, features: WindowFeatures) -> np.ndarray:
        return np.full(len(features), 1.0)


class RandomScorer(LoudnessScorer):
    kind = "random"
    summary = "random numbers, whatever the window"

    def score(self, features: WindowFeatures) -> np.ndarray:
        # seeded by the windows' bytes: repeatable, and unrelated to what they hold
        seed = zlib.crc32(np.ascontiguousarray(features.pooled).tobytes())
        return np.random.default_rng(seed).normal(size=len(features))
