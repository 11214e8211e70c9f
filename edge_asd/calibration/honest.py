"""Honest calibration scores: no window is scored by a scorer fitted on itself.

A k-means bank scores its own members (and the windows that overlap them) too low, and a
Gaussian mixture finds its own training windows likelier than fresh ones, so a threshold
set on such scores alarms on fresh normal sound. Each window is therefore scored by a
scorer fitted without it, fold by fold:

- with two or more recordings in a set, leave one recording out (or, past MAX_FOLDS
  recordings, one of MAX_FOLDS groups of recordings: k-fold);
- a set of a single recording is cut into SINGLE_RECORDING_FOLDS contiguous stretches,
  each scored by a scorer that also leaves out the `gap` windows on either side of it
  (they share audio with it: a window overlaps the next `window / hop - 1`).

The main set and the optional new-condition set are folded the same way; while a fold
of one is held out, the whole other set stays in. Synthetic faults made from a window
(edge_asd.calibration.probes) are scored in the fold that holds that window out, so a
fault and its own clean window are judged by the same scorer, fitted on neither.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_asd.errors import UserError
from edge_asd.scoring.features import WindowFeatures
from edge_asd.scoring.registry import FitContext, FitData, Scorer

MAX_FOLDS = 10
SINGLE_RECORDING_FOLDS = 5


@dataclass(frozen=True)
class Fold:
    """Masks over all windows (every recording, main then new condition): scored, and fitted on."""

    held_out: np.ndarray  # bool [windows]
    fitted_on: np.ndarray  # bool [windows]


def gap_windows(window_seconds: float, hop_seconds: float) -> int:
    """Windows after a window that share audio with it."""
    return max(0, math.ceil(window_seconds / hop_seconds - 1e-9) - 1)


def make_folds(counts: Sequence[int], is_new: Sequence[bool], gap: int) -> list[Fold]:
    """The folds over recordings with `counts` windows each (see the module).

    Every window is held out by exactly one fold. Raises UserError when the main set is
    one recording too short to cut into stretches with a gap between them.
    """
    counts = [int(c) for c in counts]
    new = np.repeat(np.asarray(is_new, dtype=bool), counts)
    folds = []
    for which in (False, True):
        members = [i for i, flag in enumerate(is_new) if bool(flag) == which]
        if not members:
            continue
        in_set = new == which
        for held_local, kept_local in _set_folds([counts[i] for i in members], gap, which):
            held, kept = np.zeros(len(new), bool), ~in_set  # the other set stays in
            held[in_set] = held_local
            kept[in_set] = kept_local
            folds.append(Fold(held, kept))
    return folds


def _set_folds(counts: list[int], gap: int, is_new: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    total = sum(counts)
    if len(counts) >= 2:
        owner = np.repeat(np.arange(len(counts)), counts) % MAX_FOLDS
        return [(owner == f, owner != f) for f in range(min(len(counts), MAX_FOLDS))]
    folds = _stretch_folds(total, gap, SINGLE_RECORDING_FOLDS)
    if not is_new and any(not kept.any() for _, kept in folds):
        raise UserError(
            f"one recording of {total} window(s) is too short to score honestly against a "
            f"scorer fitted without it: give two or more recordings, or one long enough "
            f"for {SINGLE_RECORDING_FOLDS} stretches with {gap} windows between "
            f"(at least {SINGLE_RECORDING_FOLDS + 2 * gap + 1} windows)"
        )
    return folds


def _stretch_folds(total: int, gap: int, n_stretches: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n_stretches = max(1, min(n_stretches, total))
    edges = np.linspace(0, total, n_stretches + 1).round().astype(int)
    index = np.arange(total)
    folds = []
    for start, stop in itertools.pairwise(edges):
        held = (index >= start) & (index < stop)
        near = (index >= start - gap) & (index < stop + gap)
        folds.append((held, ~near))
    return folds


@dataclass(frozen=True)
class Probes:
    """Windows derived from normal windows (synthetic faults, gain changes): `features`
    [M rows] and, per row, the index of the normal window it was made from (`source`)."""

    features: WindowFeatures
    source: np.ndarray  # int [M]


@dataclass(frozen=True)
class HonestScores:
    """A candidate's honest scores: of every normal window [N], and of every probe [M]."""

    normal: np.ndarray
    probes: np.ndarray


def honest_scores(
    kind: type[Scorer],
    options: Mapping[str, Any],
    data: FitData,
    folds: Sequence[Fold],
    context: FitContext,
    probes: Probes | None = None,
) -> HonestScores:
    """Leave-out scores of every window (and probe) by scorers of `kind` with `options`.

    Raises ValueError when a fold's windows cannot support the scorer.
    """
    normal = np.full(len(data.features), np.nan)
    probe_scores = np.full(0 if probes is None else len(probes.source), np.nan)
    for fold in folds:
        scorer = kind.fit(data.take(fold.fitted_on), options, context)
        normal[fold.held_out] = scorer.score(data.features.take(fold.held_out))
        if probes is not None:
            rows = fold.held_out[probes.source]
            if rows.any():
                probe_scores[rows] = scorer.score(probes.features.take(rows))
    return HonestScores(normal, probe_scores)


def split_runs(values: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """Per-recording pieces of values over all windows (recordings in order)."""
    return list(np.split(np.asarray(values), np.cumsum(counts)[:-1])) if len(counts) else []
