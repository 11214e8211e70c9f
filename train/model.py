"""The whole network: waveform -> (embedding, logits, logmel), as the model file exports it.

`features="stgram"` stacks the log-mel and the Tgram as 2 channels (ST-gram);
`features="logmel"` feeds the log-mel alone (the MobileNetV2 baseline row). Every size
comes from the window length through edge_asd.audio.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from edge_asd.audio import EMBEDDING_DIM, HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, WINDOW_SAMPLES
from edge_asd.audio import n_frames as frames_of
from edge_asd.model_file import FrontEnd
from train.arcface import ArcFace
from train.backbones import BACKBONES, build_backbone
from train.frontend import LogMel, Tgram

FEATURES = ("stgram", "logmel")


@dataclass(frozen=True)
class ModelConfig:
    """What defines the network; round-trips through a dict (checkpoints, recipes)."""

    backbone: str = "mobilefacenet"
    features: str = "stgram"
    embedding_dim: int = EMBEDDING_DIM
    arcface_margin: float = 0.7
    arcface_scale: float = 30.0
    window_samples: int = WINDOW_SAMPLES
    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"model.backbone must be one of {BACKBONES}, not {self.backbone!r}")
        if self.features not in FEATURES:
            raise ValueError(f"model.features must be one of {FEATURES}, not {self.features!r}")

    @property
    def frames(self) -> int:
        return frames_of(self.window_samples, self.hop_length)

    @property
    def name(self) -> str:
        """The backbone as model.yaml records it, e.g. `stgram+mobilefacenet`."""
        return f"{self.features}+{self.backbone}"

    def front_end(self) -> FrontEnd:
        return FrontEnd(self.n_fft, self.hop_length, self.n_mels, self.frames)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Raises ValueError naming unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model keys {unknown} (known: {sorted(known)})")
        return cls(**data)


class ASDModel(nn.Module):
    """Waveform [batch, window_samples] -> embedding [batch, D], logits [batch, L], logmel."""

    def __init__(self, config: ModelConfig, n_labels: int) -> None:
        super().__init__()
        self.config = config
        c = config
        self.logmel = LogMel(c.sample_rate, c.n_fft, c.hop_length, c.n_mels)
        self.tgram = (
            Tgram(c.window_samples, c.n_fft, c.hop_length, c.n_mels)
            if c.features == "stgram"
            else None
        )
        in_channels = 2 if self.tgram is not None else 1
        self.backbone = build_backbone(c.backbone, in_channels, c.n_mels, c.frames, c.embedding_dim)
        self.head = ArcFace(c.embedding_dim, n_labels, c.arcface_margin, c.arcface_scale)

    @property
    def n_labels(self) -> int:
        return self.head.weight.shape[0]

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logmel = self.logmel(waveform)
        if self.tgram is not None:
            features = torch.stack([logmel, self.tgram(waveform)], dim=1)
        else:
            features = logmel.unsqueeze(1)
        embedding = self.backbone(features)
        return embedding, self.head(embedding), logmel
