"""The upper tail of honest normal scores as a generalised Pareto distribution.

A threshold for one false alarm a day sits far beyond the calibration's scores (a
per-window exceedance of about 1e-4), so it is extrapolated from a fitted distribution.
The whole-distribution gamma fit (edge_asd.calibration.threshold) fails whenever the bulk
of the scores is not gamma-shaped, although only the tail matters there. Extreme value
theory gives the tail's shape directly: exceedances over a high threshold u follow a
generalised Pareto distribution (the Pickands-Balkema-de Haan theorem; Coles 2001, "An
Introduction to Statistical Modeling of Extreme Values", ch. 4). Here u is the
TAIL_QUANTILE quantile of the scores, the GPD is fitted by maximum likelihood to the
exceedances (scipy.stats.genpareto, location 0) and judged by its KS statistic on them,
against the same limit as the gamma fit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

TAIL_QUANTILE = 0.9
MIN_EXCEEDANCES = 30  # fewer cannot support a fit


@dataclass(frozen=True)
class TailFit:
    """P(score > x) = TAIL_FRACTION * GPD(shape, scale).sf(x - u) for x >= u."""

    u: float
    fraction: float  # the share of scores above u
    shape: float
    scale: float
    ks_statistic: float
    ks_limit: float

    @property
    def good(self) -> bool:
        return self.ks_statistic <= self.ks_limit

    def isf(self, p: float) -> float:
        """The score exceeded with probability p (p < fraction)."""
        from scipy import stats

        return self.u + float(stats.genpareto.isf(p / self.fraction, self.shape, scale=self.scale))

    def to_dict(self) -> dict[str, float]:
        return {
            "u": self.u,
            "fraction": self.fraction,
            "shape": self.shape,
            "scale": self.scale,
            "ks_statistic": self.ks_statistic,
            "ks_limit": self.ks_limit,
        }


def fit_tail(scores: np.ndarray, ks_limit) -> TailFit | None:
    """The GPD tail of `scores` (see the module), or None with too few exceedances or no fit.

    `ks_limit(n)` gives the KS statistic above which a fit of n values counts as poor.
    """
    from scipy import stats

    scores = np.asarray(scores, dtype=np.float64)
    u = float(np.quantile(scores, TAIL_QUANTILE))
    excess = scores[scores > u] - u
    if len(excess) < MIN_EXCEEDANCES or not np.ptp(excess) > 0:
        return None
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            shape, _, scale = stats.genpareto.fit(excess, floc=0.0)
    except (ValueError, RuntimeError, FloatingPointError):
        return None
    if not (math.isfinite(shape) and math.isfinite(scale) and scale > 0):
        return None
    statistic = float(stats.kstest(excess, "genpareto", args=(shape, 0.0, scale)).statistic)
    fraction = len(excess) / len(scores)
    return TailFit(u, fraction, float(shape), float(scale), statistic, ks_limit(len(excess)))
