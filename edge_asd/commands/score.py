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
    binding.add_argument(
        "--calibration", help="calibration.yaml: its scorer, memory bank, threshold, k-of-n"
    )
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
        scorer, decision, hop = _setup(args, engine.info)
        failed = 0
        for path in args.files:
            try:
                result = score_file(
                    engine, scorer, path, hop, decision, args.channel, args.batch_size
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
    """(scorer, decision or None, hop in samples) from --calibration or --label."""
    from edge_asd.scoring.scorer import scorer_from_calibration, section_scorer
    from edge_asd.windows import hop_samples

    decision: Decision | None = None
    hop_seconds = args.hop_seconds
    if args.calibration:
        calibration = _load_calibration(args.calibration, info)
        scorer = scorer_from_calibration(calibration, info.labels, args.calibration)
        decision = Decision(
            calibration.threshold, calibration.k, calibration.n, calibration.m_close
        )
        if hop_seconds is None:
            hop_seconds = calibration.hop_seconds
    else:
        scorer = section_scorer(info.labels, args.label)
    if hop_seconds is None:
        hop_seconds = DEFAULT_HOP_SECONDS
    try:
        hop = hop_samples(hop_seconds, info.sample_rate)
    except ValueError as exc:
        raise UserError(f"--hop-seconds: {exc}", EXIT_USAGE) from None
    return scorer, decision, hop


def _load_calibration(path: str, model_info):
    try:
        from edge_asd.calibration.file import load_calibration
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("edge_asd.calibration"):
            raise
        raise UserError("this edge-asd cannot read calibrations yet", EXIT_USAGE) from None
    return load_calibration(path, model_info)


def load_mono(path: str, sample_rate: int, channel: int | None) -> np.ndarray:
    """A file's samples as float32 [n] at `sample_rate`: one channel, or the channel mean."""
    from edge_asd.audio import read_audio

    audio = read_audio(path, sample_rate)
    if channel is None:
        return audio.mono()
    n_channels = audio.samples.shape[1]
    if not 0 <= channel < n_channels:
        raise AudioFileError(
            f"{path}: has {n_channels} channel(s), no channel {channel} (they count from 0)"
        )
    return np.ascontiguousarray(audio.samples[:, channel])


def doubtful_input(path: str, samples: np.ndarray, sample_rate: int) -> list[str]:
    """Why a readable file's scores may mislead: recorded below the model's rate (the
    upsampled band is empty), silent or clipped. Such files are scored, with a warning;
    `edge-asd calibrate` refuses them (a threshold must not be fitted on them)."""
    import soundfile

    from edge_asd.calibration.inputs import level_problem

    warnings = []
    native_rate = soundfile.info(path).samplerate
    if native_rate < sample_rate:
        warnings.append(
            f"{path}: recorded at {native_rate} Hz, below the model's {sample_rate} Hz: "
            f"upsampled, with nothing above {native_rate // 2} Hz, so its scores are not "
            "comparable with those of the machine's own recordings"
        )
    level = level_problem(Path(path), samples)
    if level is not None:
        warnings.append(f"{level}; scored anyway, but its scores are doubtful")
    return warnings


def score_file(
    engine,
    scorer,
    path: str,
    hop: int,
    decision: Decision | None,
    channel: int | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """The JSON_KEYS summary of one file; AudioFileError when it is unreadable or too short."""
    from edge_asd.scoring.offline import decide, opens_event, score_signal

    info = engine.info
    samples = load_mono(path, info.sample_rate, channel)
    for warning in doubtful_input(path, samples, info.sample_rate):
        log.warning("%s", warning)
    if len(samples) < info.window_samples:
        raise AudioFileError(
            f"{path}: {len(samples) / info.sample_rate:.2f} s is shorter than one window "
            f"({info.window_samples / info.sample_rate:g} s)"
        )
    scores = score_signal(engine, scorer, samples, hop, batch_size)
    result: dict[str, Any] = {
        "file": str(path),
        "windows": len(scores.scores),
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
