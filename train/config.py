"""Training recipes: a YAML file (configs/train/<recipe>.yaml) read into strict pydantic models.

Top-level keys are TrainConfig fields; `model:` holds ModelConfig fields; `reference:`
carries the report's own numbers for the recipe (printed beside results, never used in
training). Every field has a description and bounds; numbers are strict (`epochs: 2.5` or
`batch_size: '8'` are refused, not rounded or parsed). A recipe that does not validate is
one ConfigError listing every problem as `FILE:LINE: KEY.PATH: VALUE: what was expected`
(train/config_errors.py); command-line overrides are checked the same way.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_asd.audio import EMBEDDING_DIM, HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, WINDOW_SAMPLES
from edge_asd.audio import n_frames as frames_of
from edge_asd.config.checks import Problem
from edge_asd.errors import ConfigError
from edge_asd.model_file import FrontEnd
from train.backbones import BACKBONES
from train.config_errors import CheckFailed, override_message, read_recipe, recipe_message

LabelScheme = Literal["section", "type_section", "section_attribute"]
ShortClips = Literal["tile", "pad", "join"]
Selection = Literal["last", "validation_loss"]
PseudoLabels = Literal["auto", "on", "off"]
Features = Literal["stgram", "logmel"]
LABEL_SCHEMES: tuple[str, ...] = typing.get_args(LabelScheme)
SHORT_CLIP_POLICIES: tuple[str, ...] = typing.get_args(ShortClips)
SELECTIONS: tuple[str, ...] = typing.get_args(Selection)
PSEUDO_LABEL_SETTINGS: tuple[str, ...] = typing.get_args(PseudoLabels)
FEATURES: tuple[str, ...] = typing.get_args(Features)

ReferenceRow = Annotated[list[float], Field(min_length=3, max_length=3)]
R = TypeVar("R", bound="Recipe")


class Recipe(BaseModel):
    """Base of the recipe's sections: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-safe data (lists, not tuples); `from_dict` reads it back."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """Raises pydantic.ValidationError (a ValueError) naming each bad key."""
        return cls.model_validate(data)


class ModelConfig(Recipe):
    """What defines the network; round-trips through a dict (checkpoints, recipes)."""

    backbone: str = Field(
        "mobilefacenet", description=f"the network after the features: one of {BACKBONES}"
    )
    features: Features = Field(
        "stgram", description="'stgram' (log-mel + Tgram, 2 channels) or 'logmel' alone"
    )
    embedding_dim: int = Field(
        EMBEDDING_DIM, strict=True, ge=8, le=4096, description="size of the embedding"
    )
    arcface_margin: float = Field(
        0.7, strict=True, ge=0.0, le=1.5, description="ArcFace angular margin, radians"
    )
    arcface_scale: float = Field(
        30.0, strict=True, gt=0.0, le=1000.0, description="ArcFace logit scale"
    )
    window_samples: int = Field(
        WINDOW_SAMPLES, strict=True, ge=1024, le=600 * SAMPLE_RATE,
        description="samples in one window (10 s at 16 kHz)",
    )  # fmt: skip
    sample_rate: int = Field(
        SAMPLE_RATE, strict=True, ge=8000, le=192000, description="sample rate, Hz"
    )
    n_fft: int = Field(N_FFT, strict=True, ge=64, le=16384, description="FFT size, samples")
    hop_length: int = Field(
        HOP_LENGTH, strict=True, ge=1, le=16384, description="hop between frames, samples"
    )
    n_mels: int = Field(N_MELS, strict=True, ge=8, le=512, description="mel bands")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, value: str) -> str:
        if value not in BACKBONES:
            raise ValueError(f"expected one of {', '.join(map(repr, BACKBONES))}")
        return value

    @model_validator(mode="after")
    def _sizes_fit(self) -> ModelConfig:
        problems = []
        if self.hop_length > self.n_fft:
            problems.append(Problem(("hop_length",), "must be <= n_fft", self.hop_length))
        if self.window_samples < self.n_fft:
            problems.append(Problem(("window_samples",), "must be >= n_fft", self.window_samples))
        if problems:
            raise CheckFailed(problems)
        return self

    @property
    def frames(self) -> int:
        return frames_of(self.window_samples, self.hop_length)

    @property
    def name(self) -> str:
        """The backbone as model.yaml records it, e.g. `stgram+mobilefacenet`."""
        return f"{self.features}+{self.backbone}"

    def front_end(self) -> FrontEnd:
        return FrontEnd(self.n_fft, self.hop_length, self.n_mels, self.frames)


class TrainConfig(Recipe):
    """Everything `fit` needs besides the data: model, labels, optimiser, augmentation."""

    model: ModelConfig = Field(ModelConfig(), description="the network (backbone, features, ...)")
    labels: LabelScheme = Field(
        "section",
        description="metadata labels: 'section' (one model per machine type), 'type_section' "
        "(one model across types) or 'section_attribute' (section and file-name attributes)",
    )
    pseudo_labels: PseudoLabels = Field(
        "auto",
        description="self-supervised classes (each label x a transform of the sound, "
        "train/pseudo_labels.py): 'auto' when fewer than 2 metadata labels, 'on', 'off'",
    )
    epochs: int = Field(200, strict=True, ge=1, le=100_000, description="epochs to train")
    batch_size: int = Field(32, strict=True, ge=1, le=65536, description="windows per batch")
    learning_rate: float = Field(
        1e-4, strict=True, gt=0.0, le=1.0, description="Adam learning rate"
    )
    mixup_probability: float = Field(
        0.5, strict=True, ge=0.0, le=1.0, description="share of batches mixed (MixUp)"
    )
    mixup_alpha: float = Field(
        0.2, strict=True, gt=0.0, le=100.0, description="Beta(alpha, alpha) mixing weights"
    )
    seed: int = Field(0, strict=True, ge=0, le=2**32 - 1, description="random seed")
    workers: int = Field(0, strict=True, ge=0, le=256, description="DataLoader worker processes")
    short_clips: ShortClips = Field(
        "tile",
        description="clips shorter than a window: 'tile' (repeat), 'pad' (silence) or "
        "'join' (a recording's clips end to end, with join_key)",
    )
    join_key: str = Field(
        "", max_length=64, description="attribute naming a recording for join (rec, flight)"
    )
    ignore_attributes: tuple[str, ...] = Field(
        ("seg",), description="attribute keys left out of section_attribute labels"
    )
    validation_fraction: float = Field(
        0.0, strict=True, ge=0.0, lt=1.0,
        description="share of normal train recordings held out for a loss (0 <= x < 1)",
    )  # fmt: skip
    select: Selection = Field(
        "last", description="exported epoch: 'last' or 'validation_loss' (lowest held-out loss)"
    )
    reference: dict[str, ReferenceRow] = Field(
        {}, description="the report's [AUC(s), AUC(t), pAUC] per machine type, for display"
    )

    @model_validator(mode="after")
    def _pairs_agree(self) -> TrainConfig:
        problems = []
        if self.short_clips == "join" and not self.join_key:
            problems.append(
                Problem(
                    ("short_clips",),
                    "join needs join_key, the attribute naming a recording (rec, flight)",
                    self.short_clips,
                )
            )
        if self.select == "validation_loss" and self.validation_fraction <= 0:
            problems.append(
                Problem(("select",), "needs validation_fraction > 0 (or select: last)", self.select)
            )
        if problems:
            raise CheckFailed(problems)
        return self

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """A copy with the non-None overrides applied (command-line options).

        Raises ConfigError (exit 2) when the result is not a valid config.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            return TrainConfig.model_validate({**self.to_dict(), **given})
        except ValidationError as exc:
            raise ConfigError(override_message(exc, TrainConfig)) from None


def load_config(path: str | os.PathLike | None) -> TrainConfig:
    """The recipe at `path` (defaults when None).

    Raises ConfigError naming the file, line, key path, value and expectation of every
    problem: unreadable file, YAML syntax, duplicate or unknown keys, wrong types, values
    out of range, settings that contradict each other.
    """
    if path is None:
        return TrainConfig()
    path = Path(path)
    document = read_recipe(path)
    try:
        return TrainConfig.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigError(recipe_message(path, document, exc, TrainConfig)) from None
