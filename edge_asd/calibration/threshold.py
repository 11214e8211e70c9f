"""The threshold from honest normal scores: a gamma fit, or an empirical quantile.

Two targets:
- `--quantile Q`: the DCASE baseline's rule. Fit a gamma distribution to the scores
  (scipy.stats.gamma, location free, by maximum likelihood) and take its Q quantile; when
  the fit is poor, take the empirical Q quantile instead.
- `--false-alarms-per-day F`: the per-window exceedance p that makes the decider expect F
  false alarms a day (see `false_alarms`), then the fitted gamma's upper-tail quantile at
  p; when the gamma fit is poor, that of a generalised Pareto fit to the upper tail alone
  (`tail`); when both are poor, the empirical one. A fitted tail is trusted up to EXTRAPOLATION
  times beyond what the data show (p >= 1 / (EXTRAPOLATION * independent windows)); an
  empirical tail not at all (p >= 1 / independent windows). Less audio is an error that
  says how much is needed.

The fit is judged by the Kolmogorov-Smirnov statistic D against a limit: the 1% critical
value 1.63 / sqrt(windows), but never below KS_FLOOR (with many windows, any real score
distribution differs measurably from a gamma, and a D of a few hundredths does not matter
for a threshold). All windows, not the independent ones, set the limit: correlated
windows make D noisier than the test assumes, so this is stricter than a true 1% test,
which is the safe side when a poor fit would be extrapolated.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_asd.calibration.false_alarms import AlarmModel, correlation_windows
from edge_asd.calibration.tail import MIN_EXCEEDANCES, TAIL_QUANTILE, fit_tail
from edge_asd.errors import UserError

MIN_INDEPENDENT_WINDOWS = 30  # below this no tail can be fitted with any confidence
EXTRAPOLATION = 100.0  # a fitted tail is trusted this far beyond 1 / independent windows
KS_COEFFICIENT = 1.63  # the KS test's 1% critical value is about 1.63 / sqrt(N)
KS_FLOOR = 0.05


class NotEnoughAudio(UserError):
    """Too little normal sound for the asked false-alarm rate; says how much is needed."""


@dataclass(frozen=True)
class GammaFit:
    """A gamma distribution fitted to scores, with its KS statistic and the limit it met."""

    shape: float
    loc: float
    scale: float
    ks_statistic: float
    ks_limit: float

    @property
    def good(self) -> bool:
        return self.ks_statistic <= self.ks_limit

    def _frozen(self):
        from scipy import stats

        return stats.gamma(self.shape, loc=self.loc, scale=self.scale)

    def ppf(self, quantile: float) -> float:
        return float(self._frozen().ppf(quantile))

    def isf(self, p: float) -> float:
        return float(self._frozen().isf(p))

    def sf(self, x: np.ndarray) -> np.ndarray:
        """P(score > x) under the fit, elementwise."""
        return self._frozen().sf(x)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        return self._frozen().pdf(x)

    def to_dict(self) -> dict[str, float]:
        return {
            "shape": self.shape,
            "loc": self.loc,
            "scale": self.scale,
            "ks_statistic": self.ks_statistic,
            "ks_limit": self.ks_limit,
        }


def ks_limit(n_windows: float) -> float:
    """The KS statistic above which a fit of `n_windows` scores counts as poor."""
    return max(KS_FLOOR, KS_COEFFICIENT / math.sqrt(max(n_windows, 1.0)))


def fit_gamma(scores: np.ndarray) -> GammaFit | None:
    """The better (by KS) of a free-location and a zero-location gamma fit, or None.

    None when the scores do not vary or no fit converges to finite parameters.
    """
    from scipy import stats

    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) < 3 or not np.ptp(scores) > 0:
        return None
    attempts: list[dict[str, float]] = [{}]
    if scores.min() > 0:
        attempts.append({"floc": 0.0})
    fits = []
    for fixed in attempts:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                shape, loc, scale = stats.gamma.fit(scores, **fixed)
        except (ValueError, RuntimeError, FloatingPointError):
            continue
        if not all(np.isfinite((shape, loc, scale))) or shape <= 0 or scale <= 0:
            continue
        statistic = float(stats.kstest(scores, "gamma", args=(shape, loc, scale)).statistic)
        fits.append((statistic, float(shape), float(loc), float(scale)))
    if not fits:
        return None
    statistic, shape, loc, scale = min(fits)  # the smallest KS statistic
    return GammaFit(shape, loc, scale, statistic, ks_limit(len(scores)))


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold, how it was chosen, and what it implies for the decider."""

    threshold: float
    method: str  # gamma_quantile | empirical_quantile | gamma_false_alarms | empirical_...
    params: dict[str, Any]
    window_exceedance: float  # P(one normal window's score > threshold)
    expected_false_alarms_per_day: float
    alarm_model: AlarmModel
    fit: GammaFit | None
    warnings: tuple[str, ...] = field(default=())


def choose_threshold(
    runs: Sequence[np.ndarray],
    *,
    hop_seconds: float,
    window_seconds: float,
    k: int,
    n: int,
    quantile: float | None = None,
    false_alarms_per_day: float | None = None,
) -> ThresholdChoice:
    """The threshold for honest normal scores, one array per recording (in window order).

    Give exactly one of `quantile` (0 < Q < 1) or `false_alarms_per_day` (> 0). Raises
    NotEnoughAudio when the scores cannot support the asked false-alarm rate, UserError
    for a target out of range, ValueError when there are no scores.
    """
    if (quantile is None) == (false_alarms_per_day is None):
        raise ValueError("give exactly one of quantile and false_alarms_per_day")
    scores = np.concatenate([np.asarray(r, dtype=np.float64) for r in runs]) if runs else []
    if len(scores) == 0 or not np.isfinite(scores).all():
        raise ValueError("need finite scores from at least one window")
    overlap_windows = max(1, math.ceil(window_seconds / hop_seconds - 1e-9))
    tau = correlation_windows(runs, overlap_windows)
    model = AlarmModel(hop_seconds, k, n, block_windows=math.ceil(tau - 1e-9))
    n_independent = len(scores) / model.block_windows
    fit = fit_gamma(scores)
    common = {
        "correlation_windows": round(tau, 3),
        "block_windows": model.block_windows,
        "independent_windows": round(n_independent, 2),
        "gamma": fit.to_dict() if fit else None,
        "fit_good": bool(fit and fit.good),
    }
    if quantile is not None:
        return _at_quantile(scores, quantile, model, fit, n_independent, common)
    return _for_false_alarms(
        scores, false_alarms_per_day, model, fit, n_independent, window_seconds, common
    )


def _at_quantile(
    scores: np.ndarray,
    quantile: float,
    model: AlarmModel,
    fit: GammaFit | None,
    n_independent: float,
    common: dict[str, Any],
) -> ThresholdChoice:
    if not 0.0 < quantile < 1.0:
        raise UserError(f"--quantile must be between 0 and 1, not {quantile}", exit_code=2)
    notes = []
    if n_independent < MIN_INDEPENDENT_WINDOWS:
        notes.append(
            f"only about {n_independent:.0f} independent windows of normal sound (fewer than "
            f"{MIN_INDEPENDENT_WINDOWS}): the {quantile:g} quantile is a rough estimate"
        )
    if fit is not None and fit.good:
        threshold, method, p = fit.ppf(quantile), "gamma_quantile", 1.0 - quantile
    else:
        notes.append(_poor_fit_note(fit))
        threshold = float(np.quantile(scores, quantile))
        method, p = "empirical_quantile", float(np.mean(scores > threshold))
    return ThresholdChoice(
        threshold=float(threshold),
        method=method,
        params={"quantile": quantile, **common},
        window_exceedance=p,
        expected_false_alarms_per_day=model.false_alarms_per_day(p),
        alarm_model=model,
        fit=fit,
        warnings=tuple(notes),
    )


def _for_false_alarms(
    scores: np.ndarray,
    per_day: float,
    model: AlarmModel,
    fit: GammaFit | None,
    n_independent: float,
    window_seconds: float,
    common: dict[str, Any],
) -> ThresholdChoice:
    try:
        p = model.exceedance_for(per_day)
    except ValueError as exc:
        raise UserError(f"--false-alarms-per-day: {exc}", exit_code=2) from None
    good = fit is not None and fit.good
    tail = None if good else fit_tail(scores, ks_limit)
    tail_good = tail is not None and tail.good and p < tail.fraction
    reach = EXTRAPOLATION if good or tail_good else 1.0
    needed = max(MIN_INDEPENDENT_WINDOWS, 1.0 / (reach * p))
    if n_independent < needed:
        source = _tail_source(fit, tail, tail_good, len(scores))
        raise NotEnoughAudio(
            _not_enough_message(per_day, p, model, needed, n_independent, window_seconds, source)
        )
    notes = [] if good or tail_good else [_poor_fit_note(fit)]
    if good:
        threshold, method = fit.isf(p), "gamma_false_alarms"
    elif tail_good:
        threshold, method = tail.isf(p), "tail_false_alarms"
        common = {**common, "tail": tail.to_dict()}
    else:
        threshold, method = float(np.quantile(scores, 1.0 - p)), "empirical_false_alarms"
    return ThresholdChoice(
        threshold=float(threshold),
        method=method,
        params={"false_alarms_per_day": per_day, **common},
        window_exceedance=p,
        expected_false_alarms_per_day=model.false_alarms_per_day(p),
        alarm_model=model,
        fit=fit,
        warnings=tuple(notes),
    )


def _poor_fit_note(fit: GammaFit | None) -> str:
    if fit is None:
        return "no gamma distribution could be fitted to the scores: using the empirical quantile"
    return (
        f"the gamma fit is poor (KS statistic {fit.ks_statistic:.3f} > {fit.ks_limit:.3f}): "
        "using the empirical quantile"
    )


def _tail_source(fit: GammaFit | None, tail, tail_good: bool, n_scores: int) -> str:
    """Which tail the threshold would be read from, and why, for NotEnoughAudio."""
    if fit is not None and fit.good:
        return "the fitted gamma tail"
    if tail_good:
        return "the fitted Pareto tail (the gamma fit is poor)"
    if tail is None:
        needed = math.ceil(MIN_EXCEEDANCES / (1 - TAIL_QUANTILE) - 1e-9)
        why = f"a tail fit needs at least {needed} windows, {n_scores} were given"
    else:
        why = "the Pareto tail fit is poor too"
    return f"the empirical tail (the gamma fit is poor; {why})"


def _not_enough_message(
    per_day: float,
    p: float,
    model: AlarmModel,
    needed_independent: float,
    n_independent: float,
    window_seconds: float,
    tail: str,
) -> str:
    needed_windows = math.ceil(needed_independent * model.block_windows)
    have_windows = round(n_independent * model.block_windows)
    needed_s = (needed_windows - 1) * model.hop_seconds + window_seconds
    return (
        f"{per_day:g} false alarm(s) a day with {model.describe()} needs a per-window "
        f"exceedance of {p:.2g}; to set that from {tail}, about {_duration(needed_s)} of "
        f"normal sound is needed ({needed_windows} windows), but only {have_windows} windows "
        "were given. Record longer, add recordings, ask for more false alarms a day, or use "
        "--quantile."
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
