"""Replay of a WAV/FLAC file, all channels kept, resampled to the model rate when needed."""

from __future__ import annotations

import math
import os

import numpy as np

from edge_asd.audio import SAMPLE_RATE
from edge_asd.capture.producer import DEFAULT_BLOCK_SECONDS, DEFAULT_CAPACITY_SECONDS, BlockSource
from edge_asd.capture.source import REALTIME
from edge_asd.errors import AudioFileError


class FileSource(BlockSource):
    """Frames of an audio file, replayed at the sample rate (REALTIME) or on demand (FAST).

    With `loop`, the file restarts at its end and the source never finishes. The frames
    are those `edge_asd.audio.read_audio` returns for the same file (float32, resampled
    with soxr's HQ filter when the file's rate differs), so offline and live windows agree.
    Raises AudioFileError, naming the file, when it cannot be opened or holds no samples.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        pacing: str = REALTIME,
        loop: bool = False,
        sample_rate: int = SAMPLE_RATE,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
        capacity_seconds: float = DEFAULT_CAPACITY_SECONDS,
    ) -> None:
        import soundfile

        self.path = os.fspath(path)
        self.loop = loop
        if os.path.isdir(self.path):
            raise AudioFileError(f"{self.path}: is a directory, not an audio file")
        try:
            self._file = soundfile.SoundFile(self.path)
        except (RuntimeError, soundfile.LibsndfileError, OSError) as exc:
            raise AudioFileError(f"{self.path}: cannot read audio ({exc})") from None
        if self._file.frames == 0:
            self._file.close()
            raise AudioFileError(f"{self.path}: holds no samples")
        self.file_rate = int(self._file.samplerate)
        channels = int(self._file.channels)
        super().__init__(channels, sample_rate, pacing, block_seconds, capacity_seconds)
        self._resampler = None
        if self.file_rate != sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(
                self.file_rate, sample_rate, channels, dtype="float32", quality="HQ"
            )
        self._flushed = False

    def _next_block(self, n_frames: int) -> np.ndarray | None:
        if self._flushed:
            return None
        in_frames = n_frames
        if self._resampler is not None:
            in_frames = math.ceil(n_frames * self.file_rate / self.sample_rate)
        block = self._read(in_frames)
        if block.shape[0] == 0 and self.loop:
            self._file.seek(0)
            block = self._read(in_frames)
        if block.shape[0] == 0:  # the end: the resampler still holds its filter's delay
            self._flushed = True
            if self._resampler is None:
                return None
            return self._resampler.resample_chunk(block, last=True)
        if self._resampler is not None:
            return self._resampler.resample_chunk(block)
        return block

    def _read(self, n_frames: int) -> np.ndarray:
        import soundfile

        try:
            block = self._file.read(n_frames, dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError, OSError) as exc:
            raise AudioFileError(f"{self.path}: cannot read audio ({exc})") from None
        if not np.isfinite(block).all():
            raise AudioFileError(f"{self.path}: holds NaN or infinite samples")
        return block

    def _end_reason(self) -> str:
        return f"end of file {self.path} after {self._seconds_written():.1f} s"

    def _close(self) -> None:
        self._file.close()
