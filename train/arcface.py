"""ArcFace (Deng et al. 2019): cosine logits, with an additive angular margin in training.

At inference the logits are `scale * cos(theta)` with no margin (the model file's
contract). In training, the margin is added to the target angle; with MixUp the target is
a soft one-hot, so each class's logit interpolates between its margin and plain cosine.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

NORM_EPS = 1e-12


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows of x [n, d] scaled to unit length (as F.normalize, with no Expand in ONNX)."""
    squared = torch.clamp((x * x).sum(dim=1, keepdim=True), min=NORM_EPS * NORM_EPS)
    return x / torch.sqrt(squared)


class ArcFace(nn.Module):
    """Embedding [batch, dim] -> logits [batch, n_labels] = scale * cosine to class centres."""

    def __init__(self, embedding_dim: int, n_labels: int, margin: float, scale: float) -> None:
        super().__init__()
        self.margin = margin
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(n_labels, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, embedding: torch.Tensor) -> torch.Tensor:
        return l2_normalise(embedding) @ l2_normalise(self.weight).t()

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.scale * self.cosine(embedding)

    def margin_logits(self, cosine: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Training logits: cos(theta + margin) where `targets` [batch, n_labels] is 1."""
        sine = torch.sqrt(torch.clamp(1.0 - cosine * cosine, 0.0, 1.0))
        phi = cosine * math.cos(self.margin) - sine * math.sin(self.margin)
        # past theta = pi - margin, cos(theta + m) stops decreasing: use the linear penalty
        threshold = math.cos(math.pi - self.margin)
        phi = torch.where(
            cosine > threshold, phi, cosine - math.sin(math.pi - self.margin) * self.margin
        )
        return self.scale * (targets * phi + (1.0 - targets) * cosine)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the margin logits against soft targets [batch, n_labels]."""
        margin_logits = self.margin_logits(logits / self.scale, targets)
        return -(targets * F.log_softmax(margin_logits, dim=1)).sum(dim=1).mean()
