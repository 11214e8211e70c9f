"""`fit`: train on the normal `train/` clips of a DCASE tree, checkpoint every epoch, export.

Adam, ArcFace over metadata labels (and, with fewer than 2 of them, over self-supervised
pseudo-labels: train/pseudo_labels.py), MixUp; progress bar with the running loss. A run
whose first epoch leaves the loss at exactly 0 or the weights unchanged stops with an
error rather than export an untrained model. The exported epoch is the last one, or the
one with the lowest loss on held-out *normal training* clips (`select: validation_loss`):
test clips and their labels are never looked at, unlike the original STgram-MFN code,
which picks the epoch with the best test AUC.
With the `section` scheme and several machine types, one model per type is trained into
RUN/<type>/ (the report's recipe); otherwise one model into RUN/.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from edge_asd.errors import UserError
from train import checkpoint as ckpt
from train import distributed
from train import pseudo_labels as pseudo
from train.config import TrainConfig
from train.dataset import (
    Recording,
    WindowDataset,
    resolve_machine_types,
    scan_recordings,
    split_validation,
)
from train.export import export_model_dir
from train.mixup import mixup
from train.model import ASDModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitResult:
    """One trained model: its run directory, the export, and its last losses."""

    run_dir: Path
    model_dir: Path
    machine_types: tuple[str, ...]
    epochs: int
    train_loss: float | None
    heldout_loss: float | None


def fit(
    data_root: str | Path,
    run_dir: str | Path,
    config: TrainConfig,
    machine_types: Sequence[str] | None = None,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
) -> list[FitResult]:
    """Train (or, with `resume`, go on training) and export; one result per model.

    Raises UserError for a missing or empty data folder, no usable clip, a run directory
    that already holds a checkpoint (without `resume`), or an unavailable device.
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: torch sees no CUDA device here")
    types = resolve_machine_types(data_root, machine_types)
    per_type = config.labels == "section" and len(types) > 1
    groups = [[t] for t in types] if per_type else [types]
    context = distributed.start(device)
    try:
        results = []
        for group in groups:
            group_dir = Path(run_dir) / group[0] if per_type else Path(run_dir)
            results.append(fit_one(data_root, group_dir, config, group, context, resume, progress))
        return results
    finally:
        distributed.stop(context)


def fit_one(
    data_root: str | Path,
    run_dir: Path,
    config: TrainConfig,
    types: Sequence[str],
    context: distributed.Context,
    resume: bool,
    progress: bool,
) -> FitResult:
    """Train one model on `types` into `run_dir`."""
    if (run_dir / ckpt.CHECKPOINT).exists() and not resume:
        raise UserError(
            f"{run_dir}: already holds a checkpoint; add --resume to go on, or choose another --out"
        )
    torch.manual_seed(config.seed)
    recordings = scan_recordings(data_root, types, config)
    train_set, held_set = split_validation(recordings, config.validation_fraction, config.seed)
    labels, use_pseudo = choose_labels(recordings, config, types)
    trained_on = {"data_root": str(data_root), "machine_types": list(types), "seed": config.seed}
    if use_pseudo:
        n_metadata = len({r.label for r in recordings})
        trained_on["pseudo_labels"] = pseudo.scheme_record(config.pseudo_labels, n_metadata)
    log.info(
        "%s: %d labels, %d training recordings, %d held out",
        "+".join(types),
        len(labels),
        len(train_set),
        len(held_set),
    )
    model = ASDModel(config.model, len(labels)).to(context.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    state = start_state(run_dir, labels, config, resume, model, optimizer, trained_on)
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.write_config(run_dir, config.to_dict())
    trainer = Trainer(model, optimizer, config, context, labels, progress, use_pseudo)
    train_loss = held_loss = None
    first_epoch, start_weights = state.epoch, parameters_of(model)
    for epoch in range(state.epoch, config.epochs):
        started = time.monotonic()
        train_loss = trainer.train_epoch(train_set, epoch)
        if epoch == first_epoch:
            require_learning(train_loss, start_weights, model, labels, epoch + 1)
            start_weights = []
        held_loss = trainer.heldout_loss(held_set) if held_set else None
        end_epoch(state, trainer, run_dir, epoch + 1, train_loss, held_loss)
        if context.is_main:
            ckpt.append_log(run_dir, epoch + 1, train_loss, held_loss, time.monotonic() - started)
    distributed.barrier(context)
    model_dir = run_dir / ckpt.MODEL_DIR
    if context.is_main:
        model_dir = export_run(run_dir)
    distributed.barrier(context)
    return FitResult(run_dir, model_dir, tuple(types), state.epoch, train_loss, held_loss)


def choose_labels(
    recordings: list[Recording], config: TrainConfig, types: Sequence[str]
) -> tuple[list[str], bool]:
    """(the classes, whether they are pseudo-labels): the metadata labels of `recordings`,
    each crossed with the transforms of train/pseudo_labels.py when those are wanted.

    Raises UserError when pseudo-labels are off and there is a single metadata label.
    """
    metadata = sorted({r.label for r in recordings})
    if pseudo.wanted(config.pseudo_labels, metadata, config.labels, types):
        return pseudo.expand_labels(metadata), True
    return metadata, False


def parameters_of(model: torch.nn.Module) -> list[torch.Tensor]:
    """A copy of every trainable weight (to tell whether an epoch changed any)."""
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


def require_learning(
    loss: float,
    before: list[torch.Tensor],
    model: torch.nn.Module,
    labels: Sequence[str],
    epoch: int,
) -> None:
    """Raise UserError when an epoch learned nothing: loss exactly 0 or not finite, or no
    weight changed. Such a model must not be exported as if it were trained."""
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    unchanged = all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
    if loss != 0.0 and math.isfinite(loss) and not unchanged:
        return
    what = "the weights did not change" if unchanged else f"the loss is {loss}"
    if loss == 0.0 and unchanged:
        what = "the loss is exactly 0 and the weights did not change"
    raise UserError(
        f"epoch {epoch} learned nothing ({what}; {len(labels)} label"
        f"{'' if len(labels) == 1 else 's'}: "
        f"{', '.join(labels[:4])}{', ...' if len(labels) > 4 else ''}); nothing is "
        "exported. One label gives a zero ArcFace loss (use --pseudo-labels on); otherwise "
        "check the learning rate and the audio (silent or constant clips)"
    )


def end_epoch(
    state: ckpt.Checkpoint,
    trainer: Trainer,
    run_dir: Path,
    epochs_done: int,
    train_loss: float,
    held_loss: float | None,
) -> None:
    """Record the epoch in `state` and write the checkpoint (and best.pt) on rank 0."""
    state.epoch = epochs_done
    state.model_state = copy.deepcopy(trainer.core.state_dict())
    state.optimizer_state = trainer.optimizer.state_dict()
    main = trainer.context.is_main
    if held_loss is not None and (state.best_loss is None or held_loss < state.best_loss):
        state.best_loss, state.best_epoch = held_loss, epochs_done
        if main:
            ckpt.save(state, run_dir / ckpt.BEST)
    if main:
        ckpt.save(state, run_dir / ckpt.CHECKPOINT)


def start_state(
    run_dir: Path,
    labels: list[str],
    config: TrainConfig,
    resume: bool,
    model: ASDModel,
    optimizer: torch.optim.Optimizer,
    trained_on: dict[str, Any],
) -> ckpt.Checkpoint:
    """A fresh checkpoint, or the run's latest one loaded into `model` and `optimizer`."""
    if not (resume and (run_dir / ckpt.CHECKPOINT).exists()):
        return ckpt.Checkpoint(0, {}, None, labels, config.labels, config.to_dict(), trained_on)
    state = ckpt.load(run_dir / ckpt.CHECKPOINT)
    if state.labels != labels or state.config.get("model") != config.model.to_dict():
        raise UserError(
            f"{run_dir / ckpt.CHECKPOINT}: was trained with other labels or another model "
            "than this data and recipe give; resume with the same --data, --labels and --config"
        )
    model.load_state_dict(state.model_state)
    optimizer.load_state_dict(state.optimizer_state)
    log.info("resuming %s after epoch %d of %d", run_dir, state.epoch, config.epochs)
    return state


class Trainer:
    """One model's epochs: batches, MixUp, the ArcFace loss, the optimiser step."""

    def __init__(
        self,
        model: ASDModel,
        optimizer: torch.optim.Optimizer,
        config: TrainConfig,
        context: distributed.Context,
        labels: list[str],
        progress: bool,
        pseudo_labels: bool = False,
    ) -> None:
        self.core = model
        self.model = model
        if context.distributed:
            ids = [context.device.index] if context.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.optimizer = optimizer
        self.config = config
        self.context = context
        self.labels = labels
        self.progress = progress and context.is_main
        self.pseudo_labels = pseudo_labels

    def loader(
        self, recordings: list[Recording], epoch: int, shuffle: bool
    ) -> torch.utils.data.DataLoader:
        c = self.config
        dataset = WindowDataset(
            recordings, self.labels, c.model.window_samples, c.short_clips, c.seed,
            self.pseudo_labels,
        )  # fmt: skip
        dataset.set_epoch(epoch)
        sampler = None
        if self.context.distributed:
            sampler = torch.utils.data.DistributedSampler(dataset, shuffle=shuffle, seed=c.seed)
            sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(c.seed * 100003 + epoch)
        per_process = len(sampler) if sampler is not None else len(dataset)
        # batch norm cannot train on a batch of one: drop such a last batch
        drop_last = shuffle and per_process % c.batch_size == 1 and per_process > 1
        if shuffle and per_process < 2:
            raise UserError(
                f"{per_process} training window per process: batch norm needs at least 2"
            )
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=c.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=c.workers,
            generator=generator,
            drop_last=drop_last,
        )

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, len(self.labels)).float().to(self.context.device)

    def train_epoch(self, recordings: list[Recording], epoch: int) -> float:
        from tqdm import tqdm

        c = self.config
        self.model.train()
        rng = np.random.default_rng((c.seed, epoch, self.context.rank))
        total, count = 0.0, 0
        loader = self.loader(recordings, epoch, shuffle=True)
        desc = f"epoch {epoch + 1}/{c.epochs}"
        with tqdm(loader, desc=desc, disable=not self.progress, unit="batch") as bar:
            for waveforms, labels in bar:
                waveforms = waveforms.to(self.context.device)
                waveforms, targets = mixup(
                    waveforms, self.targets(labels), c.mixup_probability, c.mixup_alpha, rng
                )
                _, logits, _ = self.model(waveforms)
                loss = self.core.head.loss(logits, targets)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total, count = total + loss.item() * len(waveforms), count + len(waveforms)
                bar.set_postfix(loss=f"{total / count:.4f}")
        return distributed.mean_across(self.context, total / max(count, 1), count)

    @torch.no_grad()
    def heldout_loss(self, recordings: list[Recording]) -> float:
        """The ArcFace loss (no MixUp) on held-out normal training recordings."""
        self.model.eval()
        total, count = 0.0, 0
        for waveforms, labels in self.loader(recordings, 0, shuffle=False):
            _, logits, _ = self.core(waveforms.to(self.context.device))
            loss = self.core.head.loss(logits, self.targets(labels))
            total, count = total + loss.item() * len(waveforms), count + len(waveforms)
        return distributed.mean_across(self.context, total / max(count, 1), count)


def export_run(run_dir: str | Path) -> Path:
    """Export a run's selected weights to RUN/model/ (`edge-asd-train export`); returns it."""
    run_dir = Path(run_dir)
    state = ckpt.load(run_dir / ckpt.CHECKPOINT)
    config = TrainConfig.from_dict(state.config)
    selected = state
    if config.select == "validation_loss" and (run_dir / ckpt.BEST).exists():
        selected = ckpt.load(run_dir / ckpt.BEST)
    model = ASDModel(config.model, len(state.labels))
    model.load_state_dict(selected.model_state)
    trained_on = {
        **state.trained_on,
        "epochs": state.epoch,
        "exported_epoch": selected.epoch,
        "selection": config.select,
    }
    return export_model_dir(
        model.eval(), state.labels, run_dir / ckpt.MODEL_DIR, state.label_scheme, trained_on
    )
