"""Sliding windows over a recording, as the daemon sees them: every hop, the last window."""

from __future__ import annotations

import numpy as np

from edge_asd.audio import SAMPLE_RATE


def hop_samples(hop_seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples per hop; raises ValueError when the hop is not a whole number of samples."""
    samples = hop_seconds * sample_rate
    if samples < 1 or abs(samples - round(samples)) > 1e-6:
        raise ValueError(f"hop of {hop_seconds} s is not a whole number of samples")
    return round(samples)


def window_starts(n_samples: int, window_samples: int, hop: int) -> np.ndarray:
    """Start indices of every full window ending at a hop boundary (empty when too short)."""
    if n_samples < window_samples:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - window_samples + 1, hop, dtype=np.int64)


def sliding_windows(samples: np.ndarray, window_samples: int, hop: int) -> np.ndarray:
    """A read-only view [n_windows, window_samples] of a mono float32 signal's windows."""
    starts = window_starts(len(samples), window_samples, hop)
    if len(starts) == 0:
        return np.zeros((0, window_samples), dtype=samples.dtype)
    view = np.lib.stride_tricks.sliding_window_view(samples, window_samples)
    return view[starts]
