"""Model fixtures.

- `tiny_model`: the committed tiny bundle (tests/fixtures/tiny_model, made by
  tests/fixtures/make_tiny_model.py): the real model contract and its split, tiny sizes,
  random weights. No torch needed: the fixture for every runtime test that needs "a model"
  for plumbing (engines, capture, daemon, MQTT, config, bench).
- `exported_model` (random weights) and `trained_model` (trained on generated sound): the
  real architecture, made once per session by the training package, so they need torch
  (the `train` extra; without it they skip). For export, parity and detection tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TINY_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_model"
EXPORTED_LABELS = ("fan/section_00", "fan/section_01", "fan/section_02")
TRAINED_MACHINE_TYPES = ("fan",)
TRAINED_SECTIONS = (0, 1, 2)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the committed tiny model directory (model.onnx, model.yaml, its split).

    Labels fan/section_00..02, 10 s windows at 16 kHz, front end n_fft 512 / hop 256 /
    32 mels, 32-dimensional embedding. A copy, so that no test changes the committed files.
    """
    target = tmp_path_factory.mktemp("tiny_model") / "model"
    shutil.copytree(TINY_MODEL, target)
    return target


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight ST-gram + MobileFaceNet model directory, labels fan/section_00..02."""
    pytest.importorskip("torch", reason="the model fixtures need the `train` extra (torch)")
    from train.synthetic import export_random_model

    return export_random_model(tmp_path_factory.mktemp("exported_model"), EXPORTED_LABELS)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory trained briefly on generated machine sound (edge_asd.synth).

    Labels fan/section_00..02, 10 s windows; the generated DCASE tree it was trained on
    (train/ normals, test/ normals and faults) is `trained_model.parent.parent / "data"`.
    Faults injected by edge_asd.synth score above normal windows of the same machine
    (checked in tests/unit/train/test_synthetic.py). About a minute on two CPU cores.
    """
    pytest.importorskip("torch", reason="the model fixtures need the `train` extra (torch)")
    from train.synthetic import train_on_synthetic

    work = tmp_path_factory.mktemp("trained_model")
    result = train_on_synthetic(work, TRAINED_MACHINE_TYPES, TRAINED_SECTIONS)
    return result.model_dir
