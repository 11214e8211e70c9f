"""Models made from generated machine sound (edge_asd.synth), for tests and the demo.

- `random_model` / `export_random_model`: random weights, batch-norm statistics measured on
  generated sound of each label's machine, so outputs vary with the input as a trained
  model's do (fresh statistics would squash the embedding towards zero).
- `train_on_synthetic`: write a generated DCASE tree and fit briefly on it (see fit.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge_asd.audio import SAMPLE_RATE
from edge_asd.synth import render_clip, write_dcase_tree
from train.config import TrainConfig
from train.export import export_model_dir
from train.fit import FitResult, fit
from train.model import ASDModel, ModelConfig

DEFAULT_LABELS = ("fan/section_00", "fan/section_01", "fan/section_02")


def label_machine(label: str) -> tuple[str, int]:
    """(machine type, section number) of a label `<type>/section_XX[/...]`."""
    machine_type, section = label.split("/")[:2]
    return machine_type, int(section.removeprefix("section_"))


def synthetic_batch(labels: Sequence[str], window_samples: int, seed: int = 0) -> torch.Tensor:
    """One generated window per label, float32 [len(labels), window_samples]."""
    seconds = window_samples / SAMPLE_RATE
    clips = [
        render_clip(*label_machine(label), "source", seconds, seed=seed + i)
        for i, label in enumerate(labels)
    ]
    return torch.from_numpy(np.stack(clips)[:, :window_samples])


@torch.no_grad()
def calibrate_batch_norm(model: nn.Module, waveforms: torch.Tensor) -> None:
    """Set every batch-norm's running statistics to those of `waveforms` (one pass)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: one pass gives the batch's statistics
    was_training = model.training
    model.train()
    model(waveforms)
    model.train(was_training)
    for norm, momentum in zip(norms, saved, strict=True):
        norm.momentum = momentum


def random_model(
    labels: Sequence[str] = DEFAULT_LABELS, config: ModelConfig | None = None, seed: int = 0
) -> ASDModel:
    """An untrained model (eval mode) with batch-norm statistics from generated sound."""
    config = config or ModelConfig()
    torch.manual_seed(seed)
    model = ASDModel(config, len(labels))
    repeats = max(1, 6 // len(labels))  # at least 6 windows: batch norm needs a spread
    waveforms = synthetic_batch(list(labels) * repeats, config.window_samples, seed)
    calibrate_batch_norm(model, waveforms)
    return model.eval()


def export_random_model(
    out_dir: str | os.PathLike,
    labels: Sequence[str] = DEFAULT_LABELS,
    config: ModelConfig | None = None,
    seed: int = 0,
) -> Path:
    """Export `random_model(labels, config, seed)` as a model directory; returns it."""
    model = random_model(labels, config, seed)
    trained_on = {"data": "none: random weights", "seed": seed}
    return export_model_dir(model, labels, out_dir, "section", trained_on)


# Enough for the knn scorer to put every kind of generated fault above the normal clips
# of the source domain (tests/unit/train/test_synthetic.py checks it) in about a minute on
# two CPU cores. A higher learning rate than the report's 1e-4 (12 epochs, not 200); MixUp
# keeps the embedding from collapsing onto the (easily told apart) section centres.
QUICK_CONFIG = TrainConfig(
    labels="type_section",
    epochs=12,
    batch_size=8,
    learning_rate=1e-3,
    mixup_probability=0.5,
    mixup_alpha=0.2,
)


def write_synthetic_tree(
    root: str | os.PathLike,
    machine_types: Sequence[str] = ("fan",),
    sections: Sequence[int] = (0, 1, 2),
    train_per_section: int = 10,
    test_per_domain: int = 4,
) -> Path:
    """A generated DCASE 2022 tree (edge_asd.synth.write_dcase_tree) at `root`; returns it.

    With 4 test clips per domain, every fault kind of edge_asd.synth.FAULTS is there once.
    """
    write_dcase_tree(
        root, tuple(machine_types), tuple(sections), train_per_section, test_per_domain
    )
    return Path(root)


def train_on_synthetic(
    work_dir: str | os.PathLike,
    machine_types: Sequence[str] = ("fan",),
    sections: Sequence[int] = (0, 1, 2),
    config: TrainConfig = QUICK_CONFIG,
    progress: bool = False,
    labels: str = "type_section",
) -> FitResult:
    """Write WORK/data (a generated tree) and fit a model into WORK/run; returns the result.

    `result.model_dir` is the exported model (WORK/run/model), one model across types. The
    labels are `<type>/section_XX` for every generated section (`labels="type_section"`,
    the default), or with `labels="section_attribute"` one per section and domain's speed
    attribute: `<type>/section_XX/speed_100` (source) and `<type>/section_XX/speed_118`
    (target). (`labels="section"` with several types would train one model per type:
    use it with one type only.)
    """
    work_dir = Path(work_dir)
    data = write_synthetic_tree(work_dir / "data", machine_types, sections)
    config = config.with_overrides(labels=labels)
    (result,) = fit(data, work_dir / "run", config, list(machine_types), progress=progress)
    return result
