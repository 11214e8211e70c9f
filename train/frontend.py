"""The model's front ends: the log-mel as fixed convolutions, and the learned Tgram.

Both take a waveform batch and return [batch, n_mels, frames] with frames derived from
the window (edge_asd.audio.n_frames). The log-mel is a Conv1d with fixed windowed DFT
kernels plus a mel matrix (edge_asd.melspec), not torch.stft, so the exported graph holds
only operators TensorRT imports (Pad, Conv, Mul, Add, MatMul, Max, Log).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edge_asd.audio import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, n_frames
from edge_asd.melspec import AMIN, dft_kernels, mel_filters, n_bins


class LogMel(nn.Module):
    """Waveform [batch, samples] -> log-mel in dB [batch, n_mels, 1 + samples // hop].

    Centred frames (reflect padding of n_fft // 2 on each side), periodic Hann window,
    power spectrum, HTK mel filters without normalisation, 10 log10(max(power, AMIN)):
    the values of edge_asd.melspec.reference_logmel, in float32.
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        n_mels: int = N_MELS,
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_bins = n_bins(n_fft)
        real, imag = dft_kernels(n_fft)
        # [2 * n_bins, 1, n_fft]: one convolution gives the real and imaginary parts
        kernels = torch.from_numpy(np.concatenate([real, imag])).float().unsqueeze(1)
        self.register_buffer("dft_kernels", kernels, persistent=False)
        mel = torch.tensor(mel_filters(sample_rate, n_fft, n_mels), dtype=torch.float32)
        self.register_buffer("mel_matrix", mel, persistent=False)  # [n_mels, n_bins]

    def power_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel power (before dB) [batch, n_mels, frames] of waveform [batch, samples]."""
        pad = self.n_fft // 2
        padded = F.pad(waveform.unsqueeze(1), (pad, pad), mode="reflect")
        spectrum = F.conv1d(padded, self.dft_kernels, stride=self.hop_length)
        real, imag = spectrum[:, : self.n_bins], spectrum[:, self.n_bins : 2 * self.n_bins]
        power = real * real + imag * imag  # [batch, n_bins, frames]
        return torch.matmul(self.mel_matrix, power)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        power = self.power_mel(waveform)
        # log10 as ln * constant: one Log node, no Div by ln(10) computed in the graph
        return torch.log(torch.clamp(power, min=AMIN)) * (10.0 / math.log(10.0))


class Tgram(nn.Module):
    """The temporal branch of ST-gram: waveform [batch, samples] -> [batch, n_mels, frames].

    Conv1d(1, n_mels, n_fft, stride hop, padding n_fft // 2), then `n_layers` x
    [LayerNorm over time, LeakyReLU(0.2), Conv1d(n_mels, n_mels, 3, padding 1)]
    (Liu et al. 2022, STgram-MFN). LayerNorm over time fixes the window length.
    """

    def __init__(
        self,
        window_samples: int,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        n_mels: int = N_MELS,
        n_layers: int = 3,
    ) -> None:
        super().__init__()
        frames = n_frames(window_samples, hop_length)
        self.extractor = nn.Conv1d(
            1, n_mels, n_fft, stride=hop_length, padding=n_fft // 2, bias=False
        )
        self.encoder = nn.Sequential(
            *[
                nn.Sequential(
                    nn.LayerNorm(frames),
                    nn.LeakyReLU(0.2),
                    nn.Conv1d(n_mels, n_mels, 3, padding=1, bias=False),
                )
                for _ in range(n_layers)
            ]
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.extractor(waveform.unsqueeze(1)))
