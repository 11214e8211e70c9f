"""Constrained field types of the config: safe names and paths checked against the disk.

Names end up in MQTT topics (`{prefix}/{device_id}/{machine}/event`), so they are limited
to letters, digits, `_` and `-`: a `/`, `+` or `#` would let a name inject or widen a topic.
Relative paths are resolved against the config file's directory (the validation context's
`base_dir`), so a config and the files beside it can move together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo
from pydantic_core import PydanticCustomError

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOPIC_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,7}")
ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _check_name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise PydanticCustomError(
            "bad_name",
            "expected 1 to 64 letters, digits, '_' or '-' (names go into MQTT topics, "
            "where '/', '+', '#' and spaces are not allowed)",
        )
    return value


def _check_topic_prefix(value: str) -> str:
    if not TOPIC_PREFIX_PATTERN.fullmatch(value):
        raise PydanticCustomError(
            "bad_name",
            "expected levels of letters, digits, '_' or '-' joined by '/', "
            "without wildcards ('+', '#') or empty levels, e.g. 'edge-asd' or 'plant-3/asd'",
        )
    return value


def _check_env_name(value: str) -> str:
    if not ENV_NAME_PATTERN.fullmatch(value):
        raise PydanticCustomError(
            "bad_name", "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
        )
    return value


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """`value` made absolute against the context's `base_dir` (the config's directory)."""
    value = value.expanduser()
    base_dir = (info.context or {}).get("base_dir")
    if not value.is_absolute() and base_dir is not None:
        value = Path(base_dir) / value
    return value


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    path = resolve_path(value, info)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise PydanticCustomError(
            "missing_file",
            "expected an existing file, but {path} {what}",
            {"path": str(path), "what": what},
        )
    return path


def _existing_dir(value: Path, info: ValidationInfo) -> Path:
    path = resolve_path(value, info)
    if not path.is_dir():
        raise PydanticCustomError(
            "missing_file",
            "expected an existing directory, but {path} is not one",
            {"path": str(path)},
        )
    return path


def _model_path(value: Path, info: ValidationInfo) -> Path:
    path = resolve_path(value, info)
    if not (path.is_dir() or path.is_file()):
        raise PydanticCustomError(
            "missing_file",
            "expected a model directory (model.onnx + model.yaml) or its model.onnx, "
            "but {path} does not exist",
            {"path": str(path)},
        )
    return path


def _file_in_existing_dir(value: Path, info: ValidationInfo) -> Path:
    path = resolve_path(value, info)
    if path.is_dir():
        raise PydanticCustomError(
            "missing_file", "expected a file path, but {path} is a directory", {"path": str(path)}
        )
    if not path.parent.is_dir():
        raise PydanticCustomError(
            "missing_file",
            "expected a file in an existing directory, but {parent} does not exist",
            {"parent": str(path.parent)},
        )
    return path


def _resolved(value: Path, info: ValidationInfo) -> Path:
    return resolve_path(value, info)


Name = Annotated[str, AfterValidator(_check_name)]
TopicPrefix = Annotated[str, AfterValidator(_check_topic_prefix)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
ExistingDir = Annotated[Path, AfterValidator(_existing_dir)]
ModelPath = Annotated[Path, AfterValidator(_model_path)]
ResolvedPath = Annotated[Path, AfterValidator(_resolved)]
NewFile = Annotated[Path, AfterValidator(_file_in_existing_dir)]


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
