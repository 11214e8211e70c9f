"""Model fixtures: `exported_model` (random weights) and `trained_model` (generated data).

Both are model directories (model.onnx + model.yaml) made once per session by the
training package, so they need torch (the `train` extra); without it they skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

EXPORTED_LABELS = ("fan/section_00", "fan/section_01", "fan/section_02")


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight ST-gram + MobileFaceNet model directory, labels fan/section_00..02."""
    pytest.importorskip("torch", reason="the model fixtures need the `train` extra (torch)")
    from train.synthetic import export_random_model

    return export_random_model(tmp_path_factory.mktemp("exported_model"), EXPORTED_LABELS)
