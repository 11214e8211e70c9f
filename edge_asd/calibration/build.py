"""From the engine outputs of normal recordings to a `Calibration`: honest scores, threshold.

No audio, no engine, no files here: the command (`edge_asd.commands.calibrate`) reads the
recordings and runs the engine; this module turns per-recording outputs into scores (leave
out for knn, see `honest`), chooses the threshold (`threshold`) and fills the calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_asd.calibration.file import Calibration
from edge_asd.calibration.honest import MAX_FOLDS, honest_knn_scores
from edge_asd.calibration.threshold import ThresholdChoice, choose_threshold
from edge_asd.errors import UserError
from edge_asd.labels import matching_indices
from edge_asd.model_file import ModelInfo

SCORERS = ("knn", "section")
DEFAULT_CENTRES = 16
DEFAULT_FALSE_ALARMS_PER_DAY = 1.0  # the daemon's default: DCASE's 0.9 alarms all day


@dataclass(frozen=True)
class Embedded:
    """Engine outputs of one recording's windows, in order: embedding [W, D], logits [W, L]."""

    name: str
    embedding: np.ndarray
    logits: np.ndarray
    seconds: float


@dataclass(frozen=True)
class Settings:
    """What the user asked for: `quantile` or `false_alarms_per_day` (neither: the default
    rate, DEFAULT_FALSE_ALARMS_PER_DAY)."""

    machine: str
    scorer: str = "knn"
    label: str | None = None
    hop_seconds: float = 1.0
    k: int = 3
    n: int = 5
    m_close: int = 5
    quantile: float | None = None
    false_alarms_per_day: float | None = None
    n_centres: int = DEFAULT_CENTRES
    seed: int = 0
    source: str = ""


@dataclass(frozen=True)
class Result:
    """The calibration, how its threshold was chosen, and the honest scores per recording."""

    calibration: Calibration
    choice: ThresholdChoice
    runs: list[np.ndarray]


def calibrate(
    main: list[Embedded], new_condition: list[Embedded], settings: Settings, info: ModelInfo
) -> Result:
    """Score the recordings honestly, choose the threshold, and fill in the calibration.

    Raises UserError for an unknown scorer, a section scorer without a label, a label the
    model lacks, no windows at all, or too little audio for the asked target.
    """
    if settings.scorer not in SCORERS:
        raise UserError(f"unknown scorer {settings.scorer!r} (choose {', '.join(SCORERS)})", 2)
    if not main or sum(len(r.embedding) for r in main) == 0:
        raise UserError("no window of normal sound to calibrate on")
    if settings.label:
        matching_indices(info.labels, settings.label)  # a label the model lacks fails here
    window_seconds = info.window_samples / info.sample_rate
    if settings.scorer == "knn":
        runs, bank, params = _knn(main, new_condition, settings, window_seconds)
    else:
        runs, params = _section(main + new_condition, settings, info)
        bank = None
    choice = choose_threshold(
        runs,
        hop_seconds=settings.hop_seconds,
        window_seconds=window_seconds,
        k=settings.k,
        n=settings.n,
        quantile=settings.quantile,
        false_alarms_per_day=_rate(settings),
    )
    scores = np.concatenate(runs)
    recordings = main + new_condition
    calibration = Calibration(
        machine=settings.machine,
        label=settings.label,
        scorer=settings.scorer,
        threshold=choice.threshold,
        k=settings.k,
        n=settings.n,
        m_close=settings.m_close,
        hop_seconds=settings.hop_seconds,
        model_sha256=info.onnx_sha256,
        method=choice.method,
        method_params={**choice.params, "window_exceedance": choice.window_exceedance},
        n_windows=len(scores),
        n_recordings=len(recordings),
        audio_seconds=round(sum(r.seconds for r in recordings), 3),
        expected_false_alarms_per_day=choice.expected_false_alarms_per_day,
        scorer_params=params,
        score_stats=score_stats(scores),
        source=settings.source,
        bank=bank,
    )
    return Result(calibration, choice, runs)


def _rate(settings: Settings) -> float | None:
    if settings.quantile is not None:
        return settings.false_alarms_per_day  # both given: choose_threshold refuses
    if settings.false_alarms_per_day is None:
        return DEFAULT_FALSE_ALARMS_PER_DAY
    return settings.false_alarms_per_day


def score_stats(scores: np.ndarray) -> dict[str, float]:
    """Summary of the honest normal scores (fusion standardises on mean and std)."""
    return {
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "median": float(np.median(scores)),
        "p99": float(np.quantile(scores, 0.99)),
        "max": float(np.max(scores)),
    }


def _knn(
    main: list[Embedded], new: list[Embedded], settings: Settings, window_seconds: float
) -> tuple[list[np.ndarray], np.ndarray, dict]:
    from edge_asd.scoring.knn import build_bank

    if settings.n_centres < 1:
        raise UserError(f"--centres must be at least 1, not {settings.n_centres}", 2)
    gap_windows = max(0, math.ceil(window_seconds / settings.hop_seconds - 1e-9) - 1)
    main_runs, new_runs = honest_knn_scores(
        [r.embedding for r in main],
        [r.embedding for r in new],
        settings.n_centres,
        gap_windows,
        seed=settings.seed,
    )
    main_all = np.concatenate([r.embedding for r in main])
    new_all = np.concatenate([r.embedding for r in new]) if new else None
    bank = build_bank(main_all, settings.n_centres, new_condition=new_all, seed=settings.seed)
    held_out = "leave-one-recording-out" if len(main) <= MAX_FOLDS else f"{MAX_FOLDS}-fold"
    if len(main) == 1:
        held_out = f"contiguous stretches with {gap_windows} windows left out between"
    params = {
        "n_centres": min(settings.n_centres, len(main_all)),
        "new_condition_windows": 0 if new_all is None else len(new_all),
        "new_condition_recordings": len(new),
        "bank_entries": len(bank),
        "seed": settings.seed,
        "honest_scores": held_out,
    }
    return main_runs + new_runs, bank, params


def _section(
    recordings: list[Embedded], settings: Settings, info: ModelInfo
) -> tuple[list[np.ndarray], dict]:
    from edge_asd.scoring.section import section_scores

    if not settings.label:
        raise UserError("the section scorer needs --label (a model label or a prefix)", 2)
    indices = matching_indices(info.labels, settings.label)
    runs = [section_scores(r.logits, indices) for r in recordings]
    return runs, {"label_indices": indices, "labels": [info.labels[i] for i in indices]}
