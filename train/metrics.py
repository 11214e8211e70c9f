"""DCASE 2022 Task 2 metrics, computed as the official evaluator computes them.

Per machine type and section: AUC(source) and AUC(target), each the normals of that
domain against *all* anomalies of the section; pAUC over both domains with max_fpr 0.1
in scikit-learn's standardised form (McClish correction), as the evaluator calls
`roc_auc_score(y, s, max_fpr=0.1)`. The official score is the harmonic mean of every
AUC(source), AUC(target) and pAUC value, each floored at machine epsilon (the evaluator's
guard against a zero). Values are fractions in [0, 1]; higher scores mean anomalous.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MAX_FPR = 0.1


def auc(normal_scores: Sequence[float], anomaly_scores: Sequence[float]) -> float | None:
    """ROC AUC of anomalies against normals (ties count one half); None without both."""
    if len(normal_scores) == 0 or len(anomaly_scores) == 0:
        return None
    from sklearn.metrics import roc_auc_score

    y, s = _stack(normal_scores, anomaly_scores)
    return float(roc_auc_score(y, s))


def pauc(
    normal_scores: Sequence[float], anomaly_scores: Sequence[float], max_fpr: float = MAX_FPR
) -> float | None:
    """Standardised partial AUC over FPR [0, max_fpr] (sklearn); None without both."""
    if len(normal_scores) == 0 or len(anomaly_scores) == 0:
        return None
    from sklearn.metrics import roc_auc_score

    y, s = _stack(normal_scores, anomaly_scores)
    return float(roc_auc_score(y, s, max_fpr=max_fpr))


def _stack(normal: Sequence[float], anomaly: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomaly))]
    return y, np.r_[np.asarray(normal, dtype=np.float64), np.asarray(anomaly, dtype=np.float64)]


def harmonic_mean(values: Iterable[float | None]) -> float | None:
    """Harmonic mean of the values that exist, each floored at machine epsilon."""
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
