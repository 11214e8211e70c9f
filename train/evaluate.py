"""`evaluate`: score a DCASE tree's test clips with an exported model, as the runtime does.

The model runs through edge_asd's engine (onnxruntime by default, the exported ONNX), and
clips are scored by the runtime's scorers: `section` (edge_asd.scoring.section) or `knn`
(edge_asd.scoring.knn, a bank per section from the normal train clips: k-means centres
of the source clips plus every target clip). A clip's score is the mean over its windows
(one window for a 10 s clip). The decision threshold per section is the DCASE baseline's:
a gamma fitted to the scores of the normal train clips, at its 0.9 quantile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_asd.audio import SAMPLE_RATE, read_audio
from edge_asd.dcase import Clip, list_clips, machine_types
from edge_asd.engines import Engine, open_engine
from edge_asd.errors import AudioFileError, UserError
from edge_asd.labels import make_label, matching_indices
from edge_asd.model_file import load_model_info
from edge_asd.scoring.knn import build_bank, knn_scores
from edge_asd.scoring.section import section_scores
from train.checkpoint import MODEL_DIR
from train.clip_audio import clip_windows
from train.metrics import SectionResult, section_result

log = logging.getLogger(__name__)

SCORERS = ("section", "knn")
DECISION_QUANTILE = 0.9
KNN_CENTRES = 16
BATCH_WINDOWS = 16


@dataclass(frozen=True)
class ClipOutputs:
    """A clip's per-window embeddings [W, D] and logits [W, L]."""

    clip: Clip
    embedding: np.ndarray
    logits: np.ndarray


@dataclass
class SectionScores:
    """Scores of one section's test clips, the decision threshold, and the metrics."""

    machine_type: str
    section: str
    clips: list[Clip]
    scores: np.ndarray
    threshold: float
    result: SectionResult
    train_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))


def model_dirs(run: str | Path) -> list[Path]:
    """The model directories of a run: RUN/model, or RUN/<type>/model for each type."""
    run = Path(run)
    if (run / MODEL_DIR / "model.yaml").is_file():
        return [run / MODEL_DIR]
    if (run / "model.yaml").is_file():
        return [run]
    found = sorted(p.parent for p in run.glob(f"*/{MODEL_DIR}/model.yaml"))
    if not found:
        raise UserError(f"{run}: no model/ (model.onnx + model.yaml) here or in its sub-folders")
    return found


def clip_outputs(
    engine: Engine, clips: Sequence[Clip], window_samples: int, policy: str
) -> list[ClipOutputs]:
    """Run every window of every clip through the engine, BATCH_WINDOWS at a time."""
    windows, owners = [], []
    for i, clip in enumerate(clips):
        try:
            samples = read_audio(clip.path).mono()
        except AudioFileError as exc:
            log.warning("skipped: %s", exc)
            continue
        w = clip_windows(samples, window_samples, policy, hop_samples=SAMPLE_RATE)
        windows.append(w)
        owners += [i] * len(w)
    if not windows:
        return []
    stacked = np.concatenate(windows).astype(np.float32)
    embeddings, logits = [], []
    for first in range(0, len(stacked), BATCH_WINDOWS):
        out = engine.infer(stacked[first : first + BATCH_WINDOWS])
        embeddings.append(out.embedding)
        logits.append(out.logits)
    embedding, logit = np.concatenate(embeddings), np.concatenate(logits)
    owners_array = np.asarray(owners)
    return [
        ClipOutputs(clips[i], embedding[owners_array == i], logit[owners_array == i])
        for i in sorted(set(owners))
    ]


def make_section_scorer(
    scorer: str, labels: Sequence[str], machine_type: str, section: str, train: list[ClipOutputs]
) -> Callable[[ClipOutputs], float]:
    """clip -> score (mean over its windows) for one section."""
    if scorer == "section":
        indices = matching_indices(labels, make_label(machine_type, section))
        return lambda c: float(section_scores(c.logits, indices).mean())
    source = [c.embedding for c in train if c.clip.domain == "source"]
    target = [c.embedding for c in train if c.clip.domain == "target"]
    if not source and not target:
        raise UserError(f"{machine_type} section {section}: no normal train clip for a knn bank")
    dim = (source or target)[0].shape[1]
    bank = build_bank(
        np.concatenate(source) if source else np.zeros((0, dim)),
        KNN_CENTRES,
        new_condition=np.concatenate(target) if target else None,
    )
    return lambda c: float(knn_scores(c.embedding, bank).mean())


def decision_threshold(train_scores: np.ndarray) -> float:
    """The DCASE baseline's rule: a gamma fit to normal train scores, its 0.9 quantile.

    The empirical quantile when the scores do not vary or the fit fails.
    """
    import warnings

    from scipy import stats

    if len(train_scores) == 0:
        return float("inf")
    empirical = float(np.quantile(train_scores, DECISION_QUANTILE))
    if len(train_scores) < 3 or not np.ptp(train_scores) > 0:
        return empirical
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # the fit's optimiser warns on odd data
        try:
            threshold = float(stats.gamma.ppf(DECISION_QUANTILE, *stats.gamma.fit(train_scores)))
        except (ValueError, RuntimeError, FloatingPointError):
            return empirical
    return threshold if np.isfinite(threshold) else empirical


def evaluate_type(
    engine: Engine,
    labels: Sequence[str],
    root: Path,
    machine_type: str,
    scorer: str,
    policy: str,
) -> list[SectionScores]:
    """Score every section of one machine type's test clips."""
    window_samples = engine.info.window_samples
    test = list_clips(root, machine_type, "test")
    train_clips = [c for c in list_clips(root, machine_type, "train") if not c.is_anomaly]
    test_out = clip_outputs(engine, test, window_samples, policy)
    train_out = clip_outputs(engine, train_clips, window_samples, policy)
    results = []
    for section in sorted({c.clip.section for c in test_out}):
        train = [c for c in train_out if c.clip.section == section]
        clips = [c for c in test_out if c.clip.section == section]
        score_of = make_section_scorer(scorer, labels, machine_type, section, train)
        scores = np.array([score_of(c) for c in clips])
        train_scores = np.array([score_of(c) for c in train])
        result = section_result(
            scores, [c.clip.is_anomaly for c in clips], [c.clip.domain for c in clips]
        )
        results.append(
            SectionScores(
                machine_type,
                section,
                [c.clip for c in clips],
                scores,
                decision_threshold(train_scores),
                result,
                train_scores,
            )
        )
    return results


def evaluate_run(
    data_root: str | Path,
    run: str | Path,
    scorer: str = "section",
    engine_kind: str = "onnxruntime",
    threads: int | None = None,
    short_clips: str = "tile",
) -> list[SectionScores]:
    """Every section of every machine type that the run's models know and the tree holds."""
    if scorer not in SCORERS:
        raise UserError(f"--scorer {scorer!r}: choose one of {SCORERS}")
    root = Path(data_root)
    present = set(machine_types(root))
    sections: list[SectionScores] = []
    for model_dir in model_dirs(run):
        info = load_model_info(model_dir)
        types = sorted({label.split("/")[0] for label in info.labels} & present)
        if not types:
            log.warning("%s: none of its machine types is under %s", model_dir, root)
            continue
        engine = open_engine(model_dir, engine_kind, threads=threads)
        try:
            for machine_type in types:
                sections += evaluate_type(
                    engine, info.labels, root, machine_type, scorer, short_clips
                )
        finally:
            engine.close()
    if not sections:
        raise UserError(f"{root}: no test clip of the machine types the models in {run} know")
    return sections
