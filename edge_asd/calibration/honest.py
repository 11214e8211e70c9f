"""Honest calibration scores: no window is scored by a memory bank built from itself.

A k-means bank scores its own members (and the windows that overlap them) too low, so a
threshold set on such scores alarms on fresh normal sound; a Gaussian mixture (twfr) finds
its own training windows likelier than fresh ones in the same way. Each recording is
therefore scored against a bank (or mixture) built without it:

- with two or more recordings in a set, leave one recording out (or, past `max_folds`
  recordings, leave out one of `max_folds` groups of recordings: k-fold);
- a set of a single recording is cut into `max_folds` contiguous stretches; each is
  scored against a bank that also leaves out the `gap_windows` windows on either side of
  it, which share audio with it (a window overlaps the next `window / hop - 1`).

The main set and the optional new-condition set (kept raw in the bank) are folded the same
way; while a fold of one is held out, the whole other set stays in the bank.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_asd.errors import UserError

if TYPE_CHECKING:
    from edge_asd.scoring.twfr import TwfrModel

MAX_FOLDS = 10
SINGLE_RECORDING_FOLDS = 5


@dataclass(frozen=True)
class Fold:
    """Masks over a set's windows (all recordings concatenated): scored, and kept in the bank."""

    held_out: np.ndarray  # bool [windows]
    in_bank: np.ndarray  # bool [windows]


def leave_out_folds(
    window_counts: Sequence[int],
    gap_windows: int,
    max_folds: int = MAX_FOLDS,
    need_bank: bool = True,
) -> list[Fold]:
    """The folds of a set of recordings with `window_counts` windows each (see the module).

    Every window is held out by exactly one fold. Raises UserError when `need_bank` and a
    fold would keep no window for the bank (one recording too short to cut into stretches).
    """
    counts = [int(c) for c in window_counts]
    total = sum(counts)
    if total == 0:
        return []
    if len(counts) >= 2:
        owner = np.repeat(np.arange(len(counts)), counts) % max_folds  # recording i -> i % K
        folds = [Fold(owner == f, owner != f) for f in range(min(len(counts), max_folds))]
    else:
        folds = _stretch_folds(total, gap_windows, SINGLE_RECORDING_FOLDS)
    if need_bank and any(not fold.in_bank.any() for fold in folds):
        raise UserError(
            f"one recording of {total} window(s) is too short to score honestly against a "
            f"memory bank built without it: give two or more recordings, or one long enough "
            f"for {SINGLE_RECORDING_FOLDS} stretches with {gap_windows} windows between "
            f"(at least {SINGLE_RECORDING_FOLDS + 2 * gap_windows + 1} windows)"
        )
    return folds


def _stretch_folds(total: int, gap_windows: int, n_stretches: int) -> list[Fold]:
    n_stretches = max(1, min(n_stretches, total))
    edges = np.linspace(0, total, n_stretches + 1).round().astype(int)
    index = np.arange(total)
    folds = []
    for start, stop in itertools.pairwise(edges):
        held_out = (index >= start) & (index < stop)
        near = (index >= start - gap_windows) & (index < stop + gap_windows)
        folds.append(Fold(held_out, ~near))
    return folds


BankBuilder = Callable[[np.ndarray, np.ndarray | None], Any]  # a bank, or any fitted state
Scorer = Callable[[np.ndarray, Any], np.ndarray]


def honest_scores(
    main: Sequence[np.ndarray],
    new_condition: Sequence[np.ndarray],
    build: BankBuilder,
    score: Scorer,
    gap_windows: int,
    max_folds: int = MAX_FOLDS,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Leave-out scores of every window of every recording, per recording, in order.

    `main` and `new_condition` hold one embedding array [windows, dim] per recording;
    `build(main_embeddings, new_condition_embeddings | None) -> bank` and
    `score(embeddings, bank) -> scores [windows]`. Returns (main scores, new scores).
    """
    sets = [list(main), list(new_condition)]
    stacked = [_stack(s) for s in sets]
    out = [np.full(len(x), np.nan) for x in stacked]
    for which in (0, 1):
        other = stacked[1 - which]
        counts = [len(r) for r in sets[which]]
        # the main set must keep a bank of its own; a new condition fold may lean on main
        for fold in leave_out_folds(counts, gap_windows, max_folds, need_bank=which == 0):
            kept = stacked[which][fold.in_bank]
            main_part, new_part = (kept, other) if which == 0 else (other, kept)
            bank = build(main_part, new_part if len(new_part) else None)
            out[which][fold.held_out] = score(stacked[which][fold.held_out], bank)
    return _split(out[0], sets[0]), _split(out[1], sets[1])


def _stack(recordings: list[np.ndarray]) -> np.ndarray:
    if not recordings:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate([np.asarray(r, dtype=np.float32) for r in recordings])


def _split(values: np.ndarray, recordings: list[np.ndarray]) -> list[np.ndarray]:
    edges = np.cumsum([len(r) for r in recordings])[:-1]
    return list(np.split(values, edges)) if recordings else []


def honest_knn_scores(
    main: Sequence[np.ndarray],
    new_condition: Sequence[np.ndarray],
    n_centres: int,
    gap_windows: int,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`honest_scores` with the knn scorer's bank (k-means centres + raw new condition).

    When a fold leaves fewer main windows than `n_centres`, its bank has as many centres
    as it has windows.
    """
    from edge_asd.scoring.knn import build_bank, knn_scores
    from edge_asd.scoring.twfr import one_blas_thread

    def build(main_part: np.ndarray, new_part: np.ndarray | None) -> np.ndarray:
        if len(main_part) == 0:  # a fold of the new condition set with no main set at all
            return np.asarray(new_part)
        centres = min(n_centres, len(main_part))
        return build_bank(main_part, centres, new_condition=new_part, seed=seed)

    with one_blas_thread():
        return honest_scores(main, new_condition, build, knn_scores, gap_windows)


def honest_twfr_scores(
    main: Sequence[np.ndarray],
    new_condition: Sequence[np.ndarray],
    r: float,
    n_components: int,
    reg_covar: float,
    gap_windows: int,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`honest_scores` with the twfr scorer: a mixture fitted without the held-out windows.

    `main` and `new_condition` hold each recording's features pooled at `r` [windows,
    n_mels]; both sets are normal sound, so a fold's mixture is fitted on what is kept of
    either, with the chosen components and regularisation.
    """
    from edge_asd.scoring.twfr import fit_pooled, one_blas_thread

    def build(main_part: np.ndarray, new_part: np.ndarray | None) -> TwfrModel:
        parts = [p for p in (main_part, new_part) if p is not None and len(p)]
        return fit_pooled(np.concatenate(parts), r, n_components, reg_covar, seed)

    def score(features: np.ndarray, model: TwfrModel) -> np.ndarray:
        return model.pooled_scores(features)

    with one_blas_thread():
        return honest_scores(main, new_condition, build, score, gap_windows)
