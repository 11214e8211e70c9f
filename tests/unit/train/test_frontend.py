"""The graph's log-mel (fixed DFT convolution + mel matrix) matches the references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge_asd.audio import (
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    WINDOW_FRAMES,
    WINDOW_SAMPLES,
    read_audio,
)
from edge_asd.melspec import AMIN, reference_logmel
from edge_asd.synth import Fault, render_clip
from train.frontend import LogMel, Tgram

# float32 convolution against the float64 reference: measured at most 1e-4 dB on these
# signals; 0.01 dB leaves room for other BLAS builds. Compared where the reference power
# is at least 20 dB above the floor (AMIN = -100 dB), where float32 rounding is not the
# whole value.
TOLERANCE_DB = 0.01
FLOOR_DB = 10.0 * np.log10(AMIN)
COMPARED_ABOVE_DB = FLOOR_DB + 20.0


def graph_logmel(x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return LogMel()(torch.from_numpy(x[None].astype(np.float32)))[0].numpy()


def librosa_logmel(x: np.ndarray) -> np.ndarray:
    librosa = pytest.importorskip("librosa")
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
    return 10.0 * np.log10(np.maximum(power, AMIN))


def assert_close_db(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.shape == reference.shape
    compared = reference > COMPARED_ABOVE_DB
    assert compared.mean() > 0.9, "the signal is too quiet to test anything"
    worst = np.abs(ours - reference)[compared].max()
    assert worst < TOLERANCE_DB, f"log-mel differs by {worst:.4f} dB"


def generated_signals() -> dict[str, np.ndarray]:
    impacts = (Fault("impacts", 0.0, 11.0),)
    return {
        "machine": render_clip("fan", 0, "source", 10.0, seed=1),
        "faulty machine": render_clip("pump", 1, "target", 10.0, seed=2, faults=impacts),
        "loud noise": np.clip(np.random.default_rng(3).standard_normal(WINDOW_SAMPLES), -1, 1),
    }


@pytest.mark.parametrize("name", ["machine", "faulty machine", "loud noise"])
def test_logmel_matches_the_reference_and_librosa_on_generated_sound(name):
    x = generated_signals()[name].astype(np.float32)
    ours = graph_logmel(x)
    assert ours.shape == (N_MELS, WINDOW_FRAMES)
    assert_close_db(ours, reference_logmel(x))
    assert_close_db(ours, librosa_logmel(x))


@pytest.mark.data
def test_logmel_matches_the_reference_and_librosa_on_real_recordings(shared_data):
    paths = [
        *sorted((shared_data / "dcase2020_fan" / "test").glob("*.wav"))[:1],
        *sorted((shared_data / "sensiml_fan" / "train").glob("*.wav"))[:1],
        *sorted((shared_data / "uav_propeller" / "test").glob("*.wav"))[:1],
    ]
    if not paths:
        pytest.skip(f"no recordings under {shared_data}")
    for path in paths:
        x = read_audio(path).mono()[:WINDOW_SAMPLES]
        ours = graph_logmel(x)
        assert_close_db(ours, reference_logmel(x))
        assert_close_db(ours, librosa_logmel(x))


def test_silence_sits_on_the_floor_not_at_minus_infinity():
    ours = graph_logmel(np.zeros(WINDOW_SAMPLES, dtype=np.float32))
    np.testing.assert_allclose(ours, FLOOR_DB, atol=1e-3)


def test_tgram_gives_the_logmel_shape_for_any_window_length():
    for seconds in (10, 5):
        window_samples = SAMPLE_RATE * seconds
        waveform = torch.randn(2, window_samples)
        with torch.no_grad():
            t = Tgram(window_samples)(waveform)
            m = LogMel()(waveform)
        assert t.shape == m.shape == (2, N_MELS, 1 + window_samples // HOP_LENGTH)
