"""The generalised Pareto tail: a threshold far beyond the data where the gamma fit fails."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from edge_asd.calibration.tail import MIN_EXCEEDANCES, fit_tail
from edge_asd.calibration.threshold import choose_threshold, ks_limit


def heavy_tailed_runs(seed: int, windows: int = 6000) -> list[np.ndarray]:
    """Scores with a Student-t (3 dof) tail: no gamma shape, a Pareto-like tail."""
    scores = stats.t.rvs(3, size=windows, random_state=np.random.default_rng(seed))
    return list(np.split(scores, 6))


@pytest.mark.parametrize("seed", range(4))
def test_the_tail_fit_extrapolates_a_heavy_tail_to_within_a_factor_of_the_true_quantile(seed):
    scores = np.concatenate(heavy_tailed_runs(seed))
    tail = fit_tail(scores, ks_limit)
    assert tail is not None and tail.good
    p = 1e-4  # 60 times beyond the 6000 scores
    true_exceedance = stats.t.sf(tail.isf(p), 3)
    assert p / 3 < true_exceedance < p * 3


def test_false_alarm_thresholds_use_the_tail_when_the_gamma_fit_is_poor():
    runs = heavy_tailed_runs(0)
    choice = choose_threshold(
        runs, hop_seconds=10.0, window_seconds=10.0, k=1, n=1, false_alarms_per_day=1.0
    )
    assert choice.fit is None or not choice.fit.good
    assert choice.method == "tail_false_alarms"
    assert choice.params["tail"]["ks_statistic"] <= choice.params["tail"]["ks_limit"]
    # the threshold is beyond every calibration score: one window in 8640 may pass it
    assert choice.threshold > np.concatenate(runs).max() * 0.5
    assert stats.t.sf(choice.threshold, 3) == pytest.approx(choice.window_exceedance, rel=2.0)


def test_too_few_scores_give_no_tail():
    scores = np.random.default_rng(1).normal(size=10 * MIN_EXCEEDANCES - 20)
    assert fit_tail(scores, ks_limit) is None
