"""From the engine outputs of normal recordings to a `Calibration`: honest scores, threshold.

No audio, no engine, no files here: the command (`edge_asd.commands.calibrate`) reads the
recordings and runs the engine; this module fits each asked scorer on the per-recording
outputs (`scorers`: honest leave-out scores for knn and twfr), fuses them when several are
asked (each standardised on its honest scores, see edge_asd.scoring.fusion), chooses the
threshold on the calibrated score (`threshold`) and fills the calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_asd.calibration.file import Calibration
from edge_asd.calibration.scorers import Embedded, Fitted, fit_scorer
from edge_asd.calibration.threshold import ThresholdChoice, choose_threshold
from edge_asd.errors import UserError
from edge_asd.labels import matching_indices
from edge_asd.model_file import ModelInfo
from edge_asd.scoring.fusion import COMBINERS, Standardiser, fit_standardisers, fuse_runs
from edge_asd.scoring.scorer import scorer_names

__all__ = ["Embedded", "Result", "Settings", "calibrate", "fuse_fitted", "score_stats"]

DEFAULT_CENTRES = 16
DEFAULT_FALSE_ALARMS_PER_DAY = 1.0  # the daemon's default: DCASE's 0.9 alarms all day


@dataclass(frozen=True)
class Settings:
    """What the user asked for: `quantile` or `false_alarms_per_day` (neither: the default
    rate, DEFAULT_FALSE_ALARMS_PER_DAY). `scorer` is one name or several joined by '+',
    fused by `combiner` (see edge_asd.scoring.fusion)."""

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
    combiner: str = "mean"


@dataclass(frozen=True)
class Result:
    """The calibration, how its threshold was chosen, and the honest scores per recording
    (of the calibrated score, fused or not). For a fusion, `components` holds each
    scorer's own honest scores per recording and `standardisers` how they were scaled."""

    calibration: Calibration
    choice: ThresholdChoice
    runs: list[np.ndarray]
    components: dict[str, list[np.ndarray]] = field(default_factory=dict)
    standardisers: dict[str, Standardiser] = field(default_factory=dict)


def calibrate(
    main: list[Embedded], new_condition: list[Embedded], settings: Settings, info: ModelInfo
) -> Result:
    """Score the recordings honestly, choose the threshold, and fill in the calibration.

    Raises UserError for an unknown scorer or combiner, a section scorer without a label,
    a label the model lacks, no windows at all, or too little audio for the asked target.
    """
    names = scorer_names(settings.scorer)
    if settings.combiner not in COMBINERS:
        raise UserError(f"unknown fusion {settings.combiner!r} (choose {', '.join(COMBINERS)})", 2)
    if not main or sum(len(r.embedding) for r in main) == 0:
        raise UserError("no window of normal sound to calibrate on")
    if settings.label:
        matching_indices(info.labels, settings.label)  # a label the model lacks fails here
    fitted = {name: fit_scorer(name, main, new_condition, settings, info) for name in names}
    runs, params, standardisers = fuse_fitted(fitted, settings.combiner)
    window_seconds = info.window_samples / info.sample_rate
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
    arrays = {key: a for f in fitted.values() for key, a in f.arrays.items()}
    calibration = Calibration(
        machine=settings.machine,
        label=settings.label,
        scorer="+".join(names),
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
        bank=fitted["knn"].bank if "knn" in fitted else None,
        arrays=arrays,
    )
    components = {name: f.runs for name, f in fitted.items()} if len(fitted) > 1 else {}
    return Result(calibration, choice, runs, components, standardisers)


def fuse_fitted(
    fitted: dict[str, Fitted], combiner: str
) -> tuple[list[np.ndarray], dict, dict[str, Standardiser]]:
    """(runs, scorer_params, standardisers): one scorer's own, or the fusion of several.

    A fusion's parameters hold each scorer's own under its name, with the standardiser
    (mean, std of its honest normal scores) and the spread of those scores.
    """
    if len(fitted) == 1:
        only = next(iter(fitted.values()))
        return only.runs, only.params, {}
    standardisers = fit_standardisers({name: f.runs for name, f in fitted.items()})
    runs = fuse_runs({name: f.runs for name, f in fitted.items()}, standardisers, combiner)
    params: dict = {"combiner": combiner}
    for name, f in fitted.items():
        s = standardisers[name]
        params[name] = {
            **f.params,
            "standardiser": {"mean": s.mean, "std": s.std},
            "score_stats": score_stats(np.concatenate(f.runs)),
        }
    return runs, params, standardisers


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
