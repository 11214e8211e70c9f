"""Writing a file whole or not at all: the one atomic write of the project.

A reader of `path` sees the old file or the new one, never half of either: the data goes
to a temporary file in the same folder (`.{name}.XXXXXXXX.tmp`, made by tempfile.mkstemp:
O_EXCL, never an existing file nor a link), gets its mode, is fsynced when `durable`, and
is renamed over `path` (os.replace, atomic on POSIX within one file system); the folder is
fsynced when `durable`, so that the rename itself survives a power cut. On any error the
temporary file is removed and the error raised.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600  # what the daemon writes names machines and faults: the owner's only
TEMPORARY_SUFFIX = ".tmp"


def temporary_prefix(name: str) -> str:
    """The prefix of `name`'s temporary files in its folder (`.{name}.`)."""
    return f".{name}."


def is_temporary_of(entry: str, name: str) -> bool:
    """Whether the folder entry `entry` is a temporary file of write_atomic for `name`."""
    return entry.startswith(temporary_prefix(name)) and entry.endswith(TEMPORARY_SUFFIX)


def write_atomic(
    path: str | os.PathLike, data: bytes, *, mode: int = FILE_MODE, durable: bool = True
) -> None:
    """Write `data` as `path`, whole or not at all, with permission bits `mode`.

    `durable`: fsync the file and its folder, so that the new file survives a power cut
    (costs a few ms on an SD card); without it a crash may leave the old file or none, never
    half. The folder must exist. Raises the OSError of the write (the temporary is removed).
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(
        prefix=temporary_prefix(path.name), suffix=TEMPORARY_SUFFIX, dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as out:
            os.fchmod(out.fileno(), mode)  # mkstemp makes 0600; the umask does not apply
            out.write(data)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX: fsync of the folder itself)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # a folder that cannot be opened for reading: the file is written all the same
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the data itself is synced
    finally:
        os.close(fd)
