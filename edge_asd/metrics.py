"""Detection metrics as DCASE computes them: ROC AUC, the standardised partial AUC and the
official score.

The DCASE 2022-2024 Task 2 evaluators call scikit-learn's `roc_auc_score(y, s)` and
`roc_auc_score(y, s, max_fpr=0.1)`; the second is McClish's standardised partial AUC
(McClish 1989, "Analyzing a portion of the ROC curve", Medical Decision Making 9(3)), 0.5
for a detector that guesses and 1 for a perfect one. These are the same numbers in numpy
alone, for the runtime (calibration judges its choices with them; scikit-learn is not a
runtime dependency); tests/unit/edge_asd/test_metrics.py checks them against scikit-learn.
Higher scores mean anomalous; ties count one half.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MAX_FPR = 0.1


def _stack(normal: Sequence[float], anomaly: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    scores = np.r_[np.asarray(normal, dtype=np.float64), np.asarray(anomaly, dtype=np.float64)]
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomaly))]
    return labels, scores


def auc(normal_scores: Sequence[float], anomaly_scores: Sequence[float]) -> float | None:
    """ROC AUC of anomalies against normals (Mann-Whitney, ties one half); None without both."""
    n_normal, n_anomaly = len(normal_scores), len(anomaly_scores)
    if n_normal == 0 or n_anomaly == 0:
        return None
    labels, scores = _stack(normal_scores, anomaly_scores)
    from scipy.stats import rankdata

    ranks = rankdata(scores)  # average ranks: a tie counts one half
    rank_sum = ranks[labels == 1].sum()
    return float((rank_sum - n_anomaly * (n_anomaly + 1) / 2) / (n_anomaly * n_normal))


def roc_curve(
    normal_scores: Sequence[float], anomaly_scores: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) at every distinct threshold, from (0, 0)."""
    labels, scores = _stack(normal_scores, anomaly_scores)
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_value]
    false_positives = (last_of_value + 1) - true_positives
    fpr = np.r_[0.0, false_positives / max(len(normal_scores), 1)]
    tpr = np.r_[0.0, true_positives / max(len(anomaly_scores), 1)]
    return fpr, tpr


def pauc(
    normal_scores: Sequence[float], anomaly_scores: Sequence[float], max_fpr: float = MAX_FPR
) -> float | None:
    """McClish-standardised partial AUC over FPR [0, max_fpr], as scikit-learn computes it.

    None without both kinds of score. Raises ValueError unless 0 < max_fpr <= 1.
    """
    if not 0.0 < max_fpr <= 1.0:
        raise ValueError(f"max_fpr must be in (0, 1], not {max_fpr}")
    if len(normal_scores) == 0 or len(anomaly_scores) == 0:
        return None
    fpr, tpr = roc_curve(normal_scores, anomaly_scores)
    if max_fpr == 1.0:
        return auc(normal_scores, anomaly_scores)
    stop = int(np.searchsorted(fpr, max_fpr, side="right"))
    edge = np.interp(max_fpr, fpr[stop - 1 : stop + 1], tpr[stop - 1 : stop + 1])
    fpr = np.r_[fpr[:stop], max_fpr]
    tpr = np.r_[tpr[:stop], edge]
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    min_area, max_area = 0.5 * max_fpr**2, max_fpr
    return 0.5 * (1 + (area - min_area) / (max_area - min_area))


def harmonic_mean(values: Iterable[float | None]) -> float | None:
    """Harmonic mean of the values that exist, each floored at machine epsilon (as the
    DCASE evaluator guards against a zero); None when there is none."""
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    if present.size == 0:
        return None
    floored = np.maximum(present, sys.float_info.epsilon)
    return float(len(floored) / np.sum(1.0 / floored))


@dataclass(frozen=True)
class SectionResult:
    """One section's metrics; a value is None when its domain has no normal clip."""

    auc_source: float | None
    auc_target: float | None
    pauc: float | None

    def values(self) -> list[float | None]:
        return [self.auc_source, self.auc_target, self.pauc]

    def to_dict(self) -> dict[str, float | None]:
        return {"auc_source": self.auc_source, "auc_target": self.auc_target, "pauc": self.pauc}


def section_result(
    scores: Sequence[float], is_anomaly: Sequence[bool], domains: Sequence[str]
) -> SectionResult:
    """Metrics of one section's test clips: score, anomaly flag and domain per clip."""
    scores = np.asarray(scores, dtype=np.float64)
    anomalous = np.asarray(is_anomaly, dtype=bool)
    domains = np.asarray(domains)
    anomalies = scores[anomalous]
    normal_source = scores[~anomalous & (domains == "source")]
    normal_target = scores[~anomalous & (domains == "target")]
    return SectionResult(
        auc_source=auc(normal_source, anomalies),
        auc_target=auc(normal_target, anomalies),
        pauc=pauc(scores[~anomalous], anomalies),
    )


def official_score(results: Iterable[SectionResult]) -> float | None:
    """The harmonic mean over every AUC(source), AUC(target) and pAUC of the results."""
    return harmonic_mean(v for r in results for v in r.values())
