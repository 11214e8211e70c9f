"""Scorer kinds by name: each fits, scores, saves and restores the same way; a new kind
needs only registering; an unknown name says which are known."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.errors import UserError
from edge_asd.scoring.detector import Component, Detector, Standardiser
from edge_asd.scoring.features import POOLING_R, WindowFeatures
from edge_asd.scoring.registry import (
    FitContext,
    FitData,
    kinds,
    parse_kinds,
    scorer_kind,
    stack_scores,
)
from tests.harness.scorer_kinds import LoudnessScorer, registered

LABELS = ("fan/section_00", "fan/section_01", "fan/section_02")
CONTEXT = FitContext(LABELS, "fan/section_00", seed=0, embedding_dim=6, n_mels=10)


def windows(n: int, seed: int, shift: float = 0.0) -> WindowFeatures:
    """Windows of a machine whose sound is `shift` away from normal (0: normal)."""
    rng = np.random.default_rng(seed)
    embedding = np.array([1.0, 0.5, 0, 0, 0, 0]) + 0.1 * rng.normal(size=(n, 6)) + [0, shift] * 3
    logits = np.stack([6 + rng.normal(size=n) - 3 * shift, rng.normal(size=n), np.zeros(n)], 1)
    pooled = np.linspace(2, -2, 10) + 0.3 * rng.normal(size=(n, len(POOLING_R), 10))
    pooled[..., :5] += shift  # louder in the low bands only (a level change would not do)
    return WindowFeatures(
        embedding.astype(np.float32), logits.astype(np.float32), pooled.astype(np.float32)
    )


def test_the_product_kinds_are_registered_by_name():
    assert {"knn", "section", "twfr"} <= set(kinds())
    for name, kind in kinds().items():
        assert kind.kind == name and kind.summary


@pytest.mark.parametrize("name", ["knn", "section", "twfr"])
def test_every_candidate_of_every_kind_round_trips_and_scores_identically(name):
    kind = scorer_kind(name)
    data = FitData(windows(40, seed=1))
    fresh = WindowFeatures.concat([windows(6, seed=2), windows(6, seed=3, shift=1.0)])
    candidates = kind.candidates(CONTEXT)
    assert candidates
    for options in candidates:
        scorer = kind.fit(data, options, CONTEXT)
        params, arrays = scorer.state()
        again = kind.restore(params, arrays, CONTEXT)
        assert again.state()[0] == params, kind.describe(options)
        np.testing.assert_array_equal(again.score(fresh), scorer.score(fresh))
        scores = scorer.score(fresh)
        assert scores.shape == (12,) and scores.dtype == np.float64
        assert scores[6:].mean() > scores[:6].mean(), kind.describe(options)  # higher: odder


def test_a_detector_of_every_kind_round_trips_through_its_state():
    data = FitData(windows(40, seed=1))
    components = tuple(
        Component(scorer_kind(n).fit(data, scorer_kind(n).candidates(CONTEXT)[0], CONTEXT), s)
        for n, s in zip(("knn", "section", "twfr"), (Standardiser(0.1, 0.05),
                        Standardiser(2.0, 1.0), Standardiser(-5.0, 3.0)), strict=True)
    )  # fmt: skip
    detector = Detector(components, "max")
    state, arrays = detector.to_state()
    assert [c["kind"] for c in state["components"]] == ["knn", "section", "twfr"]
    assert all(name[:3] in ("c0_", "c2_") for name in arrays)  # section has no arrays
    again = Detector.from_state(state, arrays, CONTEXT, "cal.yaml")
    assert again.kind == "knn+section+twfr" and again.combiner == "max"
    fresh = windows(8, seed=4, shift=0.5)
    np.testing.assert_array_equal(again.score(fresh), detector.score(fresh))


def test_a_new_kind_needs_only_registering():
    data = FitData(windows(30, seed=1))
    with registered(LoudnessScorer):
        assert scorer_kind("loudness") is LoudnessScorer
        assert parse_kinds("knn+loudness") == ("knn", "loudness")
        scorer = scorer_kind("loudness").fit(data, {}, CONTEXT)
        detector = Detector((Component(scorer, Standardiser(0.0, 0.5)),))
        state, arrays = detector.to_state()
        again = Detector.from_state(state, arrays, CONTEXT, "cal.yaml")
        louder = windows(4, seed=5, shift=4.0)
        np.testing.assert_allclose(again.score(louder), (louder.level_db - scorer.median_db) / 0.5)
        assert again.score(louder).min() > 2.0
    with pytest.raises(UserError, match="unknown scorer 'loudness'"):
        Detector.from_state(state, arrays, CONTEXT, "cal.yaml")


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(UserError, match=r"unknown scorer 'psychic' \(known: knn, section, twfr\)"):
        scorer_kind("psychic")
    with pytest.raises(UserError, match="--scorer: unknown scorer 'bogus'") as caught:
        parse_kinds("knn+bogus")
    assert caught.value.exit_code == 2
    with pytest.raises(UserError, match="names a scorer twice"):
        parse_kinds("knn+knn")
    state = {"combiner": "mean", "components": [
        {"kind": "psychic", "params": {}, "standardiser": {"mean": 0, "std": 1}}]}  # fmt: skip
    with pytest.raises(UserError, match=r"^cal\.yaml: unknown scorer 'psychic' \(known: "):
        Detector.from_state(state, {}, CONTEXT, "cal.yaml")


def test_a_component_missing_what_it_needs_is_refused_naming_the_file_and_component():
    state = {"combiner": "mean", "components": [
        {"kind": "twfr", "params": {"r": 1.0}, "standardiser": {"mean": 0, "std": 1}},
        {"kind": "knn", "params": {}, "standardiser": {"mean": 0, "std": 1}}]}  # fmt: skip
    with pytest.raises(UserError, match=r"cal\.yaml: detector component 0 \(twfr\): .*arrays"):
        Detector.from_state(state, {}, CONTEXT, "cal.yaml")
    twfr = scorer_kind("twfr").fit(FitData(windows(20, seed=1)), {"r": 1.0}, CONTEXT)
    arrays = {f"c0_{k}": v for k, v in twfr.state()[1].items()}
    arrays["c1_bank"] = np.ones((3, 7), np.float32)  # another model's embedding size
    with pytest.raises(UserError, match=r"component 1 \(knn\): the memory bank has shape"):
        Detector.from_state(state, arrays, CONTEXT, "cal.yaml")


def test_scores_of_several_scorers_stack_one_row_each():
    data = FitData(windows(20, seed=1))
    scorers = [scorer_kind(n).fit(data, {}, CONTEXT) for n in ("knn", "twfr")]
    fresh = windows(5, seed=2)
    stacked = stack_scores(scorers, fresh)
    assert stacked.shape == (2, 5)
    np.testing.assert_array_equal(stacked[1], scorers[1].score(fresh))
