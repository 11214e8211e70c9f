"""A text file a user edits (config, recipe, calibration.yaml, model.yaml, a password
file) read as a str, or refused with one message naming the file, line and column.

The rule is UTF-8 only, because YAML files travel between Windows laptops and Jetsons
and a guessed encoding would silently change a name or a topic:
- a UTF-8 byte-order mark is accepted and dropped (Notepad writes one; YAML allows it);
- a UTF-16 or UTF-32 file is refused naming its encoding (its byte-order mark, or the
  zero bytes of every other position);
- a NUL byte is refused as a binary or truncated file;
- any other byte that is not UTF-8 is refused at its line and column, the line shown
  with the byte escaped and, when the file reads as Windows-1252 (Latin-1 and its
  Windows superset), a note that it looks like that encoding.
Every message says what to do: save the file as UTF-8, or check that it is the right file.
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path

from edge_asd.errors import UserError

SAVE_AS_UTF8 = "save the file as UTF-8 (in most editors: Save as, Encoding: UTF-8)"
MAX_SHOWN_CHARS = 80
# Byte-order marks of encodings we refuse, longest first: UTF-32-LE's starts with UTF-16-LE's.
FOREIGN_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
# Line breaks as YAML counts them, so our line numbers agree with the YAML parser's.
BYTE_BREAKS = re.compile(rb"\r\n|\r|\n")
TEXT_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def read_text_file(
    path: str | os.PathLike,
    what: str,
    error: type[UserError],
    show_lines: bool = True,
) -> str:
    """The text of `path`, UTF-8 (a UTF-8 byte-order mark dropped).

    `what` names the file in messages ("config", "calibration"); `error` is raised, naming
    the file and, for its content, the line and column (1-based) and what to do: missing,
    a directory, unreadable, UTF-16/32, NUL bytes, bytes that are not UTF-8. With
    `show_lines` False (a secret) no part of the content is quoted.
    """
    path = Path(path)
    data = _read_bytes(path, what, error)
    data = data.removeprefix(codecs.BOM_UTF8)
    _refuse_other_encodings(path, data, what, error)
    nul = data.find(b"\0")
    if nul >= 0:
        line, column, _ = locate_byte(data, nul)
        raise error(
            f"{path}:{line}:{column}: cannot read the {what}: a NUL byte (0x00): the file "
            f"looks binary or truncated, not text; check that it is the right file"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(_not_utf8_message(path, data, exc.start, what, show_lines)) from None


def _read_bytes(path: Path, what: str, error: type[UserError]) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise error(f"{path}: cannot read the {what}: it is a directory, not a file") from None
    except PermissionError:
        raise error(
            f"{path}: cannot read the {what}: permission denied; make it readable by the "
            f"user edge-asd runs as (ls -l {path})"
        ) from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None


def _refuse_other_encodings(path: Path, data: bytes, what: str, error: type[UserError]) -> None:
    """UTF-16/32 by their byte-order mark, or without one by their zero bytes."""
    encoding = next((name for bom, name in FOREIGN_BOMS if data.startswith(bom)), None)
    how = "it starts with that byte-order mark"
    if encoding is None:
        encoding, how = _bomless_utf16(data), "no byte-order mark, but every other byte is 0"
    if encoding is not None:
        raise error(
            f"{path}:1:1: cannot read the {what}: it is saved as {encoding} ({how}); {SAVE_AS_UTF8}"
        )


def _bomless_utf16(data: bytes) -> str | None:
    """'UTF-16' when the start of `data` is ASCII text with a zero byte after (or before)
    each character, as UTF-16 without a byte-order mark writes it."""
    head = data[:64] if len(data) % 2 == 0 else b""
    for zeros, chars in ((head[1::2], head[0::2]), (head[0::2], head[1::2])):
        if len(head) >= 4 and not zeros.strip(b"\0") and all(0 < c < 0x80 for c in chars):
            return "UTF-16"
    return None


def _not_utf8_message(path: Path, data: bytes, offset: int, what: str, show: bool) -> str:
    byte = data[offset]
    line, column, text = locate_byte(data, offset)
    shown = f' (line {line}: "{excerpt(text, column)}")' if show else ""
    try:
        character = bytes([byte]).decode("cp1252")
        data.decode("cp1252")
    except UnicodeDecodeError:
        guess = ""
    else:
        seen_as = f", where 0x{byte:02x} is {character!r}" if show else ""
        guess = f"; it looks like Windows-1252 or Latin-1{seen_as}"
    return (
        f"{path}:{line}:{column}: cannot read the {what}: byte 0x{byte:02x} is not UTF-8"
        f"{shown}{guess}: {SAVE_AS_UTF8}"
    )


def locate_byte(data: bytes, offset: int) -> tuple[int, int, str]:
    """(line, column, the line's text with undecodable bytes escaped) of byte `offset`;
    line and column are 1-based, the column counts characters."""
    breaks = list(BYTE_BREAKS.finditer(data, 0, offset))
    start = breaks[-1].end() if breaks else 0
    following = BYTE_BREAKS.search(data, offset)
    end = following.start() if following else len(data)
    column = len(data[start:offset].decode("utf-8", "replace")) + 1
    return len(breaks) + 1, column, data[start:end].decode("utf-8", "backslashreplace")


def locate_char(text: str, index: int) -> tuple[int, int, str]:
    """(line, column, the line) of character `index` of `text`, 1-based."""
    breaks = list(TEXT_BREAKS.finditer(text, 0, index))
    start = breaks[-1].end() if breaks else 0
    following = TEXT_BREAKS.search(text, index)
    end = following.start() if following else len(text)
    return len(breaks) + 1, index - start + 1, text[start:end]


def excerpt(line: str, column: int) -> str:
    """`line` cut to about MAX_SHOWN_CHARS around `column`, control characters escaped."""
    if len(line) > MAX_SHOWN_CHARS:
        start = max(0, column - 1 - MAX_SHOWN_CHARS // 2)
        cut = line[start : start + MAX_SHOWN_CHARS]
        line = ("..." if start else "") + cut + ("..." if start + len(cut) < len(line) else "")
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in line)
