"""The whole network: waveform -> (embedding, logits, logmel), as the model file exports it.

`features="stgram"` stacks the log-mel and the Tgram as 2 channels (ST-gram);
`features="logmel"` feeds the log-mel alone (the MobileNetV2 baseline row). Every size
comes from ModelConfig (train/config.py, the recipe's `model:` keys), whose defaults are
edge_asd.audio's.
"""

from __future__ import annotations

import torch
from torch import nn

from train.arcface import ArcFace
from train.backbones import build_backbone
from train.config import ModelConfig
from train.frontend import LogMel, Tgram

__all__ = ["ASDModel", "ModelConfig"]  # ModelConfig (train/config.py): the recipe's `model:`


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
