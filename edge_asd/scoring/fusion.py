"""Score fusion: several scorers' scores standardised on honest normal scores, then combined.

Each scorer's scale is arbitrary (a cosine distance, a negative log-likelihood), so each is
first turned into a z-score with the mean and standard deviation of its honest (left-out)
scores on the machine's normal calibration windows. The fused score is the mean of the
z-scores by default: it averages independent evidence, so normal windows' fused scores
spread less than any single scorer's (1/sqrt(n) of it for n independent scorers), and a
fault that one scorer sees strongly still lifts the mean; it is also what the fused
threshold can be trusted on, since the mean of z-scores keeps a smooth, gamma-like tail.
`max` is offered for faults that only one scorer can see; it raises the normal spread
(a union of alarms: every scorer's false alarms add up). Either way the threshold is set
on the fused honest scores, so the false-alarm rate stays what calibration asked for.
Measured on ../shared/data in docs/quality.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

COMBINERS = ("mean", "max")


@dataclass(frozen=True)
class Standardiser:
    """z = (score - mean) / std, from a scorer's honest normal scores."""

    mean: float
    std: float

    @classmethod
    def fit(cls, normal_scores: np.ndarray) -> Standardiser:
        """From honest normal scores [N]; raises ValueError when fewer than two are given."""
        scores = np.asarray(normal_scores, dtype=np.float64)
        if scores.size < 2:
            raise ValueError("standardising a scorer needs at least two normal scores")
        return cls(float(scores.mean()), float(scores.std()) or 1.0)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, dtype=np.float64) - self.mean) / self.std


def fuse(
    scores: Mapping[str, np.ndarray],
    standardisers: Mapping[str, Standardiser],
    combiner: str = "mean",
) -> np.ndarray:
    """The fused score [B] of each scorer's scores [B], by `combiner` over their z-scores.

    Raises ValueError for an unknown combiner or when the scorers and standardisers differ.
    """
    if combiner not in COMBINERS:
        raise ValueError(f"combiner must be one of {COMBINERS}, not {combiner!r}")
    if set(scores) != set(standardisers):
        raise ValueError(
            f"scores for {sorted(scores)} but standardisers for {sorted(standardisers)}"
        )
    z = np.stack([standardisers[name](scores[name]) for name in sorted(scores)])
    return z.mean(axis=0) if combiner == "mean" else z.max(axis=0)


def fit_standardisers(runs: Mapping[str, Sequence[np.ndarray]]) -> dict[str, Standardiser]:
    """A standardiser per scorer from its honest normal scores, one array per recording."""
    return {name: Standardiser.fit(np.concatenate(parts)) for name, parts in runs.items()}


def fuse_runs(
    runs: Mapping[str, Sequence[np.ndarray]],
    standardisers: Mapping[str, Standardiser],
    combiner: str = "mean",
) -> list[np.ndarray]:
    """The fused scores of each recording, from every scorer's scores of that recording."""
    counts = {name: len(parts) for name, parts in runs.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"scorers scored different numbers of recordings: {counts}")
    n_recordings = next(iter(counts.values()), 0)
    return [
        fuse({name: parts[i] for name, parts in runs.items()}, standardisers, combiner)
        for i in range(n_recordings)
    ]


def parse_scorers(spec: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """`knn+twfr` -> ("knn", "twfr"); ValueError naming an unknown or repeated scorer."""
    names = tuple(part.strip() for part in spec.split("+"))
    unknown = [n for n in names if n not in known]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"scorer {spec!r}: use one of {', '.join(known)} or several joined by '+'")
    return names
