"""Honest scores: no window is scored by a scorer fitted on it (or on audio it shares),
and a synthetic fault is scored by the scorer that left its own clean window out."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.calibration.honest import (
    Probes,
    gap_windows,
    honest_scores,
    make_folds,
    split_runs,
)
from edge_asd.errors import UserError
from edge_asd.scoring.features import POOLING_R, WindowFeatures
from edge_asd.scoring.knn import KnnScorer, build_bank, knn_scores
from edge_asd.scoring.registry import FitContext, FitData

CONTEXT = FitContext(("fan/section_00",))


def clustered(counts: list[int], dim: int = 8, seed: int = 0) -> WindowFeatures:
    """Recordings whose embeddings sit tightly around a direction of their own."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=dim) + 0.01 * rng.normal(size=(n, dim)) for n in counts]
    embedding = np.concatenate(parts).astype(np.float32)
    n = len(embedding)
    return WindowFeatures(
        embedding, np.zeros((n, 1), np.float32), np.zeros((n, len(POOLING_R), 4), np.float32)
    )


def test_a_window_shares_audio_with_the_next_window_over_hop_minus_one():
    assert gap_windows(10.0, 1.0) == 9
    assert gap_windows(10.0, 0.5) == 19
    assert gap_windows(10.0, 10.0) == 0


def test_every_window_is_held_out_exactly_once_and_never_fitted_on_then():
    for counts in ([5, 7, 3], [4] * 23, [40]):
        folds = make_folds(counts, [False] * len(counts), gap=3)
        held = np.sum([f.held_out for f in folds], axis=0)
        assert held.tolist() == [1] * sum(counts)
        assert all(not (f.held_out & f.fitted_on).any() for f in folds)


def test_few_recordings_are_left_out_one_by_one():
    folds = make_folds([3, 2, 4], [False] * 3, gap=9)
    assert len(folds) == 3
    owner = np.repeat([0, 1, 2], [3, 2, 4])
    for i, fold in enumerate(folds):
        assert fold.held_out.tolist() == (owner == i).tolist()
        assert fold.fitted_on.tolist() == (owner != i).tolist()


def test_many_recordings_are_grouped_into_ten_folds():
    assert len(make_folds([2] * 25, [False] * 25, gap=9)) == 10


def test_one_recording_is_cut_into_stretches_with_a_gap_of_shared_audio():
    gap = 9
    folds = make_folds([100], [False], gap=gap)
    assert len(folds) == 5
    index = np.arange(100)
    for fold in folds:
        held, fitted = index[fold.held_out], index[fold.fitted_on]
        # no fitted window within `gap` windows of a held-out one: they would share audio
        assert np.abs(held[:, None] - fitted[None, :]).min() > gap


def test_one_short_recording_cannot_be_scored_honestly():
    with pytest.raises(UserError, match="too short"):
        make_folds([12], [False], gap=9)


def test_a_recording_is_never_scored_by_a_scorer_fitted_on_it():
    counts = [20, 20, 20, 20]
    features = clustered(counts)
    data = FitData(features)
    folds = make_folds(counts, [False] * 4, gap=9)
    honest = honest_scores(KnnScorer, {"n_centres": 4}, data, folds, CONTEXT)
    own_bank = build_bank(features.embedding, 4)
    dishonest = knn_scores(features.embedding, own_bank)
    for scores, own in zip(split_runs(honest.normal, counts), split_runs(dishonest, counts),
                           strict=True):  # fmt: skip
        # each recording is a cluster of its own: only a bank without it scores it far
        assert scores.min() > 10 * own.max()
    assert honest.probes.shape == (0,)


def test_new_condition_windows_are_scored_without_themselves_and_the_main_set_stays_in():
    counts, is_new = [15, 15, 15, 6, 6], [False, False, False, True, True]
    features = clustered(counts, seed=1)
    new = np.repeat(np.array(is_new), counts)
    folds = make_folds(counts, is_new, gap=9)
    assert len(folds) == 5
    for fold in folds[:3]:  # main folds keep every new window
        assert fold.fitted_on[new].all() and fold.fitted_on[~new].sum() == 30
    for fold in folds[3:]:  # new folds keep every main window
        assert fold.fitted_on[~new].all() and fold.fitted_on[new].sum() == 6
    honest = honest_scores(KnnScorer, {"n_centres": 3}, FitData(features, new), folds, CONTEXT)
    assert honest.normal[new].min() > 0.01  # a raw bank entry would score itself 0


def test_a_lone_new_condition_clip_leans_on_the_main_bank():
    counts, is_new = [10, 10, 1], [False, False, True]
    features = clustered(counts, seed=3)
    new = np.repeat(np.array(is_new), counts)
    folds = make_folds(counts, is_new, gap=9)
    honest = honest_scores(KnnScorer, {"n_centres": 2}, FitData(features, new), folds, CONTEXT)
    assert np.isfinite(honest.normal).all() and honest.normal[-1] > 0.01


def test_a_fault_is_scored_by_the_scorer_that_left_its_own_window_out():
    counts = [20, 20, 20]
    features = clustered(counts, seed=4)
    folds = make_folds(counts, [False] * 3, gap=9)
    # "faults" that are exact copies of three normal windows, one from each recording
    source = np.array([5, 25, 45])
    probes = Probes(features.take(source), source)
    honest = honest_scores(KnnScorer, {"n_centres": 4}, FitData(features), folds, CONTEXT, probes)
    # a copy scores as its window did: same scorer, fitted on neither
    np.testing.assert_allclose(honest.probes, honest.normal[source])
    assert honest.probes.min() > 0.1  # a scorer fitted on the window would score it 0
