"""Audio constants of the model contract, and reading audio files.

Every size the model and the runtime share is declared or derived here, once: the sample
rate, the 10 s window, the STFT frame and hop, and the number of frames per window.

A file is read whole (`read_audio`, for short clips) or block by block (`read_blocks`,
for recordings of any length: memory bounded by the block); both give the same samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edge_asd.errors import AudioFileError

SAMPLE_RATE = 16000
WINDOW_SECONDS = 10
N_FFT = 1024
HOP_LENGTH = 512
N_MELS = 128
EMBEDDING_DIM = 128


def exact_div(numerator: int, denominator: int) -> int:
    """Integer division that fails loudly when the numbers do not divide evenly."""
    if numerator % denominator != 0:
        raise ValueError(f"{numerator} is not a multiple of {denominator}")
    return numerator // denominator


def n_frames(window_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """STFT frames of a centred (reflect-padded) transform over `window_samples`."""
    return 1 + window_samples // hop_length


WINDOW_SAMPLES = SAMPLE_RATE * WINDOW_SECONDS  # 160000
WINDOW_FRAMES = n_frames(WINDOW_SAMPLES)  # 313
READ_BLOCK_SECONDS = 1.0  # of the file's own rate: 64 kB a channel at 16 kHz


@dataclass(frozen=True)
class Audio:
    """Decoded audio: `samples` float32 [frames, channels] in [-1, 1] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int
    path: str = ""

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.sample_rate

    def mono(self) -> np.ndarray:
        """The channel mean as float32 [frames]."""
        return self.samples.mean(axis=1, dtype=np.float32)


def read_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> Audio:
    """Read a WAV/FLAC file as float32, resampled to `sample_rate` when it differs.

    Raises AudioFileError, naming the file, when it is missing, unreadable, empty or
    holds non-finite samples.
    """
    import soundfile  # imported here: the daemon's start-up does not need it

    path = _existing_file(path)
    try:
        samples, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise AudioFileError(f"{path}: no such file") from None
    except (RuntimeError, soundfile.LibsndfileError, OSError) as exc:
        raise AudioFileError(f"{path}: cannot read audio ({exc})") from None
    if samples.shape[0] == 0:
        raise AudioFileError(f"{path}: holds no samples")
    if not np.isfinite(samples).all():
        raise AudioFileError(f"{path}: holds NaN or infinite samples")
    if file_rate != sample_rate:
        samples = resample(samples, file_rate, sample_rate)
    return Audio(samples=samples, sample_rate=sample_rate, path=path)


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: `frames` at its own `sample_rate`, `channels`."""

    path: str
    frames: int
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """A file's header, without reading its samples.

    Raises AudioFileError, naming the file, when it is missing, unreadable or empty.
    """
    import soundfile

    path = _existing_file(path)
    try:
        info = soundfile.info(path)
    except (RuntimeError, soundfile.LibsndfileError, OSError) as exc:
        raise AudioFileError(f"{path}: cannot read audio ({exc})") from None
    if info.frames <= 0:
        raise AudioFileError(f"{path}: holds no samples")
    return AudioInfo(path, int(info.frames), int(info.samplerate), int(info.channels))


def read_blocks(
    path: str | os.PathLike,
    *,
    channel: int | None = None,
    sample_rate: int = SAMPLE_RATE,
    block_seconds: float = READ_BLOCK_SECONDS,
) -> Iterator[np.ndarray]:
    """A file's samples in blocks: fresh float32 [n] arrays at `sample_rate`, in order.

    One channel (`channel`, from 0) or the channel mean when None, so that the blocks
    joined are `read_audio(path).samples[:, channel]` (or `.mono()`). A file at another
    rate goes through one streaming soxr HQ resampler, flushed at the file's end; the
    blocks then have varying lengths. Memory is bounded by `block_seconds`, never by the
    file. Raises AudioFileError, naming the file, when it is missing, unreadable, empty,
    lacks `channel` or holds non-finite samples (found when that block is reached).
    """
    import soundfile

    info = audio_info(path)
    path = info.path
    if channel is not None and not 0 <= channel < info.channels:
        raise AudioFileError(
            f"{path}: has {info.channels} channel(s), no channel {channel} (they count from 0)"
        )
    block_frames = max(1, round(block_seconds * info.sample_rate))
    resampler = None
    if info.sample_rate != sample_rate:
        import soxr

        resampler = soxr.ResampleStream(
            info.sample_rate, sample_rate, 1, dtype="float32", quality="HQ"
        )
    try:
        with soundfile.SoundFile(path) as file:
            while True:
                frames = file.read(block_frames, dtype="float32", always_2d=True)
                if not np.isfinite(frames).all():
                    raise AudioFileError(f"{path}: holds NaN or infinite samples")
                block = _pick_channel(frames, channel)
                last = len(block) < block_frames  # a short read is the file's end
                if resampler is not None:
                    block = resampler.resample_chunk(block, last=last)
                if len(block):
                    yield block
                if last:
                    return
    except (RuntimeError, soundfile.LibsndfileError, OSError) as exc:
        raise AudioFileError(f"{path}: cannot read audio ({exc})") from None


def _pick_channel(frames: np.ndarray, channel: int | None) -> np.ndarray:
    """Channel `channel` of float32 [frames, channels] (the mean when None), contiguous."""
    if channel is None:
        return frames.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(frames[:, channel])


def _existing_file(path: str | os.PathLike) -> str:
    """`path` as a string; AudioFileError when it is a folder or does not exist."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise AudioFileError(f"{path}: is a directory, not an audio file")
    if not os.path.exists(path):  # libsndfile says only "System error" for a missing file
        raise AudioFileError(f"{path}: no such file")
    return path


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 [frames, channels] (or [frames]) with soxr's high quality filter."""
    import soxr

    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32)
