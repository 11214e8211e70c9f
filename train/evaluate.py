"""`evaluate`: score a DCASE tree's test clips with an exported model, as the runtime does.

The model runs through edge_asd's engine (onnxruntime by default, the exported ONNX), and
clips are scored by the runtime's scorers: `section` (edge_asd.scoring.section), or any
scorer `edge-asd calibrate` makes (`knn`, `twfr`, a fusion such as `knn+twfr`), calibrated
per section on the normal train clips exactly as the runtime calibrates a machine
(edge_asd.calibration.build): source clips as the main set, target clips as the new
condition (kept raw in the knn bank), twfr's pooling and mixture chosen on those clips
alone, a fusion standardised on honest leave-out scores. A clip's score is the mean over
its windows (one window for a 10 s clip). The decision threshold per section is the DCASE
baseline's: a gamma fitted to the scores of the normal train clips (honest leave-out
scores for a calibrated scorer), at its 0.9 quantile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_asd.audio import SAMPLE_RATE, read_audio
from edge_asd.calibration.build import Embedded, Settings, calibrate
from edge_asd.dcase import Clip, list_clips, machine_types
from edge_asd.engines import Engine, EngineOutput, open_engine
from edge_asd.errors import AudioFileError, UserError
from edge_asd.labels import make_label, matching_indices
from edge_asd.model_file import ModelInfo, load_model_info
from edge_asd.scoring.scorer import SCORER_KINDS, scorer_from_calibration, scorer_names
from edge_asd.scoring.section import section_scores
from edge_asd.scoring.twfr import pool_candidates
from train.checkpoint import MODEL_DIR
from train.clip_audio import clip_windows
from train.metrics import SectionResult, section_result

log = logging.getLogger(__name__)

SCORERS = SCORER_KINDS  # or several joined by '+', fused
DECISION_QUANTILE = 0.9
KNN_CENTRES = 16
BATCH_WINDOWS = 16
CLIP_HOP_SECONDS = 1.0  # between the windows of a clip longer than one


@dataclass(frozen=True)
class ClipOutputs:
    """A clip's per-window embeddings [W, D] and logits [W, L]; its log-mel [W, n_mels,
    frames] or only that pooled for twfr [W, n_r, n_mels] when asked for."""

    clip: Clip
    embedding: np.ndarray
    logits: np.ndarray
    logmel: np.ndarray | None = None
    pooled: np.ndarray | None = None

    def engine_output(self) -> EngineOutput:
        return EngineOutput(self.embedding, self.logits, self.logmel)


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
    engine: Engine,
    clips: Sequence[Clip],
    window_samples: int,
    policy: str,
    keep: str | None = None,
) -> list[ClipOutputs]:
    """Run every window of every clip through the engine, BATCH_WINDOWS at a time.

    keep: None, "logmel" (160 kB a window: one section's test clips at a time) or
    "pooled" (the log-mel pooled at every twfr r, what a twfr calibration needs).
    """
    windows, owners = [], []
    for i, clip in enumerate(clips):
        try:
            samples = read_audio(clip.path).mono()
        except AudioFileError as exc:
            log.warning("skipped: %s", exc)
            continue
        w = clip_windows(
            samples, window_samples, policy, hop_samples=round(CLIP_HOP_SECONDS * SAMPLE_RATE)
        )
        windows.append(w)
        owners += [i] * len(w)
    if not windows:
        return []
    stacked = np.concatenate(windows).astype(np.float32)
    embeddings, logits, extra = [], [], []
    for first in range(0, len(stacked), BATCH_WINDOWS):
        out = engine.infer(stacked[first : first + BATCH_WINDOWS])
        embeddings.append(out.embedding)
        logits.append(out.logits)
        if keep is not None:
            extra.append(out.logmel if keep == "logmel" else pool_candidates(out.logmel))
    embedding, logit = np.concatenate(embeddings), np.concatenate(logits)
    kept = np.concatenate(extra) if extra else None
    owners_array = np.asarray(owners)
    outputs = []
    for i in sorted(set(owners)):
        mine = owners_array == i
        part = None if kept is None else kept[mine]
        logmel, pooled = (part, None) if keep == "logmel" else (None, part)
        outputs.append(ClipOutputs(clips[i], embedding[mine], logit[mine], logmel, pooled))
    return outputs


def make_section_scorer(
    scorer: str,
    info: ModelInfo,
    machine_type: str,
    section: str,
    train: list[ClipOutputs],
) -> tuple[Callable[[ClipOutputs], float], np.ndarray]:
    """(clip -> score, the mean over its windows; the normal train clips' scores) of one
    section. `section` alone needs no calibration; any other scorer is calibrated on the
    section's normal train clips as `edge-asd calibrate` would, and the train clips'
    scores are its honest leave-out scores."""
    label = make_label(machine_type, section)
    if scorer == "section":
        indices = matching_indices(info.labels, label)

        def section_score(c: ClipOutputs) -> float:
            return float(section_scores(c.logits, indices).mean())

        return section_score, np.array([section_score(c) for c in train])
    window_seconds = info.window_samples / info.sample_rate
    source = [_embedded(c, window_seconds) for c in train if c.clip.domain == "source"]
    target = [_embedded(c, window_seconds) for c in train if c.clip.domain == "target"]
    if not source and not target:
        raise UserError(f"{machine_type} section {section}: no normal train clip to calibrate on")
    main, new = (source, target) if source else (target, [])
    settings = Settings(
        machine=f"{machine_type}_{section}",
        scorer=scorer,
        label=label if "section" in scorer.split("+") else None,
        quantile=DECISION_QUANTILE,
        n_centres=KNN_CENTRES,
        hop_seconds=CLIP_HOP_SECONDS,
    )
    result = calibrate(main, new, settings, info)
    calibrated = scorer_from_calibration(result.calibration, info.labels, str(settings.machine))
    train_scores = np.array([float(np.mean(run)) for run in result.runs])
    return lambda c: float(np.mean(calibrated(c.engine_output()))), train_scores


def _embedded(c: ClipOutputs, window_seconds: float) -> Embedded:
    seconds = (len(c.embedding) - 1) * CLIP_HOP_SECONDS + window_seconds  # as windowed
    return Embedded(c.clip.path.name, c.embedding, c.logits, seconds, c.pooled)


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
    """Score every section of one machine type's test clips (one section's at a time)."""
    window_samples = engine.info.window_samples
    twfr = "twfr" in scorer.split("+")
    test = list_clips(root, machine_type, "test")
    train_clips = [c for c in list_clips(root, machine_type, "train") if not c.is_anomaly]
    train_out = clip_outputs(
        engine, train_clips, window_samples, policy, keep="pooled" if twfr else None
    )
    results = []
    for section in sorted({c.section for c in test}):
        clips_in = [c for c in test if c.section == section]
        clips = clip_outputs(
            engine, clips_in, window_samples, policy, keep="logmel" if twfr else None
        )
        if not clips:
            continue
        train = [c for c in train_out if c.clip.section == section]
        score_of, train_scores = make_section_scorer(
            scorer, engine.info, machine_type, section, train
        )
        scores = np.array([score_of(c) for c in clips])
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
    scorer = "+".join(scorer_names(scorer, "--scorer"))
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
