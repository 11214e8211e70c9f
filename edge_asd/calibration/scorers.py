"""Each scorer a calibration asks for, fitted on the normal recordings: honest scores and state.

- `section`: nothing to fit; the scores are honest as they are.
- `knn`: the memory bank (k-means centres of the main set, the new condition kept raw),
  scored leave-out (`honest`).
- `twfr`: r, components and regularisation chosen by held-out likelihood over the
  recordings (`edge_asd.scoring.twfr.select_pooled`), a mixture fitted on every normal
  window (main and new condition alike), scored leave-out.

`fit_scorer` returns the honest scores per recording (main set first, then the new
condition, each in window order) with what the calibration file keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_asd.calibration.honest import MAX_FOLDS, honest_knn_scores, honest_twfr_scores
from edge_asd.errors import UserError
from edge_asd.labels import matching_indices
from edge_asd.model_file import ModelInfo

TWFR_PREFIX = "twfr_"  # the same prefix edge_asd.scoring.scorer reads


@dataclass(frozen=True)
class Embedded:
    """Engine outputs of one recording's windows, in order: embedding [W, D], logits [W, L],
    and (for twfr) the log-mel pooled at every candidate r, [W, n_r, n_mels] in the order
    of edge_asd.scoring.twfr.R_CANDIDATES."""

    name: str
    embedding: np.ndarray
    logits: np.ndarray
    seconds: float
    pooled: np.ndarray | None = None


@dataclass(frozen=True)
class Fitted:
    """One scorer fitted on the normal recordings: honest scores per recording, the
    parameters for calibration.yaml, and its arrays (the knn bank, twfr's mixture)."""

    name: str
    runs: list[np.ndarray]
    params: dict[str, Any]
    bank: np.ndarray | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def fit_scorer(
    name: str,
    main: list[Embedded],
    new: list[Embedded],
    settings: Any,
    info: ModelInfo,
) -> Fitted:
    """Fit scorer `name` ("section", "knn" or "twfr") on the recordings.

    `settings` is a calibration Settings (label, n_centres, seed, hop_seconds). Raises
    UserError when what the scorer needs is missing or too little.
    """
    window_seconds = info.window_samples / info.sample_rate
    gap = gap_windows(window_seconds, settings.hop_seconds)
    if name == "knn":
        return _knn(main, new, settings, gap)
    if name == "twfr":
        return _twfr(main, new, settings, gap)
    if name == "section":
        return _section(main + new, settings, info)
    raise ValueError(f"no scorer {name!r}")


def gap_windows(window_seconds: float, hop_seconds: float) -> int:
    """Windows after a window that share audio with it."""
    return max(0, math.ceil(window_seconds / hop_seconds - 1e-9) - 1)


def held_out_description(n_main: int, gap: int) -> str:
    """How the honest scores were held out, for calibration.yaml."""
    if n_main == 1:
        return f"contiguous stretches with {gap} windows left out between"
    return "leave-one-recording-out" if n_main <= MAX_FOLDS else f"{MAX_FOLDS}-fold"


def _knn(main: list[Embedded], new: list[Embedded], settings: Any, gap: int) -> Fitted:
    from edge_asd.scoring.knn import build_bank

    if settings.n_centres < 1:
        raise UserError(f"--centres must be at least 1, not {settings.n_centres}", 2)
    main_runs, new_runs = honest_knn_scores(
        [r.embedding for r in main],
        [r.embedding for r in new],
        settings.n_centres,
        gap,
        seed=settings.seed,
    )
    main_all = np.concatenate([r.embedding for r in main])
    new_all = np.concatenate([r.embedding for r in new]) if new else None
    bank = build_bank(main_all, settings.n_centres, new_condition=new_all, seed=settings.seed)
    params = {
        "n_centres": min(settings.n_centres, len(main_all)),
        "new_condition_windows": 0 if new_all is None else len(new_all),
        "new_condition_recordings": len(new),
        "bank_entries": len(bank),
        "seed": settings.seed,
        "honest_scores": held_out_description(len(main), gap),
    }
    return Fitted("knn", main_runs + new_runs, params, bank=bank)


def _twfr(main: list[Embedded], new: list[Embedded], settings: Any, gap: int) -> Fitted:
    from edge_asd.scoring.twfr import R_CANDIDATES, select_pooled

    recordings = main + new
    if any(r.pooled is None for r in recordings):
        raise ValueError("the twfr scorer needs each recording's pooled log-mel")
    counts = [len(r.pooled) for r in recordings]
    if sum(counts) < 2:
        raise UserError("the twfr scorer needs at least two windows of normal sound", 2)
    pooled = np.concatenate([r.pooled for r in recordings])
    groups = np.repeat(np.arange(len(recordings)), counts)
    model, choice = select_pooled(pooled, groups, seed=settings.seed)
    index = [f"{r:g}" for r in R_CANDIDATES].index(f"{choice.r:g}")
    main_runs, new_runs = honest_twfr_scores(
        [r.pooled[:, index] for r in main],
        [r.pooled[:, index] for r in new],
        choice.r,
        choice.n_components,
        choice.reg_covar,
        gap,
        seed=settings.seed,
    )
    ranked = sorted(choice.held_out.items(), key=lambda item: -item[1])
    params = {
        "r": choice.r,
        "n_components": model.n_components,
        "reg_covar": choice.reg_covar,
        "chosen_by": "held-out mean log-likelihood of normal windows, recordings in two "
        "folds (one recording: its two halves)"
        if np.isfinite(max(choice.held_out.values()))
        else "too few windows to judge on held-out ones: the most regularised candidate",
        "held_out_log_likelihood": {key: float(f"{value:.6g}") for key, value in ranked},
        "windows": len(pooled),
        "new_condition_recordings": len(new),
        "seed": settings.seed,
        "honest_scores": held_out_description(len(main), gap),
    }
    return Fitted("twfr", main_runs + new_runs, params, arrays=model.to_arrays(TWFR_PREFIX))


def _section(recordings: list[Embedded], settings: Any, info: ModelInfo) -> Fitted:
    from edge_asd.scoring.section import section_scores

    if not settings.label:
        raise UserError("the section scorer needs --label (a model label or a prefix)", 2)
    indices = matching_indices(info.labels, settings.label)
    runs = [section_scores(r.logits, indices) for r in recordings]
    params = {"label_indices": indices, "labels": [info.labels[i] for i in indices]}
    return Fitted("section", runs, params)
