"""The configuration reference (docs/configuration.md), generated from the schema itself.

    python -m edge_asd.config.reference > docs/configuration.md

A test checks that the committed file is what this prints, so the reference cannot drift
from the code that validates configs.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from edge_asd.config.schema import Config

HEADER = """# Configuration reference

Generated from `edge_asd/config/schema.py` (and `outputs.py`) by
`python -m edge_asd.config.reference`; do not edit by hand. Every key not listed is an
error. Names (device id, sources, machines) hold 1 to 64 letters, digits, `_` or `-`:
they become MQTT topic levels. Relative paths are relative to the config file. Examples:
`configs/jetson-usb-mic.yaml`, `configs/multichannel-interface.yaml`. Check a file with
`edge-asd validate-config FILE`.

The file is UTF-8 text, indented with spaces. A UTF-8 byte-order mark (as Notepad writes)
is accepted; a file in another encoding (Latin-1, Windows-1252, UTF-16), a tab used for
indentation, a NUL byte or a YAML syntax error is refused naming the file, line and column
and what to do (for an encoding: save the file as UTF-8). The same holds for recipes,
`calibration.yaml` and `model.yaml`.
"""


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation refers to (through lists, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def _type_name(annotation: object) -> str:
    """A reader's name for a type: `int`, `path`, `'fp16' \\| 'fp32'`, `list of Source`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if args:  # a union
        return " | ".join(_type_name(a) for a in args)
    if annotation is type(None):
        return "null"
    if annotation is Path or (isinstance(annotation, type) and issubclass(annotation, Path)):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, name, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
        for name in ("min_length", "max_length"):
            value = getattr(item, name, None)
            if value is not None:
                parts.append(f"{name.replace('_', ' ')} {value}")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    if isinstance(field.default, BaseModel):
        return "(section defaults)"
    return f"`{field.default!r}`"


def rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, ...]]:
    """(key path, type, default, bounds, description) of every field, depth first."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        yield (
            path,
            _type_name(field.annotation),
            _default(field),
            _bounds(field),
            (field.description or ""),
        )
        nested = _models_in(field.annotation)
        is_list = typing.get_origin(field.annotation) is list
        for sub in nested:
            label = f" ({sub.__name__})" if len(nested) > 1 else ""
            yield from rows(sub, f"{path}{'[]' if is_list else ''}{label}.")


def render() -> str:
    lines = [HEADER, "| key | type | default | bounds | description |", "|---|---|---|---|---|"]
    for path, type_name, default, bounds, description in rows(Config):
        cells = [f"`{path}`", type_name, default, bounds, description]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
