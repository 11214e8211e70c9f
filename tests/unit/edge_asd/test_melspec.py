"""The float64 log-mel reference agrees with librosa (the golden reference) and the contract."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.audio import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, WINDOW_FRAMES, WINDOW_SAMPLES
from edge_asd.melspec import mel_filters, reference_logmel
from edge_asd.synth import render_clip

librosa = pytest.importorskip("librosa")

# Where librosa's power is far above the floor, float64 against float32 agree to 1e-3 dB.
TOLERANCE_DB = 1e-3


def librosa_logmel(x: np.ndarray) -> np.ndarray:
    power = librosa.feature.melspectrogram(
        y=x.astype(np.float64),
        sr=SAMPLE_RATE,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        n_mels=N_MELS,
        htk=True,
        norm=None,
        center=True,
        pad_mode="reflect",
        power=2.0,
    )
    return 10.0 * np.log10(np.maximum(power, 1e-10))


def test_window_has_313_frames():
    assert WINDOW_SAMPLES == 160000
    assert WINDOW_FRAMES == 313


def test_mel_filters_match_librosa_htk_without_norm():
    ours = mel_filters()
    theirs = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, htk=True, norm=None)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_reference_logmel_matches_librosa_on_generated_sound():
    x = render_clip("fan", 0, "source", 2.0, seed=1)
    ours = reference_logmel(x)
    assert ours.shape == (N_MELS, 1 + len(x) // HOP_LENGTH)
    np.testing.assert_allclose(ours, librosa_logmel(x), atol=TOLERANCE_DB)


def test_reference_logmel_matches_librosa_on_a_real_recording(shared_data):
    from edge_asd.audio import read_audio

    clips = sorted((shared_data / "dcase2020_fan" / "test").glob("*.wav"))
    if not clips:
        pytest.skip(f"no dcase2020_fan clips under {shared_data}")
    x = read_audio(clips[0]).mono()[: 3 * SAMPLE_RATE]
    np.testing.assert_allclose(reference_logmel(x), librosa_logmel(x), atol=TOLERANCE_DB)
