"""The normal recordings a calibration reads: files checked one by one, clips joined.

Files and folders (searched recursively for .wav and .flac) are read and checked: a file
that cannot be read, is empty, silent (or silent for a good part: was the machine off?),
clipped, recorded below the model's sample rate (upsampling cannot restore the missing
band), named as an anomaly clip, or too short is a problem; every problem is reported at
once, one line per file. Files at a higher rate are resampled.

Files named in the DCASE layout with a recording attribute (`rec`, `flight`) are joined
per recording in `seg` order, as the daemon would have heard them. A recording shorter
than a window but at least half of one is tiled to a window, with a warning; anything
shorter is a problem.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_asd.audio import SAMPLE_RATE, read_audio
from edge_asd.dcase import AUDIO_SUFFIXES, group_recordings, parse_clip
from edge_asd.errors import AudioFileError, UserError

log = logging.getLogger(__name__)

RECORDING_KEYS = ("rec", "flight")
SILENT_RMS = 1e-4  # -80 dBFS: below any running machine at a sensible gain
MAX_SILENT_FRACTION = 0.1  # of 1 s blocks
CLIP_LEVEL = 0.99
MAX_CLIPPED_FRACTION = 1e-3
MIN_TILE_FRACTION = 0.5  # of a window


@dataclass(frozen=True)
class Recording:
    """One continuous recording: its files (joined in order) and its length before tiling."""

    name: str
    files: tuple[Path, ...]
    seconds: float
    tiled: bool = False

    def load(self, channel: int | None, window_samples: int) -> np.ndarray:
        """The joined mono samples, float32 [samples] at SAMPLE_RATE, tiled when `tiled`."""
        parts = [pick_channel(read_audio(path).samples, channel) for path in self.files]
        samples = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if self.tiled and len(samples) < window_samples:
            samples = np.resize(samples, window_samples)  # repeats the recording
        return np.ascontiguousarray(samples, dtype=np.float32)


def pick_channel(samples: np.ndarray, channel: int | None) -> np.ndarray:
    """Channel `channel` of float32 [frames, channels], or their mean when None."""
    if channel is None:
        return samples.mean(axis=1, dtype=np.float32)
    return samples[:, channel]


def find_audio_files(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Audio files given directly or found under folders, and one problem line per bad path."""
    files: list[Path] = []
    problems: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
            if not found:
                problems.append(f"{path}: folder holds no .wav or .flac file")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    unique = list(dict.fromkeys(files))
    return unique, problems


def check_file(path: Path, channel: int | None) -> tuple[float, str | None]:
    """(seconds, problem or None) of one file; reads it whole."""
    import soundfile

    try:
        audio = read_audio(path)
        native_rate = soundfile.info(str(path)).samplerate
    except AudioFileError as exc:
        return 0.0, str(exc)
    except (RuntimeError, OSError) as exc:
        return 0.0, f"{path}: cannot read audio ({exc})"
    if native_rate < SAMPLE_RATE:
        return 0.0, (
            f"{path}: recorded at {native_rate} Hz, below the model's {SAMPLE_RATE} Hz "
            "(upsampling cannot restore the missing band)"
        )
    if native_rate != SAMPLE_RATE:
        log.info("%s: resampled from %d Hz to %d Hz", path, native_rate, SAMPLE_RATE)
    channels = audio.samples.shape[1]
    if channel is not None and not 0 <= channel < channels:
        return 0.0, f"{path}: has {channels} channel(s), so --channel {channel} does not exist"
    samples = pick_channel(audio.samples, channel)
    return audio.seconds, level_problem(path, samples)


def level_problem(path: Path, samples: np.ndarray) -> str | None:
    """Silent, partly silent or clipped, said with numbers; None when the level is fine."""
    block = SAMPLE_RATE
    n_blocks = max(1, len(samples) // block)
    trimmed = samples[: n_blocks * block] if len(samples) >= block else samples
    rms = np.sqrt(np.mean(np.square(trimmed.reshape(n_blocks, -1), dtype=np.float64), axis=1))
    silent = int(np.sum(rms < SILENT_RMS))
    if silent == n_blocks:
        return f"{path}: silent (RMS below {20 * math.log10(SILENT_RMS):.0f} dBFS throughout)"
    if silent / n_blocks > MAX_SILENT_FRACTION:
        return f"{path}: {silent} of its {n_blocks} seconds are silent (was the machine off?)"
    clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL))
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
    """Check every file under `paths` and group them into recordings.

    Raises AudioFileError listing every problem (one per line) unless `skip_bad`, in which
    case each bad file is logged as a warning and left out; UserError when nothing is left.
    """
    files, problems = find_audio_files(paths)
    seconds: dict[Path, float] = {}
    for path in files:
        clip = parse_clip(path)
        if clip is not None and clip.is_anomaly:
            problems.append(f"{path}: named as an anomaly clip; calibrate on normal sound only")
            continue
        length, problem = check_file(path, channel)
        if problem:
            problems.append(problem)
        else:
            seconds[path] = length
    recordings, short = _group(list(seconds), seconds, window_samples / SAMPLE_RATE)
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
    files: list[Path], seconds: dict[Path, float], window_seconds: float
) -> tuple[list[Recording], list[str]]:
    """Recordings from checked files (joined by `rec`/`flight`), and too-short problems."""
    clips = {path: parse_clip(path) for path in files}
    named = [c for c in clips.values() if c is not None]
    key = next((k for k in RECORDING_KEYS if any(c.attribute(k) for c in named)), None)
    groups: list[tuple[str, tuple[Path, ...]]] = []
    if key is not None:
        for ident, members in group_recordings(named, key).items():
            label = f"{key} {ident[-1]}" if not ident[-1].startswith("#") else str(members[0].path)
            groups.append((label, tuple(c.path for c in members)))
    groups += [(str(path), (path,)) for path, clip in clips.items() if clip is None or key is None]
    recordings, problems = [], []
    for name, members in groups:
        total = sum(seconds[p] for p in members)
        shown = name if len(members) == 1 else f"{name} ({len(members)} files joined)"
        if total >= window_seconds:
            recordings.append(Recording(shown, members, total))
        elif total >= MIN_TILE_FRACTION * window_seconds:
            log.warning(
                "%s: %.1f s is shorter than a %.0f s window; tiled to one window",
                shown,
                total,
                window_seconds,
            )
            recordings.append(Recording(shown, members, total, tiled=True))
        else:
            problems.append(
                f"{shown}: {total:.1f} s is too short (a window is {window_seconds:.0f} s; "
                f"at least {MIN_TILE_FRACTION * window_seconds:.0f} s can be tiled)"
            )
    return recordings, problems
