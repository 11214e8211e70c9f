"""The `section` scorer (the seed's): how unlikely the model finds the machine's own label.

The logits are scaled cosines to each label's centre (no margin). A normal window of a
machine bound to `fan/section_00` is classified as that label with confidence; a fault
makes the classifier unsure, so minus the log of that label's softmax probability rises.
The score is minus its log-odds, log((1 - p) / p), which ranks windows exactly as -log p
does but does not round to a constant when the classifier is very sure (p = 1 - 1e-13,
as an ArcFace classifier trained on a few sections often is).

When the binding matches several labels (a section's attribute classes, say
`fan/section_00/speed_100` and `fan/section_00/speed_118`), p is the *largest* probability
among them (`reduce: max`, the default) or their mean (`reduce: mean`), as DCASE systems
that classify sections and attributes commonly score a section by its classes. Summing
their probabilities instead, as this scorer once did, gives a constant 1 when the binding
covers every label of the model; such a binding is refused (the score would say only how
sure the classifier is of any label, not of this machine's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edge_asd.labels import matching_indices
from edge_asd.scoring.features import WindowFeatures
from edge_asd.scoring.registry import FitContext, FitData, Scorer, register

REDUCTIONS = ("max", "mean")


def section_scores(
    logits: np.ndarray, label_indices: Sequence[int], reduce: str = "max"
) -> np.ndarray:
    """Minus the log-odds of the bound labels, reduced: [B, L] -> [B] float64.

    With p the largest softmax probability among `label_indices` (`reduce` "max") or
    their mean ("mean"), the score is log((1 - p) / p): a monotone function of -log p
    (the seed's score), so it ranks windows the same, but computed from the logits
    directly (a log-sum-exp of the other labels minus that of the bound ones), so that a
    classifier sure of its label (p = 1 - 1e-13) still gives scores that differ, where
    -log p rounds to a constant. Higher is more anomalous; it may be negative. Raises
    ValueError when `logits` is not 2-D, an index is out of range, none is given, or
    `reduce` is unknown.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be [batch, n_labels], got shape {logits.shape}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, not {reduce!r}")
    indices = np.unique(np.asarray(list(label_indices), dtype=np.int64))
    if indices.size == 0:
        raise ValueError("label_indices is empty")
    if indices.min() < 0 or indices.max() >= logits.shape[1]:
        raise ValueError(
            f"label_indices {indices.tolist()} out of range for {logits.shape[1]} labels"
        )
    bound = logits[:, indices]
    if reduce == "max":
        own = bound.argmax(axis=1)
        weights = np.ones_like(logits)
        weights[np.arange(len(logits)), indices[own]] = 0.0  # every label but the best bound
        return _logsumexp(logits, weights) - bound.max(axis=1)
    # mean: odds (sum_all - mean_bound) / mean_bound, each term a weighted sum of exp(logits)
    weights = np.ones_like(logits)
    weights[:, indices] = 1.0 - 1.0 / len(indices)
    ones = np.ones_like(bound)
    return _logsumexp(logits, weights) - (_logsumexp(bound, ones) - np.log(len(indices)))


def _logsumexp(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """log(sum(weights * exp(values), axis=1)), weights >= 0, without overflow or underflow
    (the shift is the largest value with a weight); -inf where every weight is 0."""
    top = np.where(weights > 0, values, -np.inf).max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    # unweighted values may lie far above the shift: leave them out of exp, not only weigh 0
    total = (weights * np.exp(np.where(weights > 0, values - top, 0.0))).sum(axis=1)
    with np.errstate(divide="ignore"):  # log(0) = -inf, as said, where every weight is 0
        return top[:, 0] + np.log(total)


def usable_binding(labels: Sequence[str], binding: str | None) -> tuple[list[int], str | None]:
    """(indices, None) when `binding` can serve a section scorer, else ([], why not)."""
    if not binding:
        return [], "the section scorer needs a label binding (--label): none was given"
    indices = matching_indices(labels, binding)  # UserError when it matches none
    if len(indices) == len(labels):
        return [], (
            f"label {binding!r} covers every label of the model ({len(labels)}), so the "
            "section score would only say how sure the classifier is of any label, not of "
            "this machine's; bind the machine to its own section or attribute label"
        )
    return indices, None


@register
class SectionScorer(Scorer):
    """Minus the log softmax probability of the machine's label(s), reduced by max or mean."""

    kind = "section"
    summary = "how unlikely the model finds the machine's own label (the seed's score)"

    def __init__(self, binding: str, label_indices: Sequence[int], reduce: str = "max") -> None:
        self.binding = binding
        self.label_indices = tuple(int(i) for i in label_indices)
        self.reduce = reduce

    @classmethod
    def candidates(cls, context: FitContext) -> list[dict[str, Any]]:
        _, why_not = usable_binding(context.labels, context.binding)
        return [] if why_not else [{"reduce": "max"}]

    @classmethod
    def fit(cls, data: FitData, options: Mapping[str, Any], context: FitContext) -> SectionScorer:
        """Nothing to fit: the model's classifier is the scorer. ValueError when the
        binding cannot serve (see `usable_binding`)."""
        indices, why_not = usable_binding(context.labels, context.binding)
        if why_not:
            raise ValueError(why_not)
        return cls(str(context.binding), indices, str(options.get("reduce", "max")))

    def score(self, features: WindowFeatures) -> np.ndarray:
        return section_scores(features.logits, self.label_indices, self.reduce)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"label": self.binding, "reduce": self.reduce}, {}

    @classmethod
    def restore(
        cls, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray], context: FitContext
    ) -> SectionScorer:
        binding = params.get("label")
        reduce = params.get("reduce", "max")
        if reduce not in REDUCTIONS:
            raise ValueError(f"section reduce {reduce!r} is not one of {REDUCTIONS}")
        indices, why_not = usable_binding(context.labels, binding)
        if why_not:
            raise ValueError(why_not)
        return cls(str(binding), indices, reduce)
