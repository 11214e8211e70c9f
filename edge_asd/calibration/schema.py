"""calibration.yaml's schema (format 2): strict pydantic models, every field described.

A calibration is read with the same machinery as the daemon's config
(edge_asd.config.yaml_file, edge_asd.config.load): the line of every key is kept, and
every wrong type or value is one line `FILE:LINE: KEY.PATH: VALUE: what was expected`,
all in one ModelFileError.
The selection and detectability sections are the record of how the calibration was made
(for people and the report); they are checked for shape, not used for scoring.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge_asd.errors import ModelFileError

FORMAT_VERSION = 2
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CALIBRATION_MAPPING = (
    "the mapping of keys `edge-asd calibrate` writes (format_version: ..., threshold: ...); "
    "calibrate again (edge-asd calibrate)"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StandardiserYaml(_Strict):
    mean: float = Field(description="mean of the component's honest normal scores")
    std: float = Field(gt=0, description="their standard deviation (> 0)")

    @field_validator("mean", "std")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class ComponentYaml(_Strict):
    kind: str = Field(pattern=r"^[a-z0-9_]+$", description="the scorer kind (knn, twfr, ...)")
    params: dict[str, Any] = Field(default_factory=dict, description="the scorer's parameters")
    standardiser: StandardiserYaml = Field(description="how its scores become z-scores")


class DetectorYaml(_Strict):
    combiner: Literal["mean", "max"] = Field("mean", description="how z-scores are combined")
    components: list[ComponentYaml] = Field(min_length=1, description="the fitted scorers")


class InputYaml(_Strict):
    """How the calibration's audio was taken (edge_asd.calibration.heard)."""

    channel: int | None = Field(ge=0, description="channel used, from 0; null: the mean")
    channels: list[int] = Field(min_length=1, description="channel counts of the recordings")
    sample_rates_hz: list[int] = Field(min_length=1, description="their own sample rates")
    model_rate_hz: int = Field(gt=0, description="the model's rate, resampled to")
    resampled: bool = Field(description="whether any recording was resampled")
    device: str | None = Field(None, description="the input device of a live recording")


class CalibrationYaml(_Strict):
    """The whole file (see edge_asd.calibration.file)."""

    format_version: Literal[2] = Field(description="2 for this edge-asd")
    machine: str = Field(pattern=NAME_PATTERN, description="the machine's name")
    label: str | None = Field(None, description="the model label (or prefix) it is bound to")
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of model.onnx")
    detector: DetectorYaml
    threshold: float = Field(description="the detector score above which a window counts")
    k: int = Field(ge=1, description="windows above the threshold that open an event ...")
    n: int = Field(ge=1, description="... among the last n")
    m_close: int = Field(ge=1, description="consecutive windows below that close it")
    hop_seconds: float = Field(gt=0, description="seconds between windows")
    method: str = Field(description="how the threshold was chosen")
    method_params: dict[str, Any] = Field(default_factory=dict)
    expected_false_alarms_per_day: float = Field(ge=0)
    n_windows: int = Field(ge=1)
    n_recordings: int = Field(ge=1)
    audio_seconds: float = Field(ge=0)
    score_stats: dict[str, float] = Field(default_factory=dict)
    level: dict[str, Any] = Field(default_factory=dict, description="input level at calibration")
    input: InputYaml | None = Field(None, description="channel and rates it was made from")
    selection: dict[str, Any] = Field(default_factory=dict, description="how it was chosen")
    detectability: dict[str, Any] = Field(default_factory=dict, description="per fault kind")
    source: str = ""
    created_at: str = ""
    arrays_file: str | None = Field(None, pattern=r"^[^/\\]+\.npz$")
    arrays_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _k_within_n(self) -> CalibrationYaml:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) cannot exceed n ({self.n})")
        return self


def read_calibration_yaml(path: Path) -> CalibrationYaml:
    """calibration.yaml validated; ModelFileError naming the file, line and key."""
    from edge_asd.config.load import validate_document
    from edge_asd.config.yaml_file import read_yaml_file

    document = read_yaml_file(path, "calibration", ModelFileError, CALIBRATION_MAPPING)
    version = document.data.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format_version {version!r} is not supported (this edge-asd reads "
            f"{FORMAT_VERSION}); calibrate again with this edge-asd (edge-asd calibrate)"
        )
    return validate_document(path, document, CalibrationYaml, "calibration", ModelFileError)
