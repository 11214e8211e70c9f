"""Training data from a DCASE 2022 tree: normal `train/` clips, their labels, their windows.

`scan_recordings` reads the layout with edge_asd.dcase, checks every file's header,
says what it will do about other sample rates and short clips, and groups clips into
recordings (one clip each, or clips joined by `join_key`). `WindowDataset` serves
(waveform window, label index) pairs, cropping long recordings at random each epoch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edge_asd.audio import SAMPLE_RATE, read_audio
from edge_asd.dcase import Clip, group_recordings, list_clips, machine_types
from edge_asd.errors import UserError
from edge_asd.labels import make_label
from train import pseudo_labels as pseudo
from train.clip_audio import fit_to_window
from train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recording:
    """Clips played end to end (one, unless joined), their label, total length at 16 kHz."""

    clips: tuple[Clip, ...]
    label: str
    samples: int


def clip_label(clip: Clip, scheme: str, ignore_attributes: Sequence[str] = ()) -> str:
    """The label of a clip under a scheme (config.LABEL_SCHEMES)."""
    if scheme != "section_attribute":
        return make_label(clip.machine_type, clip.section)
    parts = clip.attributes.split("_") if clip.attributes else []
    if len(parts) % 2:  # not key_value pairs: the whole string is the attribute
        return make_label(clip.machine_type, clip.section, clip.attributes)
    pairs = [
        f"{k}_{v}"
        for k, v in zip(parts[::2], parts[1::2], strict=True)
        if k not in ignore_attributes
    ]
    return make_label(clip.machine_type, clip.section, "_".join(pairs))


def resolve_machine_types(root: str | Path, requested: Sequence[str] | None) -> list[str]:
    """The requested machine types, or every one under `root`; UserError when none."""
    found = machine_types(root)
    if requested:
        missing = [t for t in requested if t not in found]
        if missing:
            raise UserError(f"{root}: no machine type {missing} (found: {found or 'none'})")
        return list(requested)
    if not found:
        raise UserError(
            f"{root}: no <machine_type>/train or <machine_type>/test folder "
            "(expected the DCASE 2022 layout)"
        )
    return found


def probe_samples(clip: Clip) -> tuple[int, int] | None:
    """(frames at 16 kHz, file sample rate), or None (logged) when the file is unreadable."""
    import soundfile

    try:
        info = soundfile.info(str(clip.path))
    except (RuntimeError, soundfile.LibsndfileError, OSError) as exc:
        log.warning("%s: skipped, cannot read audio (%s)", clip.path, exc)
        return None
    if info.frames == 0:
        log.warning("%s: skipped, holds no samples", clip.path)
        return None
    return round(info.frames * SAMPLE_RATE / info.samplerate), info.samplerate


def scan_recordings(root: str | Path, types: Sequence[str], config: TrainConfig) -> list[Recording]:
    """Normal training recordings of `types`; UserError when none is usable."""
    clips: list[Clip] = []
    for machine_type in types:
        clips += [c for c in list_clips(root, machine_type, "train") if not c.is_anomaly]
    lengths: dict[Path, int] = {}
    rates: Counter[int] = Counter()
    for clip in clips:
        probed = probe_samples(clip)
        if probed is not None:
            lengths[clip.path], rate = probed
            rates[rate] += 1
    usable = [c for c in clips if c.path in lengths]
    if not usable:
        raise UserError(f"{root}: no usable normal training clip of {list(types)}")
    for rate, count in sorted(rates.items()):
        if rate != SAMPLE_RATE:
            log.info("%d clips are at %d Hz: resampled to %d Hz", count, rate, SAMPLE_RATE)
    recordings = group_into_recordings(usable, lengths, config)
    report_short(recordings, config)
    return recordings


def group_into_recordings(
    clips: list[Clip], lengths: dict[Path, int], config: TrainConfig
) -> list[Recording]:
    if config.short_clips == "join":
        groups = []
        for machine_type in sorted({c.machine_type for c in clips}):
            typed = [c for c in clips if c.machine_type == machine_type]
            groups += list(group_recordings(typed, config.join_key).values())
    else:
        groups = [[c] for c in clips]
    return [
        Recording(
            clips=tuple(group),
            label=clip_label(group[0], config.labels, config.ignore_attributes),
            samples=sum(lengths[c.path] for c in group),
        )
        for group in groups
    ]


def report_short(recordings: list[Recording], config: TrainConfig) -> None:
    """Say how many recordings are shorter than a window and what is done about it."""
    window = config.model.window_samples
    short = [r for r in recordings if r.samples < window]
    if not short:
        return
    seconds = sorted(r.samples / SAMPLE_RATE for r in short)
    what = {"tile": "repeated end to end", "pad": "padded with silence", "join": "tiled"}
    hint = (
        "" if config.short_clips == "join" else " (or join a recording's clips: short_clips: join)"
    )
    log.warning(
        "%d of %d recordings are shorter than the %.1f s window (%.1f-%.1f s, e.g. %s): %s%s",
        len(short),
        len(recordings),
        window / SAMPLE_RATE,
        seconds[0],
        seconds[-1],
        short[0].clips[0].path.name,
        what[config.short_clips],
        hint,
    )


def split_validation(
    recordings: list[Recording], fraction: float, seed: int
) -> tuple[list[Recording], list[Recording]]:
    """(train, held out): `fraction` of each label's recordings held out, at least one kept."""
    if fraction <= 0:
        return recordings, []
    rng = np.random.default_rng(seed)
    train, held = [], []
    for label in sorted({r.label for r in recordings}):
        members = [r for r in recordings if r.label == label]
        order = rng.permutation(len(members))
        n_held = min(len(members) - 1, round(fraction * len(members)))
        held += [members[i] for i in order[:n_held]]
        train += [members[i] for i in order[n_held:]]
    return train, held


class WindowDataset(torch.utils.data.Dataset):
    """(window float32 [window_samples], label index) items; a long recording gives several.

    With `pseudo_labels`, each item's window is transformed and labelled as
    train/pseudo_labels.py says, and `labels` must be its expand_labels(...).
    """

    def __init__(
        self,
        recordings: Sequence[Recording],
        labels: Sequence[str],
        window_samples: int,
        policy: str,
        seed: int = 0,
        pseudo_labels: bool = False,
    ) -> None:
        self.recordings = list(recordings)
        self.index = {label: i for i, label in enumerate(labels)}
        self.window_samples = window_samples
        self.policy = policy
        self.seed = seed
        self.pseudo_labels = pseudo_labels
        self.epoch = 0
        self.items = [
            i
            for i, r in enumerate(self.recordings)
            for _ in range(max(1, round(r.samples / window_samples)))
        ]

    def set_epoch(self, epoch: int) -> None:
        """New random crops every epoch, the same for the same (seed, epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        recording = self.recordings[self.items[item]]
        samples = np.concatenate([read_audio(c.path).mono() for c in recording.clips])
        rng = np.random.default_rng((self.seed, self.epoch, item))
        if not self.pseudo_labels:
            window = fit_to_window(samples, self.window_samples, self.policy, rng)
            return torch.from_numpy(window), self.index[recording.label]
        transform = pseudo.transform_of(item, self.epoch)
        window = pseudo.transformed_window(
            samples, self.window_samples, self.policy, rng, transform
        )
        return torch.from_numpy(window), self.index[pseudo.pseudo_label(recording.label, transform)]
