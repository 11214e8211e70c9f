"""`edge-asd score`: score recordings offline, window by window, as the daemon would.

    edge-asd score --model M (--calibration C | --label LABEL) [--hop-seconds H] [--json] FILES...

Per file: the number of windows, the max and mean window score and, with a calibration,
its threshold, how many windows were above it and whether the calibration's k-of-n rule
opens an anomaly event anywhere in the file. With `--json`, one object per file per line
with exactly the keys of `JSON_KEYS` (other tools parse it: keep it stable). A file that
cannot be scored (unreadable, shorter than one window) gets an error line on stderr; the
other files are still scored and the exit status is non-zero.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_asd.errors import EXIT_USAGE, AudioFileError, UserError

JSON_KEYS = (
    "file",
    "windows",
    "max_score",
    "mean_score",
    "threshold",
    "windows_above",
    "anomalous",
)
DEFAULT_HOP_SECONDS = 1.0

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score recordings offline",
        description="Score audio files window by window, as the daemon would, and say "
        "whether each would raise an anomaly event.",
    )
    parser.add_argument("files", nargs="+", metavar="FILES", help="WAV or FLAC files")
    parser.add_argument("--model", required=True, help="model directory (model.onnx + .yaml)")
    binding = parser.add_mutually_exclusive_group(required=True)
    binding.add_argument("--calibration", help="calibration.yaml: its detector, threshold, k-of-n")
    binding.add_argument(
        "--label", help="score with the section scorer at this model label (or label prefix)"
    )
    parser.add_argument(
        "--hop-seconds",
        type=float,
        default=None,
        help=f"seconds between windows (default: the calibration's, else {DEFAULT_HOP_SECONDS})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per file per line")
    parser.add_argument(
        "--channel", type=int, default=None, help="score this channel (default: channel mean)"
    )
    parser.add_argument("--engine", default="onnxruntime", help="onnxruntime (default) | tensorrt")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per inference batch")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class Decision:
    """What a calibration decides: threshold and the decider's k-of-n and m_close."""

    threshold: float
    k: int
    n: int
    m_close: int


def run(args: argparse.Namespace) -> int:
    from edge_asd.engines import open_engine

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}", EXIT_USAGE)
    engine = open_engine(args.model, args.engine, threads=args.threads)
    try:
        detector, decision, hop = _setup(args, engine.info)
        failed = 0
        for path in args.files:
            try:
                result = score_file(
                    engine, detector, path, hop, decision, args.channel, args.batch_size
                )
            except AudioFileError as exc:
                print(f"edge-asd score: error: {exc}", file=sys.stderr)
                failed += 1
                continue
            print(json.dumps(result) if args.json else _human_line(result), flush=True)
    finally:
        engine.close()
    return AudioFileError.exit_code if failed else 0


def _setup(args: argparse.Namespace, info):
    """(detector, decision or None, hop in samples) from --calibration or --label."""
    from edge_asd.windows import hop_samples

    decision: Decision | None = None
    hop_seconds = args.hop_seconds
    if args.calibration:
        from edge_asd.calibration.file import load_calibration

        calibration = load_calibration(args.calibration, info)
        detector = calibration.detector
        decision = Decision(
            calibration.threshold, calibration.k, calibration.n, calibration.m_close
        )
        if hop_seconds is None:
            hop_seconds = calibration.hop_seconds
    else:
        detector = section_detector(info, args.label)
    if hop_seconds is None:
        hop_seconds = DEFAULT_HOP_SECONDS
    try:
        hop = hop_samples(hop_seconds, info.sample_rate)
    except ValueError as exc:
        raise UserError(f"--hop-seconds: {exc}", EXIT_USAGE) from None
    return detector, decision, hop


def section_detector(info, binding: str):
    """The section scorer at `binding`, unstandardised (its raw score): no calibration.

    Raises UserError when the binding matches no label or every label of the model."""
    from edge_asd.scoring.detector import Component, Detector, Standardiser
    from edge_asd.scoring.registry import FitContext, FitData
    from edge_asd.scoring.section import SectionScorer

    context = FitContext.of_model(info, binding)
    try:
        scorer = SectionScorer.fit(FitData(_no_windows(info)), {}, context)
    except ValueError as exc:
        raise UserError(f"--label: {exc}", EXIT_USAGE) from None
    return Detector((Component(scorer, Standardiser(0.0, 1.0)),))


def _no_windows(info):
    from edge_asd.scoring.features import POOLING_R, WindowFeatures

    return WindowFeatures(
        np.zeros((0, info.embedding_dim), np.float32),
        np.zeros((0, info.n_labels), np.float32),
        np.zeros((0, len(POOLING_R), info.front_end.n_mels), np.float32),
    )


def doubtful_input(path: str, meter, sample_rate: int) -> list[str]:
    """Why a readable file's scores may mislead: recorded below the model's rate (the
    upsampled band is empty), silent or clipped. Such files are scored, with a warning;
    `edge-asd calibrate` refuses them (a threshold must not be fitted on them)."""
    import soundfile

    from edge_asd.calibration.inputs import judge_level

    warnings = []
    native_rate = soundfile.info(path).samplerate
    if native_rate < sample_rate:
        warnings.append(
            f"{path}: recorded at {native_rate} Hz, below the model's {sample_rate} Hz: "
            f"upsampled, with nothing above {native_rate // 2} Hz, so its scores are not "
            "comparable with those of the machine's own recordings"
        )
    level = judge_level(Path(path), meter) if meter.samples else None
    if level is not None:
        warnings.append(f"{level}; scored anyway, but its scores are doubtful")
    return warnings


def score_file(
    engine,
    detector,
    path: str,
    hop: int,
    decision: Decision | None,
    channel: int | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """The JSON_KEYS summary of one file, streamed in bounded memory; AudioFileError when
    it is unreadable or shorter than one window."""
    from edge_asd.calibration.inputs import level_meter
    from edge_asd.recording import stream_windows
    from edge_asd.scoring.offline import decide, opens_event, score_windows

    info = engine.info
    meter = level_meter(info.sample_rate)
    batches = stream_windows(
        [path],
        window_samples=info.window_samples,
        hop_samples=hop,
        channel=channel,
        sample_rate=info.sample_rate,
        batch_size=batch_size,
        on_block=meter.feed,
    )
    scores = score_windows(engine, detector, batches, stream=str(path))
    for warning in doubtful_input(path, meter, info.sample_rate):
        log.warning("%s", warning)
    if len(scores) == 0:
        raise AudioFileError(
            f"{path}: {meter.seconds:.2f} s is shorter than one window "
            f"({info.window_samples / info.sample_rate:g} s)"
        )
    result: dict[str, Any] = {
        "file": str(path),
        "windows": len(scores),
        "max_score": float(scores.scores.max()),
        "mean_score": float(scores.scores.mean()),
        "threshold": None,
        "windows_above": None,
        "anomalous": None,
    }
    if decision is not None:
        events = decide(scores, decision.threshold, decision.k, decision.n, decision.m_close)
        result["threshold"] = float(decision.threshold)
        result["windows_above"] = int((scores.scores > decision.threshold).sum())
        result["anomalous"] = opens_event(events)
    return result


def _human_line(result: dict[str, Any]) -> str:
    line = (
        f"{result['file']}: {result['windows']} windows, max {result['max_score']:.4g}, "
        f"mean {result['mean_score']:.4g}"
    )
    if result["threshold"] is None:
        return line
    verdict = "ANOMALY" if result["anomalous"] else "normal"
    return (
        f"{line}, threshold {result['threshold']:.4g}, {result['windows_above']} above: {verdict}"
    )
