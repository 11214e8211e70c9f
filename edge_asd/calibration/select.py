"""Choosing a machine's detector by what it detects: synthetic faults, never real anomalies.

Every candidate (a scorer kind with one option set: a knn bank size, a twfr pooling,
mixture size, regularisation and level normalisation, the section scorer) is scored
honestly (edge_asd.calibration.honest) on the machine's normal windows and on synthetic
faults made from held-out normal windows (edge_asd.faults: impulses, a tone, bursts,
modulation, a band change, each at several levels), plus the same windows with the gain
changed by a few dB, which count as normal: a microphone's gain is not a fault.

A candidate is judged per fault kind by the AUC and the partial AUC (FPR <= 0.1, where a
threshold for a few false alarms a day lies) of that kind's faults against the normal
windows, as DCASE judges systems; its **objective** is the harmonic mean of all of them, so
a candidate blind to one kind scores low however well it sees the others. Likelihoods of
differently pooled features are never compared: they are not comparable.

The detector starts as the best single candidate and grows greedily (up to
MAX_COMPONENTS) by the candidate and combiner (mean or max of z-scores,
edge_asd.scoring.detector) that raise the objective most, while it rises by at least
MIN_GAIN: one pooling rarely serves every fault kind (max pooling sees clicks, mean
pooling steady tones), and a fusion of both often serves more. A fusion draws on the
SHORTLIST best candidates and on each fault kind's specialist (the candidate that
separates that kind best), so a candidate that sees one kind far better than the rest is
tried even when it is poor on average.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edge_asd.calibration.honest import Fold, HonestScores, Probes, honest_scores
from edge_asd.metrics import auc, harmonic_mean, pauc
from edge_asd.scoring.detector import COMBINERS, Standardiser, combine
from edge_asd.scoring.registry import FitContext, FitData, scorer_kind

GAIN_KIND = "gain"  # probes whose level is a gain change in dB: normal, not a fault
MAX_COMPONENTS = 3
# Objective gain a further component must bring: above the noise of an AUC estimated from
# a few dozen faulted windows per kind (its standard error is about 0.03 with 24 probes),
# so that a fusion is not grown on noise; and no fusion at all from fewer probes.
MIN_GAIN = 0.03
MIN_PROBES_TO_GROW = 12
# Candidates whose objectives are this close are a tie (within the noise of the AUCs):
# the simplest of them is taken (the most regularised, the fewest components), which
# generalises best to a recording of the machine that calibration never heard.
TIE = 0.01
SHORTLIST = 4  # best single candidates overall a fusion may draw on, besides specialists


@dataclass(frozen=True)
class Cases:
    """What each probe is: `kind` [M] (a fault kind, or GAIN_KIND) and `level_db` [M]."""

    kind: np.ndarray
    level_db: np.ndarray

    def fault_kinds(self) -> list[str]:
        return sorted({str(k) for k in self.kind} - {GAIN_KIND})


@dataclass(frozen=True, eq=False)
class Candidate:
    """One scorer kind with one option set, and its honest scores."""

    kind: str
    options: dict[str, Any]
    name: str
    honest: HonestScores


@dataclass(frozen=True)
class Judgement:
    """How well scores separate synthetic faults from normal windows (see the module)."""

    auc: dict[str, float]  # per fault kind
    pauc: dict[str, float]
    objective: float
    fault_auc: float  # every fault against every normal window
    strong_fault_auc: float  # the best fault kind's AUC at the strongest level
    strong_fault_z: float  # how many null standard errors that AUC lies above 0.5
    strong_pooled_auc: float  # every kind's faults at the strongest level together

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": round(self.objective, 4),
            "fault_auc": round(self.fault_auc, 4),
            "strong_fault_auc": round(self.strong_fault_auc, 4),
            "strong_fault_z": round(self.strong_fault_z, 2),
            "strong_pooled_auc": round(self.strong_pooled_auc, 4),
            "auc": {k: round(v, 4) for k, v in self.auc.items()},
            "pauc": {k: round(v, 4) for k, v in self.pauc.items()},
        }


@dataclass(frozen=True)
class Choice:
    """The chosen components, their combiner, the combined honest scores and judgement,
    and every single candidate's judgement (for the report)."""

    components: tuple[Candidate, ...]
    standardisers: tuple[Standardiser, ...]
    combiner: str
    honest: HonestScores
    judgement: Judgement
    singles: dict[str, Judgement] = field(default_factory=dict)
    steps: tuple[str, ...] = ()


def judge(honest: HonestScores, cases: Cases) -> Judgement:
    """Per-kind AUC and pAUC of faults against normal and gain-changed windows."""
    negatives = np.r_[honest.normal, honest.probes[cases.kind == GAIN_KIND]]
    aucs, paucs = {}, {}
    for kind in cases.fault_kinds():
        positives = honest.probes[cases.kind == kind]
        aucs[kind] = auc(negatives, positives)
        paucs[kind] = pauc(negatives, positives)
    is_fault = cases.kind != GAIN_KIND
    strongest = is_fault & (cases.level_db == cases.level_db[is_fault].max())
    strong = [
        (auc(negatives, positives) or 0.5, null_auc_std(len(negatives), len(positives)))
        for kind in cases.fault_kinds()
        if len(positives := honest.probes[strongest & (cases.kind == kind)])
    ]
    best_auc, best_std = max(strong, default=(0.5, 1.0))
    objective = harmonic_mean([*aucs.values(), *paucs.values()]) or 0.0
    return Judgement(
        aucs,
        paucs,
        objective,
        auc(negatives, honest.probes[is_fault]) or 0.5,
        best_auc,
        (best_auc - 0.5) / best_std,
        auc(negatives, honest.probes[strongest]) or 0.5,
    )


def null_auc_std(n_negatives: int, n_positives: int) -> float:
    """Standard deviation of the AUC of scores that tell nothing apart (Mann-Whitney under
    the null hypothesis, no ties): sqrt((n0 + n1 + 1) / (12 n0 n1))."""
    n0, n1 = max(n_negatives, 1), max(n_positives, 1)
    return float(np.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1)))


def evaluate_candidates(
    data: FitData,
    folds: Sequence[Fold],
    context: FitContext,
    probes: Probes,
    kinds: Sequence[str],
) -> tuple[list[Candidate], dict[str, str]]:
    """Every candidate of the given kinds, scored honestly; and why others were left out."""
    candidates, left_out = [], {}
    for kind_name in kinds:
        kind = scorer_kind(kind_name)
        for options in kind.candidates(context):
            name = kind.describe(options)
            try:
                honest = honest_scores(kind, options, data, folds, context, probes)
                Standardiser.fit(honest.normal)  # constant scores cannot be standardised
            except ValueError as exc:
                left_out[name] = str(exc)
                continue
            candidates.append(Candidate(kind_name, dict(options), name, honest))
    return candidates, left_out


def _standardised(candidate: Candidate) -> tuple[Standardiser, np.ndarray, np.ndarray]:
    s = Standardiser.fit(candidate.honest.normal)
    return s, s(candidate.honest.normal), s(candidate.honest.probes)


def fuse(
    members: Sequence[Candidate], combiner: str
) -> tuple[tuple[Standardiser, ...], HonestScores]:
    """The combined honest scores of candidates standardised on their normal scores."""
    parts = [_standardised(c) for c in members]
    normal = combine(np.stack([p[1] for p in parts]), combiner)
    probes = combine(np.stack([p[2] for p in parts]), combiner)
    return tuple(p[0] for p in parts), HonestScores(normal, probes)


def choose(
    candidates: Sequence[Candidate],
    cases: Cases,
    *,
    required_kinds: Sequence[str] = (),
    combiner: str | None = None,
    grow: bool = True,
) -> Choice:
    """The detector chosen among `candidates` (see the module).

    `required_kinds`: exactly these kinds, one candidate each (the best of each), combined
    by `combiner` (or the better of mean and max when None); otherwise the best single
    candidate, grown greedily when `grow`. Raises ValueError when there is no candidate.
    """
    if not candidates:
        raise ValueError("no candidate scorer could be fitted")
    singles = {c.name: judge(c.honest, cases) for c in candidates}
    ranked = rank(candidates, singles)
    if required_kinds:
        members = [next(c for c in ranked if c.kind == k) for k in required_kinds]
        return _best_combination(members, combiner, cases, singles)
    chosen = _best_combination([ranked[0]], combiner, cases, singles)
    steps = [f"{ranked[0].name}: objective {chosen.judgement.objective:.3f}"]
    grow = grow and _n_probes(cases) >= MIN_PROBES_TO_GROW
    while grow and len(chosen.components) < MAX_COMPONENTS:
        taken = {c.name for c in chosen.components}
        pool = [c for c in _shortlist(ranked, singles, cases) if c.name not in taken]
        trials = [
            _best_combination([*chosen.components, c], combiner, cases, singles) for c in pool
        ]
        best = max(trials, key=lambda t: t.judgement.objective, default=None)
        if best is None or best.judgement.objective < chosen.judgement.objective + MIN_GAIN:
            break
        added = best.components[-1].name
        steps.append(f"+ {added} ({best.combiner}): objective {best.judgement.objective:.3f}")
        chosen = best
    return replace(chosen, steps=tuple(steps))


def rank(candidates: Sequence[Candidate], singles: Mapping[str, Judgement]) -> list[Candidate]:
    """Best objective first, the simplest first among those within TIE of the best."""
    best = max(singles[c.name].objective for c in candidates)
    tied = [c for c in candidates if singles[c.name].objective >= best - TIE]
    rest = [c for c in candidates if singles[c.name].objective < best - TIE]
    tied.sort(key=lambda c: (complexity(c), -singles[c.name].objective))
    rest.sort(key=lambda c: -singles[c.name].objective)
    return tied + rest


def complexity(candidate: Candidate) -> tuple[float, ...]:
    """How much a candidate fits to its data: weaker regularisation, more mixture
    components or bank centres fit the calibration's own sound more closely."""
    options = candidate.options
    return (
        -float(options.get("reg_covar", 0.0)),
        float(options.get("n_components", 0)),
        float(options.get("n_centres", 0)),
    )


def _n_probes(cases: Cases) -> int:
    """Probe windows behind the cases (each makes one case per kind and level)."""
    first = (cases.kind == cases.kind[0]) & (cases.level_db == cases.level_db[0])
    return int(first.sum())


def _shortlist(
    ranked: Sequence[Candidate], singles: Mapping[str, Judgement], cases: Cases
) -> list[Candidate]:
    """The SHORTLIST best candidates, then each fault kind's specialist, once each."""
    chosen = list(ranked[:SHORTLIST])
    for kind in cases.fault_kinds():
        best = max(ranked, key=lambda c: singles[c.name].auc[kind] + singles[c.name].pauc[kind])
        if all(best.name != c.name for c in chosen):
            chosen.append(best)
    return chosen


def _best_combination(
    members: Sequence[Candidate],
    combiner: str | None,
    cases: Cases,
    singles: Mapping[str, Judgement],
) -> Choice:
    options = [combiner] if combiner else list(COMBINERS)
    if len(members) == 1:
        options = [combiner or "mean"]
    best = None
    for how in options:
        standardisers, honest = fuse(members, how)
        choice = Choice(tuple(members), standardisers, how, honest, judge(honest, cases))
        if best is None or choice.judgement.objective > best.judgement.objective:
            best = choice
    return replace(best, singles=dict(singles))
