"""Audio constants of the model contract, and reading audio files.

Every size the model and the runtime share is declared or derived here, once: the sample
rate, the 10 s window, the STFT frame and hop, and the number of frames per window.
"""

from __future__ import annotations

import os
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

    path = os.fspath(path)
    if os.path.isdir(path):
        raise AudioFileError(f"{path}: is a directory, not an audio file")
    if not os.path.exists(path):  # libsndfile says only "System error" for a missing file
        raise AudioFileError(f"{path}: no such file")
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


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 [frames, channels] (or [frames]) with soxr's high quality filter."""
    import soxr

    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32)
