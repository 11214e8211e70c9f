"""Loading a config file: YAML with line numbers, strict validation, one message per problem.

Every problem is printed as `FILE:LINE: KEY.PATH: VALUE: what was expected`, all of them at
once (fixing one error at a time through a remote shell is slow), and the whole becomes a
ConfigError (exit code 2).
"""

from __future__ import annotations

import difflib
import os
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from edge_asd.config.checks import Problem, cross_checks
from edge_asd.config.schema import Config
from edge_asd.config.yaml_file import read_yaml_file
from edge_asd.config.yaml_lines import KeyPath, YamlDocument, format_path
from edge_asd.errors import ConfigError

MAX_VALUE_CHARS = 60
CONFIG_MAPPING = (
    "a mapping of settings (device_id: ..., model: ...); start from an example in configs/"
)

# Keys people write by habit, with the reason they are refused.
KEY_HINTS = {
    "password": "a password is never written in the config: use password_env, password_file "
    "or password_credential",
}


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a daemon config; relative paths in it are relative to its directory.

    Raises ConfigError (exit 2): for the file itself (unreadable, not UTF-8, not YAML) its
    first problem with line and column (edge_asd.config.yaml_file); for its settings every
    problem with line, key path, value and expectation: unknown or missing keys, wrong
    types, values out of range, unsafe names, missing files and inconsistent settings.
    """
    path = Path(path)
    document = read_yaml_file(path, "config", ConfigError, CONFIG_MAPPING)
    try:
        config = Config.model_validate(document.data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(format_problems(path, document, pydantic_problems(exc))) from None
    problems = cross_checks(config)
    if problems:
        raise ConfigError(format_problems(path, document, problems))
    return config


def validate_document(
    path: Path,
    document: YamlDocument,
    model: type[BaseModel],
    what: str = "config",
    error: type[Exception] = ConfigError,
) -> Any:
    """`document` (a mapping, as read_yaml_file returns) validated as `model`; `error` with
    one `FILE:LINE: KEY: VALUE: expected` line per problem when it is not one."""
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, model)
        raise error(format_problems(path, document, problems, what)) from None


def format_problems(
    path: Path, document: YamlDocument, problems: list[Problem], what: str = "config"
) -> str:
    """One line per problem, `FILE:LINE: KEY.PATH: VALUE: message`, in the file's order."""
    lines = []
    for problem in problems:
        line = document.line_of(problem.path)
        where = f"{path}:{line}" if line else str(path)
        value = f" {_show(problem.value)}:" if problem.show_value else ""
        lines.append((line or 0, f"{where}: {format_path(problem.path)}:{value} {problem.message}"))
    lines.sort(key=lambda pair: pair[0])
    header = f"{len(lines)} problems in the {what}:\n" if len(lines) > 1 else ""
    return header + "\n".join(text for _, text in lines)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def pydantic_problems(exc: ValidationError, root: type[BaseModel] = Config) -> list[Problem]:
    """Pydantic's errors as Problems: key paths without union tags, messages a user reads.

    Errors of one key (each member of a union failing) merge into one message.
    """
    merged: dict[KeyPath, Problem] = {}
    for error in exc.errors():
        path, parent = _clean_path(root, error["loc"])
        problem = _problem(error, path, parent)
        if path in merged:
            old = merged[path]
            problem = Problem(
                path, f"{old.message}, or {problem.message}", old.value, old.show_value
            )
        merged[path] = problem
    return list(merged.values())


def _problem(error: dict[str, Any], path: KeyPath, parent: type[BaseModel] | None) -> Problem:
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return Problem(path, unknown_key_message(str(path[-1]), parent), show_value=False)
    if kind == "missing":
        description = _description(parent, str(path[-1]))
        return Problem(path, f"missing: required ({description})", show_value=False)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = (error.get("ctx") or {}).get("expected_tags", "")
        found = value.get("kind") if isinstance(value, dict) else None
        return Problem((*path, "kind"), f"expected one of {tags}", found, found is not None)
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message.replace("Input should be", "expected")
    return Problem(path, message, value)


def unknown_key_message(key: str, model: type[BaseModel] | None) -> str:
    """`unknown key (did you mean ...?); expected one of: ...` for a key of `model`."""
    if key in KEY_HINTS:
        return f"unknown key: {KEY_HINTS[key]}"
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; expected one of: {', '.join(known)}"


def _description(model: type[BaseModel] | None, key: str) -> str:
    if model is None or key not in model.model_fields:
        return "see configs/ for an example"
    return model.model_fields[key].description or key


def _clean_path(
    root: type[BaseModel], loc: tuple[Any, ...]
) -> tuple[KeyPath, type[BaseModel] | None]:
    """Drop pydantic's union tags from `loc`; also return the model holding the last key."""
    path: list[Any] = []
    annotation: Any = root
    parent: type[BaseModel] | None = None
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            parent = annotation
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            annotation = field.annotation if field else None
            path.append(part)
            continue
        members = _union_members(annotation)
        if members and isinstance(part, str):
            # A union tag: the discriminator value, or a member's type name.
            annotation = next((m for m in members if _tag_of(m) == part), None)
            continue
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        annotation = args[-1] if args else None  # list/tuple item, or dict value
        path.append(part)
    return tuple(path), parent


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the type that matters."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        members = _union_members(annotation)
        non_none = [m for m in members if m is not type(None)]
        if members and len(non_none) == 1:
            annotation = non_none[0]
            continue
        return annotation


def _union_members(annotation: Any) -> tuple[Any, ...]:
    import types

    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(_unwrap_annotated(m) for m in typing.get_args(annotation))
    return ()


def _unwrap_annotated(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def _tag_of(member: Any) -> str | None:
    if isinstance(member, type) and issubclass(member, BaseModel):
        field = member.model_fields.get("kind")
        args = typing.get_args(field.annotation) if field else ()
        return args[0] if args else None
    return getattr(member, "__name__", None)
