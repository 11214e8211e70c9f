"""A run directory's files: the checkpoint written every epoch, the log, the config.

RUN/config.yaml       the effective recipe (after command-line overrides)
RUN/checkpoint.pt     the latest epoch: weights, optimiser, labels, epoch (for --resume)
RUN/best.pt           weights of the lowest held-out loss (select: validation_loss)
RUN/train_log.csv     epoch, train loss, held-out loss, seconds
RUN/model/            the export: model.onnx + model.yaml
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge_asd.errors import UserError

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
CONFIG = "config.yaml"
LOG = "train_log.csv"
MODEL_DIR = "model"


@dataclass
class Checkpoint:
    """What `--resume` and `export` need from a run."""

    epoch: int  # epochs completed
    model_state: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    labels: list[str]
    label_scheme: str
    config: dict[str, Any]
    trained_on: dict[str, Any]
    best_loss: float | None = None
    best_epoch: int | None = None


def save(checkpoint: Checkpoint, path: str | os.PathLike) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    import torch  # here: evaluation reads this module's names without needing torch

    path = Path(path)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(checkpoint.__dict__, tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> Checkpoint:
    """Raises UserError naming the file when it is missing or not a checkpoint."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint (did `edge-asd-train fit` run here?)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
        return Checkpoint(**data)
    except (OSError, RuntimeError, TypeError, EOFError) as exc:
        raise UserError(f"{path}: not a readable checkpoint ({exc})") from None


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    (run_dir / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))


def append_log(run_dir: Path, epoch: int, loss: float, held_loss: float | None, seconds: float):
    path = run_dir / LOG
    new = not path.exists()
    with path.open("a") as log:
        if new:
            log.write("epoch,train_loss,heldout_loss,seconds\n")
        held = "" if held_loss is None else f"{held_loss:.6f}"
        log.write(f"{epoch},{loss:.6f},{held},{seconds:.1f}\n")
