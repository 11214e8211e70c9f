"""The normal recordings a calibration reads: files checked one by one, clips joined.

Files and folders (walked as edge_asd.input_files says: links followed, hidden, system
and non-audio files left out and counted, a summary logged) are read and checked: a file
that cannot be read, is empty, silent (or silent for a good part: was the machine off?),
clipped, recorded below the model's sample rate (upsampling cannot restore the missing
band), named as an anomaly clip, or too short is a problem; every problem is reported at
once, one line per file. Files at a higher rate are resampled. No file is read whole: the
header gives rate and channels, and one pass in blocks measures length and level.

Files named in the DCASE layout with a recording attribute (`rec`, `flight`) are joined
per recording in `seg` order, as the daemon would have heard them. A recording shorter
than a window follows the rule `score` and `evaluate` share
(edge_asd.recording.short_recording): at least half a window is tiled to a window, with a
warning; anything shorter is a problem.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_asd.audio import SAMPLE_RATE, AudioInfo, audio_info
from edge_asd.dcase import group_recordings, parse_clip
from edge_asd.errors import AudioFileError, UserError
from edge_asd.input_files import walk_inputs
from edge_asd.recording import (
    LevelMeter,
    WindowBatch,
    read_recording,
    short_recording,
    stream_windows,
)

log = logging.getLogger(__name__)

RECORDING_KEYS = ("rec", "flight")
SILENT_RMS = 1e-4  # -80 dBFS: below any running machine at a sensible gain
MAX_SILENT_FRACTION = 0.1  # of 1 s blocks
CLIP_LEVEL = 0.99
MAX_CLIPPED_FRACTION = 1e-3


@dataclass(frozen=True)
class Recording:
    """One continuous recording: its files (joined in order), their headers (rates and
    channel counts, as checked) and its length before tiling."""

    name: str
    files: tuple[Path, ...]
    seconds: float
    tiled: bool = False
    headers: tuple[AudioInfo, ...] = ()

    def windows(
        self, channel: int | None, window_samples: int, hop_samples: int, batch_size: int = 8
    ) -> Iterator[WindowBatch]:
        """Every window of the joined recording at SAMPLE_RATE, streamed from its files.

        A tiled recording (shorter than a window) gives one window: the recording
        repeated. Raises AudioFileError when a file changed since it was checked.
        """
        return stream_windows(
            self.files,
            window_samples=window_samples,
            hop_samples=hop_samples,
            channel=channel,
            batch_size=batch_size,
            tile_short=self.tiled,
        )


def find_audio_files(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """The files `paths` contribute (edge_asd.input_files) and one problem line per bad path.

    Logs what was left out and why: one summary line at INFO when a folder was walked or
    something was left out, each path at DEBUG.
    """
    found = walk_inputs(paths)
    if found.skipped or any(os.path.isdir(p) for p in paths):
        shown = ", ".join(str(p) for p in paths[:2])
        shown += f" and {len(paths) - 2} more" if len(paths) > 2 else ""
        log.info("%s: %s", shown, found.summary())
    for item in found.skipped:
        log.debug("skipped %s", item)
    return found.files, [str(item) for item in found.problems]


def check_file(path: Path, channel: int | None) -> tuple[float, str | None, AudioInfo | None]:
    """(seconds at SAMPLE_RATE, problem or None, its header or None when unreadable) of one
    file, read once in blocks."""
    try:
        info = audio_info(path)
    except AudioFileError as exc:
        return 0.0, str(exc), None
    if info.sample_rate < SAMPLE_RATE:
        return (
            0.0,
            (
                f"{path}: recorded at {info.sample_rate} Hz, below the model's {SAMPLE_RATE} Hz "
                "(upsampling cannot restore the missing band)"
            ),
            info,
        )
    if info.sample_rate != SAMPLE_RATE:
        log.info("%s: resampled from %d Hz to %d Hz", path, info.sample_rate, SAMPLE_RATE)
    if channel is not None and not 0 <= channel < info.channels:
        return (
            0.0,
            (f"{path}: has {info.channels} channel(s), so --channel {channel} does not exist"),
            info,
        )
    meter = level_meter()
    try:
        for block in read_recording([path], channel=channel):
            meter.feed(block)
    except AudioFileError as exc:
        return 0.0, str(exc), info
    return meter.seconds, judge_level(path, meter), info


def level_meter(sample_rate: int = SAMPLE_RATE) -> LevelMeter:
    """A meter that measures what `judge_level` needs, block by block."""
    return LevelMeter(sample_rate, silent_rms=SILENT_RMS, clip_level=CLIP_LEVEL)


def level_problem(path: Path | str, samples: np.ndarray) -> str | None:
    """Silent, partly silent or clipped, said with numbers; None when the level is fine.

    `samples`: mono float32 [n] at SAMPLE_RATE, in memory; see `judge_level` for a
    signal measured block by block.
    """
    meter = level_meter()
    meter.feed(samples)
    return judge_level(path, meter)


def judge_level(path: Path | str, meter: LevelMeter) -> str | None:
    """`level_problem` of the signal `meter` measured."""
    n_blocks, silent = meter.blocks, meter.silent_blocks
    if silent == n_blocks:
        return f"{path}: silent (RMS below {20 * math.log10(SILENT_RMS):.0f} dBFS throughout)"
    if silent / n_blocks > MAX_SILENT_FRACTION:
        return f"{path}: {silent} of its {n_blocks} seconds are silent (was the machine off?)"
    clipped = meter.clipped_fraction
    if clipped > MAX_CLIPPED_FRACTION:
        return (
            f"{path}: clipped ({100 * clipped:.2g}% of samples at full scale; "
            "lower the input gain and record again)"
        )
    return None


def plan_recordings(
    paths: Sequence[str | os.PathLike],
    *,
    window_samples: int,
    channel: int | None = None,
    skip_bad: bool = False,
) -> list[Recording]:
    """Check every file under `paths` and group them into recordings, ordered by their
    files' names (so the calibration does not depend on how folders lay them out).

    Raises AudioFileError listing every problem (one per line) unless `skip_bad`, in which
    case each bad file is logged as a warning and left out; UserError when nothing is left.
    """
    files, problems = find_audio_files(paths)
    seconds: dict[Path, float] = {}
    headers: dict[Path, AudioInfo] = {}
    for path in files:
        clip = parse_clip(path)
        if clip is not None and clip.is_anomaly:
            problems.append(f"{path}: named as an anomaly clip; calibrate on normal sound only")
            continue
        length, problem, header = check_file(path, channel)
        if problem:
            problems.append(problem)
        else:
            seconds[path], headers[path] = length, header
    recordings, short = _group(seconds, headers, window_samples / SAMPLE_RATE)
    problems.extend(short)
    if problems and not skip_bad:
        raise AudioFileError(
            f"{len(problems)} input problem(s):\n  "
            + "\n  ".join(problems)
            + "\n(fix or remove them, or pass --skip-bad-files to leave them out)"
        )
    for problem in problems:
        log.warning("left out: %s", problem)
    if not recordings:
        raise UserError("no usable normal recording in the input")
    return recordings


def _group(
    seconds: dict[Path, float], headers: dict[Path, AudioInfo], window_seconds: float
) -> tuple[list[Recording], list[str]]:
    """Recordings from checked files (their lengths and headers; joined by `rec`/`flight`),
    and too-short problems."""
    clips = {path: parse_clip(path) for path in seconds}
    named = [c for c in clips.values() if c is not None]
    key = next((k for k in RECORDING_KEYS if any(c.attribute(k) for c in named)), None)
    groups: list[tuple[str, tuple[Path, ...]]] = []
    if key is not None:
        for ident, members in group_recordings(named, key).items():
            label = f"{key} {ident[-1]}" if not ident[-1].startswith("#") else str(members[0].path)
            groups.append((label, tuple(c.path for c in members)))
    groups += [(str(path), (path,)) for path, clip in clips.items() if clip is None or key is None]
    # Folds and probes follow the recordings' order: order them by their files' names, not
    # their paths, so the same files give the same calibration however folders and links
    # lay them out (a fresh user's symlinked folder changed detector and threshold).
    groups.sort(key=lambda group: ([p.name for p in group[1]], [str(p) for p in group[1]]))
    recordings, problems = [], []
    for name, members in groups:
        total = sum(seconds[p] for p in members)
        shown = name if len(members) == 1 else f"{name} ({len(members)} files joined)"
        short = short_recording(shown, total, window_seconds)
        if short.problem:
            problems.append(short.problem)
            continue
        if short.warning:
            log.warning("%s", short.warning)
        members_headers = tuple(headers[p] for p in members)
        recordings.append(Recording(shown, members, total, short.tiled, members_headers))
    return recordings, problems
