"""The `section` scorer (the seed's): how unlikely the model finds the machine's own label.

The logits are scaled cosines to each label's centre (no margin). A normal window of a
machine bound to label `fan/section_00` is classified as that label with confidence; a
fault makes the classifier unsure, so minus the log of that label's softmax probability
rises. When the model's labels are finer than the machine (one label per section and
attribute set), the probability is summed over every label the machine is bound to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _logsumexp(values: np.ndarray) -> np.ndarray:
    """log(sum(exp(values), axis=1)) without overflow: [B, K] -> [B] float64."""
    top = values.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(values - top).sum(axis=1, keepdims=True)))[:, 0]


def section_scores(logits: np.ndarray, label_indices: Sequence[int]) -> np.ndarray:
    """Minus the log softmax probability of the labels `label_indices`: [B, L] -> [B].

    -log(sum_{i in label_indices} softmax(logits)_i), computed as
    logsumexp(logits) - logsumexp(logits[:, label_indices]) in float64 so that extreme
    logits neither overflow nor round to zero. Scores are >= 0; higher is more anomalous.
    Raises ValueError when `logits` is not 2-D or an index is empty or out of range.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be [batch, n_labels], got shape {logits.shape}")
    indices = np.asarray(list(label_indices), dtype=np.int64)
    if indices.size == 0:
        raise ValueError("label_indices is empty")
    if indices.min() < 0 or indices.max() >= logits.shape[1]:
        raise ValueError(
            f"label_indices {indices.tolist()} out of range for {logits.shape[1]} labels"
        )
    indices = np.unique(indices)  # a label named twice is still one label
    scores = _logsumexp(logits) - _logsumexp(logits[:, indices])
    return np.maximum(scores, 0.0)  # rounding can give -1e-16 when one label takes it all
