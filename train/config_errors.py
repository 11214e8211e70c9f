"""A recipe's validation errors as messages a user reads: `FILE:LINE: KEY.PATH: VALUE: expected`.

The daemon's loader (edge_asd/config/load.py) does the same for its own schema; this is
the training side of it, for the recipe models of train/config.py: the file is read with
edge_asd.config.yaml_file (the reader of every user YAML: line of every key) and printed with
edge_asd.config.load.format_problems, every problem at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from edge_asd.config.checks import Problem
from edge_asd.config.load import format_problems, unknown_key_message
from edge_asd.config.yaml_file import read_yaml_file
from edge_asd.config.yaml_lines import (
    KeyPath,
    YamlDocument,
    format_path,
)
from edge_asd.errors import ConfigError

MAX_VALUE_CHARS = 60
RECIPE_MAPPING = "a mapping of recipe keys (epochs: ..., model: ...)"


class CheckFailed(ValueError):
    """Raised by a model validator: settings that contradict each other, each with its key."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{format_path(p.path)}: {p.message}" for p in problems))
        self.problems = problems


def read_recipe(path: Path) -> YamlDocument:
    """The YAML of a recipe with the line of every key (an empty file: every default);
    ConfigError naming the file, line and column when it is not one."""
    return read_yaml_file(path, "recipe", ConfigError, RECIPE_MAPPING, allow_empty=True)


def recipe_message(
    path: Path, document: YamlDocument, exc: ValidationError, root: type[BaseModel]
) -> str:
    """Every problem of `exc`, one line each, with the file, line, key path and value."""
    return format_problems(path, document, problems_of(exc, root), "recipe")


def override_message(exc: ValidationError, root: type[BaseModel]) -> str:
    """The same for command-line overrides: `command line: KEY: VALUE: expected`."""
    lines = []
    for p in problems_of(exc, root):
        value = f" {_show(p.value)}:" if p.show_value else ""
        lines.append(f"command line: {format_path(p.path)}:{value} {p.message}")
    return "\n".join(lines)


def problems_of(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """pydantic's errors as Problems: the key path, the value, what was expected."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, CheckFailed):
            problems += [Problem((*loc, *p.path), p.message, p.value) for p in cause.problems]
            continue
        problems.append(_problem(error, loc, _model_at(root, loc[:-1])))
    return problems


def _problem(error: dict[str, Any], path: KeyPath, parent: type[BaseModel] | None) -> Problem:
    kind, value = error["type"], error.get("input")
    key = str(path[-1]) if path else ""
    if kind == "extra_forbidden":
        return Problem(path, unknown_key_message(key, parent), show_value=False)
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        message = "expected a mapping of keys"
    elif kind == "int_type":
        message = "expected a whole number"
    elif kind == "float_type":
        message = "expected a number" + _yaml_float_hint(value)
    else:
        message = error["msg"].removeprefix("Value error, ").replace("Input should be", "expected")
        message = message.replace("valid tuple", "list").replace(" after validation", "")
        message = message.replace("List should have", "expected a list of")
    field = parent.model_fields.get(key) if parent is not None else None
    if field is not None and field.description:
        message += f" ({field.description})"
    return Problem(path, message, value)


def _yaml_float_hint(value: Any) -> str:
    """YAML 1.1 reads `1e-4` (no dot) as text: say so, since it looks like a number."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return ", not text (YAML reads 1e-4 as text: write 1.0e-4)" if "e" in value.lower() else ""


def _model_at(root: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The model class holding the last key of `path` (None below a dict or list)."""
    model: type[BaseModel] | None = root
    for part in path:
        if model is None or not isinstance(part, str):
            return None
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        model = annotation if _is_model(annotation) else None
    return model


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."
