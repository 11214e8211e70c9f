"""YAML with line numbers: the data, plus the line where each key path was written.

Config errors name the line of the offending key, so the loader keeps, for every key
path (`("machines", 0, "name")`), the 1-based line of its value. A duplicate key is an
error here: PyYAML would silently keep the last one, and a config that says two things
about the same setting is a mistake a user wants to hear about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[Any, ...]


@dataclass
class YamlDocument:
    """Parsed YAML `data` and the 1-based `lines` of each key path in it."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[Any]) -> int | None:
        """The line of `path`, or of its nearest written ancestor (for a missing key)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


class DuplicateKeyError(ValueError):
    """A mapping holds the same key twice; `path` and `line` say where."""

    def __init__(self, path: KeyPath, line: int) -> None:
        super().__init__(f"key {format_path(path)!r} is written twice")
        self.path = path
        self.line = line


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document with the safe loader, recording the line of every key path.

    Raises yaml.YAMLError on a syntax error (its `problem_mark` has the line) and
    DuplicateKeyError on a repeated key.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return YamlDocument(data=data, lines=lines)


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise DuplicateKeyError((*path, key), key_node.start_mark.line + 1)
            seen.add(key)
            _record_lines(value_node, (*path, key), lines)
            # The key's own line, not its value's: a block value starts on the next line.
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines)


def format_path(path: Sequence[Any]) -> str:
    """`machines[0].name` for ("machines", 0, "name")."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"
