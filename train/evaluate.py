"""`evaluate`: score a DCASE tree's test clips with an exported model, as the product does.

Per machine type and section, the section's normal train clips are calibrated on exactly
as `edge-asd calibrate --input` calibrates a machine (edge_asd.calibration: the clips
checked and joined per recording by edge_asd.calibration.inputs, streamed through the
engine, synthetic faults made from them, the detector chosen by what it detects, or the
asked `--scorer`), with source-domain recordings as the main set and target-domain ones
as the new condition. Each test clip is then streamed through the same engine and scored
by the calibrated detector as `edge-asd score` scores a file (edge_asd.scoring.offline);
a clip's score is the mean over its windows (one window for a 10 s clip). A clip shorter
than a window follows the rule of `score` and `calibrate`
(edge_asd.recording.short_recording: at least half a window is tiled, a shorter one is
skipped with a warning), or is padded with silence when the run asks for `pad`. The
decision threshold is the calibration's (the DCASE baseline's rule: a gamma fitted to
honest normal scores, its 0.9 quantile).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_asd.audio import SAMPLE_RATE, audio_info, read_audio
from edge_asd.calibration.build import AUTO, Result, Settings, calibrate
from edge_asd.calibration.collect import CalibrationData, collect, file_sources
from edge_asd.calibration.inputs import plan_recordings
from edge_asd.dcase import Clip, list_clips, machine_types
from edge_asd.engines import Engine, open_engine
from edge_asd.errors import AudioFileError, UserError
from edge_asd.labels import make_label, matching_indices
from edge_asd.metrics import SectionResult, section_result
from edge_asd.model_file import load_model_info
from edge_asd.recording import WindowBatch, short_recording, stream_windows
from edge_asd.scoring.detector import Detector
from edge_asd.scoring.features import WindowFeatures
from edge_asd.scoring.offline import window_features_of
from edge_asd.windows import hop_samples
from train.checkpoint import MODEL_DIR
from train.clip_audio import fit_to_window

log = logging.getLogger(__name__)

DECISION_QUANTILE = 0.9
HOP_SECONDS = 1.0  # between the windows of a recording longer than one


@dataclass
class SectionScores:
    """Scores of one section's test clips, the decision threshold, the metrics and the
    calibration they came from."""

    machine_type: str
    section: str
    clips: list[Clip]
    scores: np.ndarray
    threshold: float
    result: SectionResult
    calibration: Result | None = None


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


def collect_clips(
    engine: Engine, clips: Sequence[Clip], hop_seconds: float = HOP_SECONDS, seed: int = 0
) -> CalibrationData:
    """Normal clips collected as `edge-asd calibrate --input` collects them: checked and
    joined per recording, source-domain recordings the main set, target-domain ones the
    new condition (or the main set when there is no source recording)."""
    info = engine.info
    hop = hop_samples(hop_seconds, info.sample_rate)
    source = [c.path for c in clips if c.domain == "source"]
    target = [c.path for c in clips if c.domain == "target"]
    main, new = (source, target) if source else (target, [])
    window = {"window_samples": info.window_samples}
    sources = file_sources(
        plan_recordings(main, skip_bad=True, **window), hop_samples=hop, **window
    )
    if new:
        recordings = plan_recordings(new, skip_bad=True, **window)
        sources += file_sources(recordings, hop_samples=hop, new_condition=True, **window)
    return collect(engine, sources, hop_samples=hop, seed=seed)


def calibrate_clips(engine: Engine, clips: Sequence[Clip], settings: Settings) -> Result:
    """`collect_clips`, then calibrate as `edge-asd calibrate` does (see the module)."""
    data = collect_clips(engine, clips, settings.hop_seconds, settings.seed)
    return calibrate(data, settings, engine.info)


def clip_features(engine: Engine, clip: Clip, policy: str = "tile") -> WindowFeatures:
    """The features of a test clip's windows, as `edge-asd score` computes them."""
    hop = hop_samples(HOP_SECONDS, engine.info.sample_rate)
    batches = clip_batches(clip.path, engine.info.window_samples, hop, policy)
    return window_features_of(engine, batches, stream=str(clip.path))[0]


def clip_batches(
    clip_path: Path, window_samples: int, hop: int, policy: str = "tile"
) -> list[WindowBatch]:
    """A test clip's windows, streamed (see the module for a clip shorter than a window).

    Raises AudioFileError when it is unreadable or too short to tile."""
    seconds = audio_info(clip_path).seconds
    if policy == "pad" and round(seconds * SAMPLE_RATE) < window_samples:
        window = fit_to_window(read_audio(clip_path).mono(), window_samples, policy)
        return [WindowBatch(window[None, :], np.array([window_samples], dtype=np.int64))]
    short = short_recording(str(clip_path), seconds, window_samples / SAMPLE_RATE)
    if short.problem:
        raise AudioFileError(short.problem)
    return list(
        stream_windows([clip_path], window_samples=window_samples, hop_samples=hop, tile_short=True)
    )


def score_clips(
    engine: Engine, detector: Detector, clips: Sequence[Clip], policy: str = "tile"
) -> tuple[list[Clip], np.ndarray]:
    """(the clips that could be read, each one's mean window score)."""
    kept, scores = [], []
    for clip in clips:
        try:
            features = clip_features(engine, clip, policy)
        except AudioFileError as exc:
            log.warning("skipped: %s", exc)
            continue
        kept.append(clip)
        scores.append(float(detector.score(features).mean()))
    return kept, np.asarray(scores)


def evaluate_type(
    engine: Engine, root: Path, machine_type: str, scorer: str, policy: str
) -> list[SectionScores]:
    """Score every section of one machine type's test clips."""
    test = list_clips(root, machine_type, "test")
    train_clips = [c for c in list_clips(root, machine_type, "train") if not c.is_anomaly]
    results = []
    for section in sorted({c.section for c in test}):
        own = [c for c in train_clips if c.section == section]
        if not own:
            log.warning("%s section %s: no normal train clip; skipped", machine_type, section)
            continue
        label = make_label(machine_type, section)
        settings = Settings(
            machine=f"{machine_type}_{section}"[:64].replace("/", "_"),
            scorer=scorer,
            label=label if model_knows(engine, label) else None,
            quantile=DECISION_QUANTILE,
            hop_seconds=HOP_SECONDS,
            refuse_blind=False,  # an evaluation reports a blind detector's numbers
        )
        calibration = calibrate_clips(engine, own, settings)
        clips, scores = score_clips(
            engine,
            calibration.calibration.detector,
            [c for c in test if c.section == section],
            policy,
        )
        metrics = section_result(scores, [c.is_anomaly for c in clips], [c.domain for c in clips])
        results.append(
            SectionScores(
                machine_type,
                section,
                clips,
                scores,
                calibration.calibration.threshold,
                metrics,
                calibration,
            )
        )
    return results


def model_knows(engine: Engine, label: str) -> bool:
    try:
        matching_indices(engine.info.labels, label)
    except UserError:
        return False
    return True


def evaluate_run(
    data_root: str | Path,
    run: str | Path,
    scorer: str = AUTO,
    engine_kind: str = "onnxruntime",
    threads: int | None = None,
    short_clips: str = "tile",
) -> list[SectionScores]:
    """Every section of every machine type that the run's models know and the tree holds."""
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
                sections += evaluate_type(engine, root, machine_type, scorer, short_clips)
        finally:
            engine.close()
    if not sections:
        raise UserError(f"{root}: no test clip of the machine types the models in {run} know")
    return sections
