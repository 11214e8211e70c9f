"""The protocol every inference engine follows (onnxruntime, its split, TensorRT).

Callers (the daemon, calibrate, score, evaluate, the benchmarks) use exactly what
`Engine` declares, and every engine implements all of it, so no caller asks an engine
what it can do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge_asd.model_file import ModelInfo


@dataclass(frozen=True)
class EngineOutput:
    """A batch's outputs: embedding [B, D], logits [B, L], logmel [B, n_mels, frames]."""

    embedding: np.ndarray
    logits: np.ndarray
    logmel: np.ndarray | None = None


class Engine(Protocol):
    """Runs the model on batches of waveforms float32 [B, window_samples].

    name: the engine kind ("onnxruntime", "tensorrt"); description: what runs, in words
    (for logs); fallback_reason: why this engine runs instead of the one asked for (None
    when it is the one asked for).
    """

    name: str
    description: str
    info: ModelInfo
    fallback_reason: str | None

    def warm_up(self, batch_size: int = 1) -> None:
        """Run once on silence so that the first real batch of `batch_size` is not slow."""

    def infer(self, waveforms: np.ndarray) -> EngineOutput:
        """Outputs for a batch; raises ValueError on a wrong shape or dtype."""
        ...

    def infer_streams(
        self, waveforms: np.ndarray, streams: Sequence[str], end_frames: np.ndarray
    ) -> EngineOutput:
        """Outputs for windows of named streams (a machine, a recording): row i is the
        window of stream `streams[i]` ending (exclusive) at its sample `end_frames[i]`.

        The same outputs as `infer`; an engine may reuse what a stream's earlier windows
        computed, so a stream's rows must come in stream order, across calls too (a new
        recording is a new stream name, or call `forget_streams` first).
        """
        ...

    def forget_streams(self) -> None:
        """Drop whatever is kept per stream."""

    def close(self) -> None:
        """Release the session or engine."""


class EngineUnavailable(Exception):
    """An engine cannot run here (library missing, no GPU, build failed); says why."""
