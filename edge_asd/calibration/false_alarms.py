"""Expected false alarms a day of the k-of-n decider on normal sound, and the inverse.

The decider opens an event when `k` of the last `n` window scores exceed the threshold.
A false alarm is such an opening on normal sound. Window scores are NOT independent: at a
1 s hop a 10 s window shares 90% of its audio with the next one, so a loud moment raises
about ten consecutive scores together. The model used here says so explicitly:

1. Per-window exceedance. `p` = P(score > threshold) for one window, from the marginal
   distribution of the normal scores (the fitted gamma tail, or the empirical tail).
   Overlap does not bias a marginal: every window is a fair draw, just not a fresh one.
2. Correlation as blocks. Scores are taken as constant within blocks of `block_windows`
   consecutive windows and independent between blocks. `block_windows` is the integrated
   autocorrelation time of the calibration scores, rounded up and clamped to
   [1, windows that share audio] (10 at a 10 s window and 1 s hop); when the recordings
   are too short to estimate it, the clamp's upper end is used, which is the pessimistic
   choice for small `p`.
3. k-of-n over blocks. With blocks, k exceeding windows need `ceil(k / b)` exceeding
   blocks among the last `ceil(n / b)`. For independent blocks the probability that the
   condition becomes true at a given block (it holds now and did not hold one block ago) is
   exactly C(n_b-1, k_b-1) p^k_b (1-p)^(n_b-k_b+1). Events a day = blocks a day times that.
   While an event is open no new one can start and closing needs `m` windows below, so
   this counts condition onsets: an upper bound on events, tight when `p` is small.

Hand-checkable: with k = n = 1 and independent windows at a 1 s hop, events a day are
86400 p (1-p), the up-crossings of a coin with heads probability p. With a 10-window block
and k <= 10, any one exceeding block opens an event: 8640 p (1-p) a day, whatever n is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SECONDS_PER_DAY = 86400.0  # the project's one: alarm rates are per day, so are ages
MIN_LAG_PAIRS = 100  # fewer score pairs at a lag than this: too few to call scores independent


def onset_probability(p: float, k: int, n: int) -> float:
    """P(a k-of-n condition over independent exceedances of probability p starts at a step)."""
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability, got {p}")
    return math.comb(n - 1, k - 1) * p**k * (1.0 - p) ** (n - k + 1)


def correlation_windows(runs: Sequence[np.ndarray], max_windows: int) -> float:
    """Integrated autocorrelation time of window scores, in windows, within [1, max_windows].

    `runs` are the score sequences of separate recordings (no pair spans two of them).
    tau = 1 + 2 * sum of the autocorrelations at lags 1.. until the first that is not
    clearly above noise (<= 2 / sqrt(pairs), about the 95% bound for independent scores,
    so that independent scores give 1 rather than a little more). Returns `max_windows`
    (the pessimistic end) when a lag has fewer than MIN_LAG_PAIRS pairs before the sum
    stops, or when the scores do not vary; 1 when every recording is a single window (no
    two windows share audio).
    """
    if max_windows <= 1:
        return float(max(1, max_windows))
    if runs and all(len(r) < 2 for r in runs):
        return 1.0
    runs = [np.asarray(r, dtype=np.float64) for r in runs if len(r) >= 2]
    if not runs:
        return float(max_windows)
    pooled = np.concatenate(runs)
    mean, variance = pooled.mean(), pooled.var()
    if not variance > 0:
        return float(max_windows)
    tau = 1.0
    for lag in range(1, max_windows):
        products = [(r[:-lag] - mean) * (r[lag:] - mean) for r in runs if len(r) > lag]
        pairs = sum(len(p) for p in products)
        if pairs < MIN_LAG_PAIRS:
            return float(max_windows)
        rho = float(sum(p.sum() for p in products) / (pairs * variance))
        if rho <= 2.0 / math.sqrt(pairs):
            break
        tau += 2.0 * rho
    return float(min(max(tau, 1.0), max_windows))


@dataclass(frozen=True)
class AlarmModel:
    """A k-of-n decider at `hop_seconds` over scores correlated in blocks of windows."""

    hop_seconds: float
    k: int
    n: int
    block_windows: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ValueError(f"need 1 <= k <= n, got k={self.k}, n={self.n}")
        if self.hop_seconds <= 0 or self.block_windows < 1:
            raise ValueError("hop_seconds must be > 0 and block_windows >= 1")

    @property
    def blocks_per_day(self) -> float:
        return SECONDS_PER_DAY / (self.hop_seconds * self.block_windows)

    @property
    def block_k(self) -> int:
        return math.ceil(self.k / self.block_windows)

    @property
    def block_n(self) -> int:
        return max(self.block_k, math.ceil(self.n / self.block_windows))

    @property
    def max_exceedance(self) -> float:
        """The p at which the onset rate peaks; above it more exceedance means fewer onsets."""
        return self.block_k / (self.block_n + 1)

    def false_alarms_per_day(self, p: float) -> float:
        """Expected event openings a day at per-window exceedance probability `p`."""
        return self.blocks_per_day * onset_probability(p, self.block_k, self.block_n)

    def exceedance_for(self, per_day: float) -> float:
        """The per-window exceedance p at which `per_day` false alarms a day are expected.

        Raises ValueError when `per_day` is not positive or is more than this decider
        can produce at any threshold.
        """
        if not per_day > 0:
            raise ValueError(f"false alarms a day must be > 0, got {per_day}")
        high = self.max_exceedance
        if per_day > self.false_alarms_per_day(high):
            raise ValueError(
                f"{per_day:g} false alarms a day is more than a {self.k}-of-{self.n} decider "
                f"at a {self.hop_seconds:g} s hop can raise "
                f"({self.false_alarms_per_day(high):.3g} at most)"
            )
        low = 0.0
        for _ in range(200):  # bisection: the rate rises monotonically on [0, high]
            middle = 0.5 * (low + high)
            if self.false_alarms_per_day(middle) < per_day:
                low = middle
            else:
                high = middle
        return 0.5 * (low + high)

    def describe(self) -> str:
        return (
            f"{self.k}-of-{self.n} at a {self.hop_seconds:g} s hop, scores correlated over "
            f"{self.block_windows} window(s)"
        )
