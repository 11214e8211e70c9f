"""What the scorers see of a window: GWRP pooling of the log-mel and the window's level."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.engines import open_engine
from edge_asd.engines.base import EngineOutput
from edge_asd.scoring.features import (
    MEAN_POOLING,
    N_LEVEL_BANDS,
    POOLING_R,
    WindowFeatures,
    pool,
    window_features,
)
from edge_asd.synth import render_clip


def test_pooling_is_the_max_at_r0_the_mean_at_r1_and_a_ranked_average_between():
    logmel = np.random.default_rng(0).normal(size=(3, 4, 7)).astype(np.float32)
    pooled = pool(logmel, (0.0, 0.5, 1.0))
    assert pooled.shape == (3, 3, 4) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled[:, 0], logmel.max(axis=-1), rtol=1e-6)
    np.testing.assert_allclose(pooled[:, 2], logmel.mean(axis=-1), rtol=1e-5, atol=1e-6)
    ranked = sorted(logmel[1, 2], reverse=True)
    weights = [0.5**k for k in range(len(ranked))]
    direct = sum(w * v for w, v in zip(weights, ranked, strict=True)) / sum(weights)
    assert pooled[1, 1, 2] == pytest.approx(direct, rel=1e-5)


def test_a_click_lifts_max_pooling_far_more_than_mean_pooling():
    logmel = np.zeros((1, 8, 100), np.float32)
    clicked = logmel.copy()
    clicked[:, :, 40] += 30.0  # one loud frame in every band
    change = pool(clicked) - pool(logmel)
    assert change[0, POOLING_R.index(0.0)].min() == pytest.approx(30.0)
    assert change[0, MEAN_POOLING].max() == pytest.approx(0.3, rel=1e-4)


def test_the_level_is_the_mean_log_mel_overall_and_per_band_group():
    rng = np.random.default_rng(1)
    logmel = rng.normal(size=(2, 16, 20)).astype(np.float32) + np.arange(16)[:, None]
    features = WindowFeatures(np.zeros((2, 3), np.float32), np.zeros((2, 2)), pool(logmel))
    np.testing.assert_allclose(features.level_db, logmel.mean(axis=(1, 2)), rtol=1e-5)
    assert features.band_levels_db.shape == (2, N_LEVEL_BANDS)
    np.testing.assert_allclose(
        features.band_levels_db[:, 0], logmel[:, :2].mean(axis=(1, 2)), rtol=1e-5, atol=1e-5
    )


def test_a_gain_change_shifts_the_level_by_as_many_db(tiny_model):
    engine = open_engine(tiny_model, threads=1)
    try:
        window = render_clip("fan", 0, "source", 10.0, seed=5)[: engine.info.window_samples]
        batch = np.stack([window, window * 10 ** (6 / 20), window * 10 ** (-3 / 20)])
        features = window_features(engine.infer(batch.astype(np.float32)))
    finally:
        engine.close()
    offsets = features.level_db - features.level_db[0]
    np.testing.assert_allclose(offsets, [0.0, 6.0, -3.0], atol=0.01)
    np.testing.assert_allclose(
        features.band_levels_db[1] - features.band_levels_db[0], 6.0, atol=0.05
    )


def test_rows_can_be_taken_and_joined_back():
    rng = np.random.default_rng(2)
    features = WindowFeatures(
        rng.normal(size=(5, 3)).astype(np.float32),
        rng.normal(size=(5, 2)).astype(np.float32),
        rng.normal(size=(5, len(POOLING_R), 4)).astype(np.float32),
    )
    parts = [features.take(slice(0, 2)), features.take(np.array([2, 3, 4]))]
    joined = WindowFeatures.concat(parts)
    for name in ("embedding", "logits", "pooled"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(features, name))
    assert len(features.take(np.array([True, False, True, False, False]))) == 2
    with pytest.raises(ValueError, match="no features"):
        WindowFeatures.concat([])


def test_engine_outputs_without_a_logmel_are_refused():
    with pytest.raises(ValueError, match="logmel"):
        window_features(EngineOutput(np.zeros((1, 4)), np.zeros((1, 2))))
