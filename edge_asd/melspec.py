"""The log-mel front end as fixed matrices: DFT kernels, a Hann window and HTK mel filters.

The training graph turns these into a Conv1d and a matmul (no STFT operator, so the ONNX
graph imports into TensorRT); the runtime and the tests use the float64 reference below.
Values follow torchaudio's MelSpectrogram(power=2, mel_scale="htk", norm=None, center=True,
pad_mode="reflect") followed by AmplitudeToDB(stype="power"): 10 log10(max(x, 1e-10)).
"""

from __future__ import annotations

import numpy as np

from edge_asd.audio import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE

AMIN = 1e-10  # the floor under the power before log10


def n_bins(n_fft: int = N_FFT) -> int:
    """One-sided spectrum bins of an `n_fft`-point DFT."""
    return n_fft // 2 + 1


def hann_window(n_fft: int = N_FFT) -> np.ndarray:
    """The periodic Hann window (as torch.hann_window and librosa use), float64 [n_fft]."""
    n = np.arange(n_fft)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)


def dft_kernels(n_fft: int = N_FFT) -> tuple[np.ndarray, np.ndarray]:
    """Windowed real and imaginary DFT kernels, each float64 [n_bins, n_fft]."""
    k = np.arange(n_bins(n_fft))[:, None]
    n = np.arange(n_fft)[None, :]
    phase = 2.0 * np.pi * k * n / n_fft
    window = hann_window(n_fft)[None, :]
    return np.cos(phase) * window, -np.sin(phase) * window


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of hz_to_mel."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filters(
    sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS
) -> np.ndarray:
    """Triangular HTK mel filters without area normalisation, float64 [n_mels, n_bins]."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_bins(n_fft))
    mel_points = np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0), n_mels + 2)
    edges_hz = mel_to_hz(mel_points)
    widths = np.diff(edges_hz)
    slopes = edges_hz[None, :] - fft_hz[:, None]  # [n_bins, n_mels + 2]
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    return np.maximum(0.0, np.minimum(down, up)).T


def reference_logmel(
    waveform: np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, n_mels: int = N_MELS
) -> np.ndarray:
    """Float64 log-mel of a mono waveform [samples]: dB values [n_mels, frames]."""
    x = np.asarray(waveform, dtype=np.float64)
    padded = np.pad(x, n_fft // 2, mode="reflect")
    n_frames = 1 + (padded.shape[0] - n_fft) // hop_length
    starts = np.arange(n_frames) * hop_length
    frames = padded[starts[:, None] + np.arange(n_fft)[None, :]]  # [frames, n_fft]
    spectrum = np.fft.rfft(frames * hann_window(n_fft)[None, :], axis=1)
    power = spectrum.real**2 + spectrum.imag**2  # [frames, n_bins]
    mel = mel_filters(n_fft=n_fft, n_mels=n_mels) @ power.T
    return 10.0 * np.log10(np.maximum(mel, AMIN))
