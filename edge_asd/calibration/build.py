"""From a machine's collected normal windows to a `Calibration`: choose, threshold, measure.

No audio, no engine, no files here: `edge_asd.calibration.collect` streams the recordings
through the engine and makes the synthetic faults; this module

1. scores every candidate scorer honestly on the normal windows and the faults
   (`honest`, `select.evaluate_candidates`) and chooses the detector by what it detects
   (`select.choose`): by default among every kind and option set, growing a fusion while
   it helps; with `--scorer knn+twfr` exactly those kinds, each with its best options;
2. refuses a detector that cannot detect (synthetic-fault AUC near 0.5), and a scorer
   that cannot serve the machine (constant scores; a label binding covering every label);
3. chooses the threshold on the detector's honest normal scores (`threshold`), builds the
   detectability table at that threshold and k-of-n (`detectability`), records the
   calibration's input level, and fits the chosen scorers on every window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_asd.calibration.collect import CalibrationData
from edge_asd.calibration.detectability import Row, table
from edge_asd.calibration.file import Calibration
from edge_asd.calibration.honest import gap_windows, make_folds, split_runs
from edge_asd.calibration.select import (
    Candidate,
    Choice,
    Judgement,
    choose,
    evaluate_candidates,
)
from edge_asd.calibration.threshold import ThresholdChoice, choose_threshold
from edge_asd.errors import UserError
from edge_asd.faults import DEFAULT_LEVELS_DB
from edge_asd.model_file import ModelInfo
from edge_asd.scoring.detector import COMBINERS, Component, Detector
from edge_asd.scoring.features import WindowFeatures
from edge_asd.scoring.registry import FitContext, FitData, kinds, parse_kinds, scorer_kind
from edge_asd.scoring.section import usable_binding

__all__ = ["AUTO", "Result", "Settings", "calibrate", "score_stats"]

AUTO = "auto"
DEFAULT_FALSE_ALARMS_PER_DAY = 1.0  # the daemon's default: DCASE's 0.9 alarms all day
# A detector is blind when, at the strongest synthetic fault level (a change with a third
# of the machine's own energy), even the fault kind it sees best has an AUC below
# MIN_FAULT_AUC; or when all kinds together are below it and the best kind's AUC is not
# MIN_FAULT_Z null standard errors above 0.5 (the best of five kinds from a few probes
# each is far from 0.5 by chance alone: a one-sided 1 % test, Bonferroni-corrected).
MIN_FAULT_AUC = 0.6
MIN_FAULT_Z = 2.88
STRONGEST_DB = max(DEFAULT_LEVELS_DB)
MIN_WINDOWS = 5  # fewer normal windows cannot be held out, fitted and judged


@dataclass(frozen=True)
class Settings:
    """What the user asked for. `scorer`: AUTO (chosen by synthetic faults) or kinds
    joined by '+'; `combiner`: mean, max, or None (chosen). Neither `quantile` nor
    `false_alarms_per_day`: the default rate, DEFAULT_FALSE_ALARMS_PER_DAY."""

    machine: str
    scorer: str = AUTO
    combiner: str | None = None
    label: str | None = None
    hop_seconds: float = 1.0
    k: int = 3
    n: int = 5
    m_close: int = 5
    quantile: float | None = None
    false_alarms_per_day: float | None = None
    seed: int = 0
    source: str = ""
    heard: dict | None = None  # edge_asd.calibration.heard.HeardAs.to_dict of the inputs
    refuse_blind: bool = True  # False: calibrate a blind detector anyway (evaluations)


@dataclass(frozen=True)
class Result:
    """The calibration, its threshold choice, the detector's honest normal scores per
    recording, the selection, the detectability rows, the candidates left out and every
    candidate that was judged."""

    calibration: Calibration
    choice: ThresholdChoice
    runs: list[np.ndarray]
    selection: Choice
    rows: list[Row]
    left_out: dict[str, str]
    candidates: tuple[Candidate, ...] = ()


def calibrate(data: CalibrationData, settings: Settings, info: ModelInfo) -> Result:
    """Choose the detector, its threshold and the table (see the module).

    Raises UserError for an unknown scorer or combiner, a scorer that cannot serve the
    machine, a detector that cannot detect, or too little audio for the asked target.
    """
    context = FitContext.of_model(info, settings.label, settings.seed)
    asked = _asked_kinds(settings, context)
    if len(data.features) < MIN_WINDOWS:
        seconds = (MIN_WINDOWS - 1) * settings.hop_seconds + info.window_samples / info.sample_rate
        raise UserError(
            f"only {len(data.features)} window(s) of normal sound: calibration needs at least "
            f"{MIN_WINDOWS} to score windows honestly and judge what they detect (two or more "
            f"recordings of about {seconds:.0f} s in all; one recording alone needs more, "
            "since its overlapping windows are held out in stretches); record longer",
            2,
        )
    gap = gap_windows(info.window_samples / info.sample_rate, settings.hop_seconds)
    folds = make_folds(data.counts, data.new_condition, gap)
    fit_data = FitData(data.features, data.window_new_condition)
    pool = asked or tuple(kinds())
    candidates, left_out = evaluate_candidates(fit_data, folds, context, data.probes, pool)
    missing = [k for k in asked if not any(c.kind == k for c in candidates)]
    if missing or not candidates:
        raise UserError(_nothing_fits(missing or list(pool), left_out), 2)
    selection = choose(
        candidates, data.cases, required_kinds=asked, combiner=settings.combiner, grow=not asked
    )
    if settings.refuse_blind:
        _refuse_blind(selection)
    runs = split_runs(selection.honest.normal, data.counts)
    choice = choose_threshold(
        runs,
        hop_seconds=settings.hop_seconds,
        window_seconds=info.window_samples / info.sample_rate,
        k=settings.k,
        n=settings.n,
        quantile=settings.quantile,
        false_alarms_per_day=_rate(settings),
    )
    rows = table(selection.honest.probes, data.cases, choice.threshold, settings.k, settings.n)
    detector = _fit_detector(selection, fit_data, context)
    calibration = _calibration(data, settings, info, detector, choice, selection, rows, left_out)
    return Result(calibration, choice, runs, selection, rows, left_out, tuple(candidates))


def _asked_kinds(settings: Settings, context: FitContext) -> tuple[str, ...]:
    """The kinds the user named (empty for AUTO); UserError when one cannot serve."""
    if settings.combiner is not None and settings.combiner not in COMBINERS:
        raise UserError(f"unknown fusion {settings.combiner!r} (choose {', '.join(COMBINERS)})", 2)
    if settings.scorer == AUTO:
        return ()
    asked = parse_kinds(settings.scorer)
    if "section" in asked:
        _, why_not = usable_binding(context.labels, context.binding)
        if why_not:
            raise UserError(f"--scorer section: {why_not}", 2)
    return asked


def _nothing_fits(kinds_asked: list[str], left_out: dict[str, str]) -> str:
    by_reason: dict[str, list[str]] = {}
    for name, why in left_out.items():
        by_reason.setdefault(why, []).append(name)
    reasons = "; ".join(
        f"{names[0] if len(names) == 1 else f'{len(names)} candidates'}: {why}"
        for why, names in by_reason.items()
    )
    return (
        f"no scorer of {', '.join(kinds_asked)} can be calibrated on these recordings "
        f"({reasons}). A scorer whose scores do not vary tells nothing apart: check the "
        "recordings (is the machine running? is the microphone connected?) and the label"
    )


def _refuse_blind(selection: Choice) -> None:
    judged = selection.judgement
    if not is_blind(judged):
        return
    names = " + ".join(c.name for c in selection.components)
    raise UserError(
        f"the calibrated detector ({names}) cannot tell strong synthetic faults from this "
        f"machine's normal sound: at {STRONGEST_DB:g} dB, all kinds together AUC "
        f"{judged.strong_pooled_auc:.2f}, the best-seen kind {judged.strong_fault_auc:.2f} "
        f"({judged.strong_fault_z:.1f} standard errors above chance; it needs an AUC of "
        f"{MIN_FAULT_AUC} and, unless all kinds together reach {MIN_FAULT_AUC}, "
        f"{MIN_FAULT_Z} standard errors): it would not detect a real one either. Check that "
        "the recordings hold the machine's sound (level, microphone placement), record "
        "longer or in more of the machine's modes, or use a model trained on this kind of "
        "machine. Nothing written."
    )


def is_blind(judged: Judgement) -> bool:
    """Whether a detector cannot tell strong synthetic faults from normal sound (see
    MIN_FAULT_AUC)."""
    if judged.strong_fault_auc < MIN_FAULT_AUC:
        return True
    return judged.strong_pooled_auc < MIN_FAULT_AUC and judged.strong_fault_z < MIN_FAULT_Z


def _fit_detector(selection: Choice, data: FitData, context: FitContext) -> Detector:
    """The chosen scorers fitted on every window, with their honest standardisers."""
    components = tuple(
        Component(scorer_kind(c.kind).fit(data, c.options, context), s)
        for c, s in zip(selection.components, selection.standardisers, strict=True)
    )
    return Detector(components, selection.combiner)


def _calibration(
    data: CalibrationData,
    settings: Settings,
    info: ModelInfo,
    detector: Detector,
    choice: ThresholdChoice,
    selection: Choice,
    rows: list[Row],
    left_out: dict[str, str],
) -> Calibration:
    scores = selection.honest.normal
    return Calibration(
        machine=settings.machine,
        label=settings.label,
        model_sha256=info.onnx_sha256,
        detector=detector,
        threshold=choice.threshold,
        k=settings.k,
        n=settings.n,
        m_close=settings.m_close,
        hop_seconds=settings.hop_seconds,
        method=choice.method,
        method_params={**choice.params, "window_exceedance": choice.window_exceedance},
        expected_false_alarms_per_day=choice.expected_false_alarms_per_day,
        n_windows=len(scores),
        n_recordings=len(data.counts),
        audio_seconds=round(sum(data.seconds), 3),
        score_stats=score_stats(scores),
        level=level_record(data.features),
        input=settings.heard,
        selection=selection_record(settings, selection, left_out),
        detectability={row.kind: row.to_dict() for row in rows},
        source=settings.source,
    )


def level_record(features: WindowFeatures) -> dict:
    """The median input level of the windows, overall and per band (dB; see features)."""
    return {
        "level_db": round(float(np.median(features.level_db)), 3),
        "band_levels_db": [round(float(v), 3) for v in np.median(features.band_levels_db, 0)],
    }


def selection_record(settings: Settings, selection: Choice, left_out: dict[str, str]) -> dict:
    """How the detector was chosen, for calibration.yaml: every candidate's judgement."""
    ranked = sorted(selection.singles.items(), key=lambda item: -item[1].objective)
    return {
        "asked": settings.scorer,
        "chosen": [c.name for c in selection.components],
        "combiner": selection.combiner,
        **selection.judgement.to_dict(),
        "steps": list(selection.steps),
        "candidates": {name: judgement.to_dict() for name, judgement in ranked},
        "left_out": dict(left_out),
    }


def _rate(settings: Settings) -> float | None:
    if settings.quantile is not None:
        return settings.false_alarms_per_day  # both given: choose_threshold refuses
    if settings.false_alarms_per_day is None:
        return DEFAULT_FALSE_ALARMS_PER_DAY
    return settings.false_alarms_per_day


def score_stats(scores: np.ndarray) -> dict[str, float]:
    """Summary of the honest normal scores."""
    return {
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "median": float(np.median(scores)),
        "p99": float(np.quantile(scores, 0.99)),
        "max": float(np.max(scores)),
    }
