"""`edge-asd score`: score recordings offline, window by window, as the daemon would.

    edge-asd score --model M (--calibration C | --label LABEL) [--hop-seconds H] [--json] FILES...

Files and folders are walked as `calibrate --input` walks them (edge_asd.input_files). Per
file: its length, the number of windows, the max and mean window score and, with a
calibration, its threshold, how many windows were above it, the verdict (`anomalous`)
and the rule that gave it (`rule`), and the median level against the calibration's
(`level_offset_db`). With `--json`, one object per file per line with exactly the keys of
`JSON_KEYS` (other tools parse it: keep it stable; keys are only ever added).

The verdict is the daemon's k-of-n rule (edge_asd.scoring.offline.verdict); a recording
shorter than the span that rule needs (window + (n-1) hops, 14 s for 3 of 5 at 1 s) is
judged by the same share of its windows (1 of 1 for a 10 s clip). A recording shorter
than a window is tiled when it holds at least half of one, else refused
(edge_asd.recording.short_recording), as in `calibrate` and `evaluate`.

The audio is taken as the calibration took it: its channel unless --channel says
otherwise; a different channel, channel count, sample rate or a level more than 6 dB
away is warned about (edge_asd.calibration.heard). A file that cannot be scored
(unreadable, too short) gets an error line on stderr; the other files are still scored
and the exit status is non-zero.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_asd.errors import EXIT_USAGE, AudioFileError, UserError

if TYPE_CHECKING:
    from edge_asd.calibration.file import Calibration

JSON_KEYS = (
    "file",
    "seconds",
    "windows",
    "max_score",
    "mean_score",
    "threshold",
    "windows_above",
    "anomalous",
    "rule",
    "level_offset_db",
)
DEFAULT_HOP_SECONDS = 1.0

log = logging.getLogger(__name__)

VERDICT_HELP = (
    "A file is ANOMALY when the calibration's k-of-n rule (3 of 5 windows above the "
    "threshold by default) opens an event in it. A file shorter than that rule's span "
    "(window + (n-1) hops: 14 s by default) is judged by the same share of its windows "
    "(1 of 1 for a 10 s clip, 2 of 3 for 12 s); the rule used is printed. A file shorter "
    "than a window is tiled to one when it holds at least half a window, else refused."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score recordings offline",
        description="Score audio files window by window, as the daemon would, and say "
        "whether each would raise an anomaly event. " + VERDICT_HELP,
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILES",
        help="WAV or FLAC files, or folders of them (walked as calibrate walks --input)",
    )
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
        "--channel",
        type=int,
        default=None,
        help="score this channel, from 0 (default: the calibration's, else the channel mean)",
    )
    parser.add_argument("--engine", default="onnxruntime", help="onnxruntime (default) | tensorrt")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per inference batch")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_asd.calibration.heard import channel_for
    from edge_asd.calibration.inputs import find_audio_files
    from edge_asd.engines import open_engine

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}", EXIT_USAGE)
    engine = open_engine(args.model, args.engine, threads=args.threads)
    try:
        detector, calibration, hop = _setup(args, engine.info)
        heard = calibration.heard if calibration is not None else None
        channel = channel_for(heard, args.channel)
        if args.channel is None and heard is not None and channel is not None:
            log.info("scoring channel %d, as the calibration did (--channel to change)", channel)
        files, problems = find_audio_files(args.files)
        for problem in problems:
            print(f"edge-asd score: error: {problem}", file=sys.stderr)
        failed, verdicts = len(problems), []
        for path in files:
            try:
                result = score_file(
                    engine, detector, path, hop, calibration, channel, args.batch_size
                )
            except AudioFileError as exc:
                print(f"edge-asd score: error: {exc}", file=sys.stderr)
                failed += 1
                continue
            verdicts.append(result["anomalous"])
            print(json.dumps(result) if args.json else _human_line(result), flush=True)
    finally:
        engine.close()
    if not args.json and len(verdicts) + failed > 1:
        print(_totals(verdicts, failed))
    return AudioFileError.exit_code if failed else 0


def _totals(verdicts: list[bool | None], failed: int) -> str:
    """E.g. `64 files: 38 ANOMALY, 26 normal, 1 not scored` (verdicts None: no calibration)."""
    parts = []
    if any(v is not None for v in verdicts):
        parts += [f"{sum(v is True for v in verdicts)} ANOMALY", f"{verdicts.count(False)} normal"]
    else:
        parts.append(f"{len(verdicts)} scored")
    if failed:
        parts.append(f"{failed} not scored (see the errors)")
    return f"{len(verdicts) + failed} files: " + ", ".join(parts)


def _setup(args: argparse.Namespace, info):
    """(detector, the Calibration or None, hop in samples) from --calibration or --label."""
    from edge_asd.windows import hop_samples

    calibration = None
    hop_seconds = args.hop_seconds
    if args.calibration:
        from edge_asd.calibration.file import load_calibration

        calibration = load_calibration(args.calibration, info)
        detector = calibration.detector
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
    return detector, calibration, hop


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


def doubtful_input(path: str, native_rate: int, meter, sample_rate: int) -> list[str]:
    """Why a readable file's scores may mislead: recorded (at `native_rate`, its header's)
    below the model's rate (the upsampled band is empty), silent or clipped. Such files are
    scored, with a warning; `edge-asd calibrate` refuses them (a threshold must not be
    fitted on them)."""
    from edge_asd.calibration.inputs import judge_level

    warnings = []
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
    calibration: Calibration | None,
    channel: int | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """The JSON_KEYS summary of one file, streamed in bounded memory (see the module);
    AudioFileError when it is unreadable or too short even to tile."""
    from edge_asd.audio import audio_info
    from edge_asd.calibration.inputs import level_meter
    from edge_asd.recording import short_recording, stream_windows
    from edge_asd.scoring.offline import score_windows

    info = engine.info
    header = audio_info(path)
    window_seconds = info.window_samples / info.sample_rate
    short = short_recording(str(path), header.seconds, window_seconds)
    if short.problem:
        raise AudioFileError(short.problem)
    if short.warning:
        log.warning("%s", short.warning)
    heard = calibration.heard if calibration is not None else None
    if heard is not None:
        from edge_asd.calibration.heard import differences

        for difference in differences(heard, channel, header):
            log.warning("%s: %s", path, difference)
    meter = level_meter(info.sample_rate)
    batches = stream_windows(
        [path],
        window_samples=info.window_samples,
        hop_samples=hop,
        channel=channel,
        sample_rate=info.sample_rate,
        batch_size=batch_size,
        on_block=meter.feed,
        tile_short=True,
    )
    scores = score_windows(engine, detector, batches, stream=str(path))
    for warning in doubtful_input(path, header.sample_rate, meter, info.sample_rate):
        log.warning("%s", warning)
    if len(scores) == 0:  # the header promised more than the file held
        raise AudioFileError(f"{path}: {meter.seconds:.2f} s of audio held no window")
    result: dict[str, Any] = {
        "file": str(path),
        "seconds": round(meter.seconds, 3),
        "windows": len(scores),
        "max_score": float(scores.scores.max()),
        "mean_score": float(scores.scores.mean()),
        "threshold": None,
        "windows_above": None,
        "anomalous": None,
        "rule": None,
        "level_offset_db": None,
    }
    if calibration is not None:
        result.update(_judged(scores, calibration, meter.seconds, hop / info.sample_rate, info))
        _warn_level(path, result["level_offset_db"])
    return result


def _judged(scores, calibration: Calibration, seconds: float, hop_seconds: float, info) -> dict:
    """The keys a calibration adds: threshold, windows above, verdict, rule, level offset."""
    from edge_asd.scoring.offline import verdict

    window_seconds = info.window_samples / info.sample_rate
    span_seconds = window_seconds + (calibration.n - 1) * hop_seconds
    judged = verdict(
        scores,
        calibration.threshold,
        calibration.k,
        calibration.n,
        calibration.m_close,
        span_seconds,
        seconds,
    )
    offset = None
    if calibration.level_db is not None:
        offset = round(float(np.median(scores.level_db)) - calibration.level_db, 2)
    return {
        "threshold": float(calibration.threshold),
        "windows_above": int((scores.scores > calibration.threshold).sum()),
        "anomalous": judged.anomalous,
        "rule": judged.rule,
        "level_offset_db": offset,
    }


def _warn_level(path: str, offset_db: float | None) -> None:
    from edge_asd.calibration.heard import level_difference

    said = level_difference(offset_db)
    if said:
        log.warning("%s: %s", path, said)


def _human_line(result: dict[str, Any]) -> str:
    line = (
        f"{result['file']}: {result['windows']} windows, max {result['max_score']:.4g}, "
        f"mean {result['mean_score']:.4g}"
    )
    if result["threshold"] is None:
        return line
    verdict = "ANOMALY" if result["anomalous"] else "normal"
    line += f", threshold {result['threshold']:.4g}, {result['windows_above']} above"
    if result["level_offset_db"] is not None:
        line += f", level {result['level_offset_db']:+.1f} dB"
    return f"{line}: {verdict} ({result['rule']})"
