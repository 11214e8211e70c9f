"""MixUp (Zhang et al. 2018) on waveforms and one-hot labels."""

from __future__ import annotations

import numpy as np
import torch


def mixup(
    waveforms: torch.Tensor,
    targets: torch.Tensor,
    probability: float,
    alpha: float,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """With `probability`, mix the batch with a permutation of itself.

    x = lam x_i + (1 - lam) x_j and y = lam y_i + (1 - lam) y_j, lam ~ Beta(alpha, alpha),
    one lam per batch. `targets` are one-hot (or already soft) [batch, n_labels].
    """
    if len(waveforms) < 2 or rng.random() >= probability:
        return waveforms, targets
    lam = float(rng.beta(alpha, alpha))
    order = torch.from_numpy(rng.permutation(len(waveforms))).to(waveforms.device)
    return (
        lam * waveforms + (1.0 - lam) * waveforms[order],
        lam * targets + (1.0 - lam) * targets[order],
    )
