"""The protocol every inference engine follows (onnxruntime, TensorRT)."""

from __future__ import annotations

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
    """Runs the model on batches of waveforms float32 [B, window_samples]."""

    name: str
    info: ModelInfo

    def warm_up(self, batch_size: int = 1) -> None:
        """Run once on silence so the first real window is not slow."""

    def infer(self, waveforms: np.ndarray) -> EngineOutput:
        """Outputs for a batch; raises ValueError on a wrong shape or dtype."""
        ...

    def close(self) -> None:
        """Release the session or engine."""


class EngineUnavailable(Exception):
    """An engine cannot run here (library missing, no GPU, build failed); says why."""
