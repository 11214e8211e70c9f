"""Sliding windows over a recording, as the daemon sees them: every hop, the last window.

Window k ends (exclusive) at sample `window_samples + k * hop`. `sliding_windows` cuts a
signal already in memory (a clip) as a view; a recording too long to hold is streamed
from its files by `edge_asd.recording.stream_windows`, which cuts the same windows.
"""

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
    """A read-only view [n_windows, window_samples] of a mono signal's windows.

    Nothing is copied: row k starts at `k * hop` of `samples` (rows overlap when the hop
    is shorter than the window). Copy a batch of rows at a time where contiguous memory
    is needed; `np.ascontiguousarray` of the whole view costs every window's samples.
    """
    if len(samples) < window_samples:
        return np.zeros((0, window_samples), dtype=samples.dtype)
    view = np.lib.stride_tricks.sliding_window_view(samples, window_samples)
    return view[::hop]
