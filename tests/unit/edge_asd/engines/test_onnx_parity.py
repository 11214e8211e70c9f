"""The onnxruntime engine gives the exported model's torch outputs (and therefore scores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from edge_asd.engines import open_engine
from edge_asd.scoring.knn import knn_scores
from edge_asd.scoring.section import section_scores

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def torch_model_and_windows(exported_model: Path):
    """The torch model `exported_model` was exported from, and windows to run both on."""
    from train.synthetic import random_model, synthetic_batch

    recorded = yaml.safe_load((exported_model / "model.yaml").read_text())
    labels = tuple(recorded["labels"])
    model = random_model(labels, seed=recorded["trained_on"]["seed"])
    windows = synthetic_batch([*labels, labels[0]], recorded["window_samples"], seed=11).numpy()
    windows[-1] = np.random.default_rng(0).normal(scale=0.1, size=windows.shape[1])
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(windows))]
    return windows, dict(zip(("embedding", "logits", "logmel"), expected, strict=True))


def assert_close(actual: np.ndarray, expected: np.ndarray, rel_to_range: float) -> None:
    """Float32 graph vs float32 torch: equal up to a small fraction of the output's range."""
    np.testing.assert_allclose(
        actual, expected, rtol=1e-4, atol=rel_to_range * np.abs(expected).max()
    )


def test_onnxruntime_outputs_match_torch(exported_model, torch_model_and_windows):
    windows, expected = torch_model_and_windows
    engine = open_engine(exported_model, threads=2)
    out = engine.infer(windows)
    assert_close(out.embedding, expected["embedding"], 1e-4)
    assert_close(out.logits, expected["logits"], 1e-4)
    assert_close(out.logmel, expected["logmel"], 1e-4)


def test_scores_from_onnxruntime_match_scores_from_torch(exported_model, torch_model_and_windows):
    windows, expected = torch_model_and_windows
    out = open_engine(exported_model, threads=2).infer(windows)
    np.testing.assert_allclose(
        section_scores(out.logits, [0]), section_scores(expected["logits"], [0]), atol=1e-3
    )
    bank = expected["embedding"][:2]
    np.testing.assert_allclose(
        knn_scores(out.embedding, bank), knn_scores(expected["embedding"], bank), atol=1e-5
    )


def test_each_window_is_scored_alone_whatever_the_batch(exported_model, torch_model_and_windows):
    windows, expected = torch_model_and_windows
    engine = open_engine(exported_model, threads=2)
    one_by_one = np.concatenate([engine.infer(windows[i : i + 1]).logits for i in range(4)])
    assert_close(one_by_one, expected["logits"], 1e-4)
