"""The one reader of the YAML files users edit: the daemon config, the training recipe,
calibration.yaml and model.yaml.

Each becomes a YamlDocument (data and the line of every key) holding a mapping, or one
error naming the file, line and column (1-based) and what to do: the text problems of
edge_asd.config.text_file (encoding, NUL bytes), then the YAML ones: a tab where YAML
wants spaces, a control character, a syntax error (with where the construct it breaks
started), a key written twice, an empty file, a top level that is not a mapping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from edge_asd.config.text_file import excerpt, locate_char, read_text_file
from edge_asd.config.yaml_lines import DuplicateKeyError, YamlDocument, format_path, parse_yaml
from edge_asd.errors import UserError

TAB_HINT = "a tab character: YAML indents with spaces, never tabs; replace the tab with spaces"


def read_yaml_file(
    path: str | os.PathLike,
    what: str,
    error: type[UserError],
    expected: str,
    allow_empty: bool = False,
) -> YamlDocument:
    """`path` parsed, its top level a mapping (an empty one for an empty file when
    `allow_empty`).

    `what` names the file in messages ("config"), `expected` says what its top level
    holds ("a mapping of settings (device_id: ..., model: ...)"). Raises `error` naming
    the file, line and column of the first problem, and what to do about it.
    """
    path = Path(path)
    text = read_text_file(path, what, error)
    document = _parse(path, text, what, error)
    if document.data is None:  # nothing but blank lines and comments
        if allow_empty:
            return YamlDocument({}, document.lines)
        raise error(
            f"{path}:1:1: the {what} is empty (nothing but blank lines or comments): "
            f"expected {expected}"
        )
    if not isinstance(document.data, dict):
        got = "a list" if isinstance(document.data, list) else "a single value"
        line = document.line_of(()) or 1
        raise error(f"{path}:{line}:1: the {what} is {got}: expected {expected}")
    return document


def _parse(path: Path, text: str, what: str, error: type[UserError]) -> YamlDocument:
    try:
        return parse_yaml(text)
    except DuplicateKeyError as exc:
        raise error(f"{path}:{exc.line}: {format_path(exc.path)}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        raise error(syntax_message(path, text, exc)) from None
    except yaml.reader.ReaderError as exc:
        line, column, shown = locate_char(text, exc.position)
        raise error(
            f"{path}:{line}:{column}: cannot read the {what}: control character "
            f'U+{exc.character:04X} (line {line}: "{excerpt(shown, column)}"); YAML text '
            f"holds no control characters: delete it"
        ) from None
    except yaml.YAMLError as exc:  # any other: still one message naming the file
        raise error(f"{path}: not valid YAML: {exc}") from None


def syntax_message(path: Path, text: str, exc: yaml.MarkedYAMLError) -> str:
    """`FILE:LINE:COLUMN: not valid YAML: problem (context at LINE:COLUMN)`, 1-based, with
    the fix spelled out when the culprit is a tab."""
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return f"{path}: not valid YAML: {exc.problem or exc}"
    where = f"{path}:{mark.line + 1}:{mark.column + 1}"
    if _is_tab(text, mark.index) or "tab" in (exc.problem or ""):
        return f"{where}: not valid YAML: {TAB_HINT}"
    context = ""
    if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        start = exc.context_mark
        context = f" ({exc.context} at line {start.line + 1}, column {start.column + 1})"
    return f"{where}: not valid YAML: {exc.problem}{context}"


def _is_tab(text: str, index: Any) -> bool:
    return isinstance(index, int) and 0 <= index < len(text) and text[index] == "\t"
