"""The page's spectrogram: the model's log-mel, pooled for a canvas, loudest band on top."""

from __future__ import annotations

import numpy as np

from edge_asd.audio import SAMPLE_RATE
from edge_asd.web.views import spectrogram


def test_a_tone_is_brightest_in_its_own_band():
    seconds = 10.0
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    noise = np.random.default_rng(0).normal(0, 1e-3, t.size)
    picture = spectrogram((0.5 * np.sin(2 * np.pi * 1000.0 * t) + noise).astype(np.float32),
                          SAMPLE_RATE)  # fmt: skip
    values = np.asarray(picture["values"])
    assert values.shape == (64, 156) and values.dtype.kind == "i"
    assert values.min() >= 0 and values.max() == 255
    assert picture["seconds"] == seconds and picture["max_hz"] == SAMPLE_RATE / 2
    loudest_band = int(np.argmax(values.mean(axis=1)))
    # 1 kHz on the HTK mel scale of 0..8 kHz in 64 bands: band 1000 mel / 2840 mel * 64
    assert abs(loudest_band - 1000 / 2840 * 64) <= 1.5
