"""Honest scores: no window is scored by a bank that holds it (or audio it shares)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.calibration.honest import (
    honest_knn_scores,
    honest_scores,
    leave_out_folds,
)
from edge_asd.errors import UserError
from edge_asd.scoring.knn import build_bank, knn_scores


def clustered_recordings(n: int, windows: int, dim: int = 8, seed: int = 0):
    """Recordings whose embeddings sit tightly around a direction of their own."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n, dim))
    return [(c + 0.01 * rng.normal(size=(windows, dim))).astype(np.float32) for c in centres]


def test_every_window_is_held_out_exactly_once():
    for counts in ([5, 7, 3], [4] * 23, [40]):
        folds = leave_out_folds(counts, gap_windows=3)
        held = np.sum([f.held_out for f in folds], axis=0)
        assert held.tolist() == [1] * sum(counts)
        assert all(not (f.held_out & f.in_bank).any() for f in folds)


def test_few_recordings_are_left_out_one_by_one():
    folds = leave_out_folds([3, 2, 4], gap_windows=9)
    assert len(folds) == 3
    owner = np.repeat([0, 1, 2], [3, 2, 4])
    for i, fold in enumerate(folds):
        assert fold.held_out.tolist() == (owner == i).tolist()
        assert fold.in_bank.tolist() == (owner != i).tolist()


def test_many_recordings_are_grouped_into_ten_folds():
    folds = leave_out_folds([2] * 25, gap_windows=9)
    assert len(folds) == 10


def test_one_recording_is_cut_into_stretches_with_a_gap_of_shared_audio():
    gap = 9
    folds = leave_out_folds([100], gap_windows=gap)
    assert len(folds) == 5
    index = np.arange(100)
    for fold in folds:
        held = index[fold.held_out]
        bank = index[fold.in_bank]
        # no bank window within `gap` windows of a held-out one: they would share audio
        distance = np.abs(held[:, None] - bank[None, :]).min()
        assert distance > gap


def test_one_short_recording_cannot_be_scored_honestly():
    with pytest.raises(UserError, match="too short"):
        leave_out_folds([12], gap_windows=9)


def test_a_recording_is_never_scored_by_a_bank_that_holds_it():
    recordings = clustered_recordings(4, 20)
    honest, _ = honest_knn_scores(recordings, [], n_centres=4, gap_windows=9)
    own_bank = build_bank(np.concatenate(recordings), 4)
    for recording, scores in zip(recordings, honest, strict=True):
        dishonest = knn_scores(recording, own_bank)
        # each recording is a cluster of its own: only a bank without it scores it far
        assert scores.min() > 10 * dishonest.max()
        assert len(scores) == len(recording)


def test_new_condition_windows_are_scored_without_themselves():
    main = clustered_recordings(3, 15, seed=1)
    new = clustered_recordings(2, 6, seed=2)
    calls = []

    def build(main_part, new_part):
        calls.append((len(main_part), 0 if new_part is None else len(new_part)))
        return build_bank(main_part, 3, new_condition=new_part)

    main_scores, new_scores = honest_scores(main, new, build, knn_scores, gap_windows=9)
    assert [len(s) for s in main_scores] == [15, 15, 15]
    assert [len(s) for s in new_scores] == [6, 6]
    # main folds keep every new window; new folds keep every main window
    assert calls == [(30, 12), (30, 12), (30, 12), (45, 6), (45, 6)]
    for scores in new_scores:
        assert scores.min() > 0.01  # a raw bank entry would score itself 0


def test_a_lone_new_condition_clip_leans_on_the_main_bank():
    main = clustered_recordings(2, 10, seed=3)
    new = clustered_recordings(1, 1, seed=4)
    _, new_scores = honest_knn_scores(main, new, n_centres=2, gap_windows=9)
    assert len(new_scores) == 1 and new_scores[0].shape == (1,)
    assert new_scores[0][0] > 0.01
