"""Training recipes: a YAML file (configs/train/<recipe>.yaml) read into a frozen dataclass.

Top-level keys are TrainConfig fields; `model:` holds ModelConfig fields; `reference:`
carries the report's own numbers for the recipe (printed beside results, never used in
training). An unknown key or a bad value is a ConfigError naming the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from edge_asd.errors import ConfigError
from train.model import ModelConfig

LABEL_SCHEMES = ("section", "type_section", "section_attribute")
SHORT_CLIP_POLICIES = ("tile", "pad", "join")
SELECTIONS = ("last", "validation_loss")


@dataclass(frozen=True)
class TrainConfig:
    """Everything `fit` needs besides the data: model, labels, optimiser, augmentation."""

    model: ModelConfig = field(default_factory=ModelConfig)
    labels: str = "section"  # section | type_section | section_attribute
    epochs: int = 200
    batch_size: int = 32
    learning_rate: float = 1e-4
    mixup_probability: float = 0.5  # share of batches mixed
    mixup_alpha: float = 0.2  # Beta(alpha, alpha) mixing weights
    seed: int = 0
    workers: int = 0  # DataLoader worker processes
    short_clips: str = "tile"  # clips shorter than a window: tile | pad | join
    join_key: str = ""  # attribute naming a recording, for short_clips: join (rec, flight)
    ignore_attributes: tuple[str, ...] = ("seg",)  # left out of section_attribute labels
    validation_fraction: float = 0.0  # normal train recordings held out for a loss
    select: str = "last"  # last | validation_loss: which epoch is exported
    reference: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            ("labels", self.labels in LABEL_SCHEMES, f"one of {LABEL_SCHEMES}"),
            (
                "short_clips",
                self.short_clips in SHORT_CLIP_POLICIES,
                f"one of {SHORT_CLIP_POLICIES}",
            ),
            ("select", self.select in SELECTIONS, f"one of {SELECTIONS}"),
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("mixup_probability", 0.0 <= self.mixup_probability <= 1.0, "in [0, 1]"),
            ("mixup_alpha", self.mixup_alpha > 0, "> 0"),
            ("validation_fraction", 0.0 <= self.validation_fraction < 1.0, "in [0, 1)"),
            ("join_key", self.short_clips != "join" or bool(self.join_key), "set for join"),
            (
                "select",
                self.select != "validation_loss" or self.validation_fraction > 0,
                "last unless validation_fraction > 0",
            ),
        ]
        for key, ok, wanted in checks:
            if not ok:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be {wanted}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ignore_attributes"] = list(self.ignore_attributes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Raises ValueError naming an unknown key or a bad value."""
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys {unknown} (known: {sorted(known)})")
        model = ModelConfig.from_dict(dict(data.pop("model", None) or {}))
        if "ignore_attributes" in data:
            data["ignore_attributes"] = tuple(data["ignore_attributes"] or ())
        return cls(model=model, **data)

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """A copy with the non-None overrides applied (command-line options).

        Raises ConfigError (exit 2) when the result is not a valid config.
        """
        try:
            return replace(self, **{k: v for k, v in overrides.items() if v is not None})
        except ValueError as exc:
            raise ConfigError(f"command line: {exc}") from None


def load_config(path: str | os.PathLike | None) -> TrainConfig:
    """The recipe at `path` (defaults when None). Raises ConfigError naming the file."""
    if path is None:
        return TrainConfig()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys, not {type(data).__name__}")
    try:
        return TrainConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
