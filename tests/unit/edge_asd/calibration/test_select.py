"""Choosing a detector by what it detects: per-kind AUC and pAUC of synthetic faults
against normal windows (gain changes counted as normal), their harmonic mean, and a
greedy fusion of candidates that see different faults."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.calibration.honest import HonestScores
from edge_asd.calibration.select import (
    GAIN_KIND,
    MAX_COMPONENTS,
    Candidate,
    Cases,
    choose,
    fuse,
    judge,
)
from edge_asd.metrics import auc, harmonic_mean, pauc
from edge_asd.scoring.detector import Standardiser

PER_CASE = 20  # probes per fault kind and level
LEVELS = (-20.0, -5.0)


def cases() -> Cases:
    kinds, levels = [], []
    for kind in ("impulses", "tone"):
        for level in LEVELS:
            kinds += [kind] * PER_CASE
            levels += [level] * PER_CASE
    kinds += [GAIN_KIND] * PER_CASE
    levels += [3.0] * PER_CASE
    return Cases(np.asarray(kinds), np.asarray(levels))


def candidate(name: str, sees: dict[str, float], seed: int, kind: str = "toy") -> Candidate:
    """Honest scores of a candidate: N(0, 1) normals and gain changes; each fault kind
    shifted by `sees[kind]` standard deviations (at both levels)."""
    rng = np.random.default_rng(seed)
    c = cases()
    shift = np.array([sees.get(str(k), 0.0) for k in c.kind])
    probes = rng.normal(size=len(c.kind)) + shift
    return Candidate(kind, {"name": name}, name, HonestScores(rng.normal(size=300), probes))


def test_a_candidate_is_judged_per_fault_kind_against_normal_and_gain_changed_windows():
    c = cases()
    honest = candidate("a", {"impulses": 3.0, "tone": 1.0}, seed=0).honest
    judged = judge(honest, c)
    negatives = np.r_[honest.normal, honest.probes[c.kind == GAIN_KIND]]
    for kind in ("impulses", "tone"):
        positives = honest.probes[c.kind == kind]
        assert judged.auc[kind] == pytest.approx(auc(negatives, positives))
        assert judged.pauc[kind] == pytest.approx(pauc(negatives, positives))
    assert judged.objective == pytest.approx(
        harmonic_mean([*judged.auc.values(), *judged.pauc.values()])
    )
    assert judged.auc["impulses"] > judged.auc["tone"] > 0.7
    assert set(judged.to_dict()) == {
        "objective",
        "fault_auc",
        "strong_fault_auc",
        "strong_fault_z",
        "strong_pooled_auc",
        "auc",
        "pauc",
    }


def test_a_gain_change_counts_as_normal_so_a_level_meter_is_not_a_fault_detector():
    c = cases()
    rng = np.random.default_rng(1)
    louder = np.where(c.kind == GAIN_KIND, 3.0, 0.0)  # scores gain changes as high as faults
    faults = np.where(c.kind != GAIN_KIND, 3.0, 0.0)
    meter = HonestScores(rng.normal(size=300), rng.normal(size=len(c.kind)) + louder + faults)
    quiet = HonestScores(meter.normal, meter.probes - louder)
    assert judge(meter, c).objective < judge(quiet, c).objective - 0.1


def test_the_strong_fault_auc_reads_the_strongest_level_only():
    c = cases()
    rng = np.random.default_rng(2)
    strong = (c.kind != GAIN_KIND) & (c.level_db == max(LEVELS))
    honest = HonestScores(rng.normal(size=300), rng.normal(size=len(c.kind)) + 5.0 * strong)
    judged = judge(honest, c)
    assert judged.strong_fault_auc > 0.99
    assert 0.6 < judged.fault_auc < 0.85  # the weak half of the faults is not seen


def test_a_candidate_blind_to_one_kind_scores_below_one_that_sees_every_kind_fairly():
    blind = candidate("blind", {"impulses": 6.0}, seed=3)
    fair = candidate("fair", {"impulses": 2.0, "tone": 2.0}, seed=4)
    c = cases()
    assert judge(blind.honest, c).auc["impulses"] > judge(fair.honest, c).auc["impulses"]
    assert judge(blind.honest, c).objective < judge(fair.honest, c).objective


def test_candidates_that_see_different_faults_are_fused_and_the_fusion_stops_growing():
    clicks = candidate("max-pooled", {"impulses": 6.0}, seed=5)
    tones = candidate("mean-pooled", {"tone": 6.0}, seed=6)
    weak = candidate("weak", {"impulses": 0.5, "tone": 0.5}, seed=7)
    choice = choose([weak, clicks, tones], cases())
    assert {c.name for c in choice.components} == {"max-pooled", "mean-pooled"}
    assert choice.judgement.objective > 0.95
    assert choice.judgement.objective > max(j.objective for j in choice.singles.values()) + 0.1
    assert len(choice.steps) == 2 and choice.steps[1].startswith("+ ")
    assert set(choice.singles) == {"max-pooled", "mean-pooled", "weak"}
    # the combined honest scores are those of the standardised components, combined
    standardisers, honest = fuse(choice.components, choice.combiner)
    np.testing.assert_allclose(choice.honest.normal, honest.normal)
    assert choice.standardisers == standardisers
    alone = choose([weak, clicks, tones], cases(), grow=False)
    assert len(alone.components) == 1


def test_a_fusion_never_holds_more_than_the_most_components():
    many = [candidate(f"c{i}", {"impulses": 1.0 + i, "tone": 4.0 - i}, seed=10 + i)
            for i in range(5)]  # fmt: skip
    assert len(choose(many, cases()).components) <= MAX_COMPONENTS


def test_asked_kinds_get_the_best_candidate_of_each_and_the_asked_combiner():
    knn_poor = candidate("knn(16)", {"impulses": 1.0, "tone": 1.0}, seed=20, kind="knn")
    knn_good = candidate("knn(64)", {"impulses": 3.0, "tone": 3.0}, seed=21, kind="knn")
    twfr = candidate("twfr(r=0)", {"impulses": 5.0}, seed=22, kind="twfr")
    choice = choose([knn_poor, knn_good, twfr], cases(), required_kinds=("knn", "twfr"),
                    combiner="max", grow=False)  # fmt: skip
    assert [c.name for c in choice.components] == ["knn(64)", "twfr(r=0)"]
    assert choice.combiner == "max"
    z = [Standardiser.fit(c.honest.normal)(c.honest.probes) for c in choice.components]
    np.testing.assert_allclose(choice.honest.probes, np.maximum(*z))


def test_there_must_be_a_candidate():
    with pytest.raises(ValueError, match="no candidate"):
        choose([], cases())


def test_a_detector_that_sees_one_fault_kind_is_not_blind_and_one_that_sees_none_is():
    from edge_asd.calibration.build import is_blind as blind

    # knn on a model that never heard the machine: sees strong impulses, not tones
    one_kind = judge(candidate("one", {"impulses": 3.0, "tone": 0.0}, seed=4).honest, cases())
    assert not blind(one_kind)
    # scores that tell nothing apart: over many draws, the best of the kinds by chance
    # alone is refused nearly always (a 1 % test, corrected for the kinds)
    refused = [blind(judge(candidate("none", {}, seed=s).honest, cases())) for s in range(200)]
    assert np.mean(refused) >= 0.97
