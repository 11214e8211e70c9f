"""Fitting recordings to the model's fixed window: tile or pad short ones, crop long ones."""

from __future__ import annotations

import numpy as np

from edge_asd.windows import sliding_windows


def fit_to_window(
    samples: np.ndarray, window_samples: int, policy: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """One window float32 [window_samples] from a mono recording.

    Shorter: repeated end to end (`tile`; `join` tiles too, once clips are joined) or
    followed by zeros (`pad`). Longer: a crop at a random start (from `rng`), or the
    first window when `rng` is None.
    """
    n = len(samples)
    if n >= window_samples:
        start = int(rng.integers(0, n - window_samples + 1)) if rng is not None else 0
        return np.asarray(samples[start : start + window_samples], dtype=np.float32)
    if policy == "pad":
        return np.pad(samples, (0, window_samples - n)).astype(np.float32)
    return np.resize(samples, window_samples).astype(np.float32)  # np.resize repeats


def clip_windows(
    samples: np.ndarray, window_samples: int, policy: str, hop_samples: int
) -> np.ndarray:
    """Every window of a test clip, float32 [n, window_samples]: one when it is short."""
    if len(samples) <= window_samples:
        return fit_to_window(samples, window_samples, policy)[None]
    return np.ascontiguousarray(sliding_windows(samples, window_samples, hop_samples))
