"""What a file or folder given as input contributes: the one policy every command follows.

A file named explicitly is always used (whatever its name; reading it is what tells whether
it is audio). A folder is walked recursively, in sorted order, and contributes its WAV and
FLAC files (the suffix decides, case-insensitively). Links are followed, to files and to
folders, also onto other disks. Everything else is left out, each with its reason:

- hidden: a name starting with '.' (a hidden folder is not walked)
- system file: what an operating system leaves behind (.DS_Store, Thumbs.db, desktop.ini,
  AppleDouble `._x.wav`, `__MACOSX/`, `$RECYCLE.BIN/`, `lost+found/`, ...)
- not WAV or FLAC: audio of another format (.mp3, .ogg, ...): convert it to use it
- not audio: any other suffix
- duplicate: a file already reached by another path (a link, a hard link, a folder given
  twice); the first path in order is used
- link loop: a link to a folder that contains it (walked once, never again)
- folder reached twice: a folder already walked by another path
- not a regular file: a pipe, socket or device found in a folder

Problems are left out too but marked so a command can refuse them (calibrate does, unless
--skip-bad-files): a path that does not exist, a broken link, a folder that cannot be read
(permission), and a folder given that holds no WAV or FLAC file.

Runs on Python 3.10: `os.walk(followlinks=True)` because `Path.rglob` follows no folder link
there; loops are cut by the (device, inode) of every folder walked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac")
OTHER_AUDIO_SUFFIXES = frozenset(
    {".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma", ".caf", ".au"}
)
SYSTEM_NAMES = frozenset(
    {
        ".ds_store",
        "thumbs.db",
        "ehthumbs.db",
        "desktop.ini",
        "__macosx",
        "$recycle.bin",
        "system volume information",
        "lost+found",
        ".spotlight-v100",
        ".trashes",
        ".fseventsd",
        ".apdisk",
        ".localized",
    }
)

HIDDEN = "hidden"
SYSTEM = "system file"
OTHER_AUDIO = "not WAV or FLAC"
NOT_AUDIO = "not audio"
DUPLICATE = "duplicate"
LOOP = "link loop"
REVISITED = "folder reached twice"
NOT_REGULAR = "not a regular file"
MISSING = "no such file or folder"
BROKEN_LINK = "broken link"
UNREADABLE = "unreadable"
NO_AUDIO = "folder holds no .wav or .flac file"
PLURALS = {
    SYSTEM: "system files",
    DUPLICATE: "duplicates",
    LOOP: "link loops",
    REVISITED: "folders reached twice",
    NOT_REGULAR: "not regular files",
    BROKEN_LINK: "broken links",
    NO_AUDIO: "folders holding no .wav or .flac file",
}
SHOWN_PER_REASON = 3  # names a summary shows of each reason


@dataclass(frozen=True)
class Skipped:
    """A path left out, why, and whether it is a problem a command may refuse."""

    path: Path
    reason: str
    detail: str = ""  # e.g. "same file as a/b.wav", "to /mnt/gone"
    problem: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class InputFiles:
    """The files to use, in order, and every path left out with its reason."""

    files: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def problems(self) -> list[Skipped]:
        return [s for s in self.skipped if s.problem]

    def summary(self) -> str:
        """One line: "6 files used; 3 skipped: 1 hidden (.x), 2 not audio (a.txt, b.csv)"."""
        return summary(self.files, self.skipped)


def walk_inputs(paths: Sequence[str | os.PathLike]) -> InputFiles:
    """The files `paths` contribute under the policy of this module's docstring.

    Never raises for a user's path: every path left out is in `skipped`, problems marked.
    """
    walker = _Walker()
    for given in paths:
        walker.add_root(Path(given))
    return InputFiles(walker.files, walker.skipped)


def skip_reason(name: str) -> str | None:
    """Why a file or folder found in a folder is left out by its name alone, or None."""
    if name.lower() in SYSTEM_NAMES or name.startswith("._"):
        return SYSTEM
    if name.startswith("."):
        return HIDDEN
    return None


def audio_reason(name: str) -> str | None:
    """Why a file found in a folder is not used as audio, by its suffix, or None."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in AUDIO_SUFFIXES:
        return None
    return OTHER_AUDIO if suffix in OTHER_AUDIO_SUFFIXES else NOT_AUDIO


def summary(files: Sequence[Path], skipped: Iterable[Skipped]) -> str:
    """ "N files used; M skipped: a <reason> (names), ..." with a few names per reason."""
    skipped = list(skipped)
    used = f"{len(files)} file{'' if len(files) == 1 else 's'} used"
    if not skipped:
        return f"{used}; none skipped"
    return f"{used}; {len(skipped)} skipped: {counted_reasons(skipped)}"


def counted_reasons(skipped: Sequence[Skipped]) -> str:
    """ "2 hidden (.a, .b), 1 not audio (x.txt)": each reason, its count, a few names."""
    by_reason: dict[str, list[Skipped]] = {}
    for item in skipped:
        by_reason.setdefault(item.reason, []).append(item)
    parts = []
    for reason, items in by_reason.items():
        names = [item.path.name or str(item.path) for item in items[:SHOWN_PER_REASON]]
        more = len(items) - len(names)
        shown = ", ".join(names) + (f" and {more} more" if more else "")
        counted = PLURALS.get(reason, reason) if len(items) > 1 else reason
        parts.append(f"{len(items)} {counted} ({shown})")
    return ", ".join(parts)


class _Walker:
    """Roots walked one after the other, sharing what was already reached."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.skipped: list[Skipped] = []
        self._files_seen: dict[tuple[int, int], Path] = {}
        self._folders_seen: dict[tuple[int, int], Path] = {}

    def add_root(self, path: Path) -> None:
        if not os.path.lexists(path):
            self._skip(path, MISSING, problem=True)
        elif not os.path.exists(path):
            self._skip(path, BROKEN_LINK, _link_target(path), problem=True)
        elif path.is_dir():
            self._add_folder(path)
        elif path.is_file():
            self._use(path)
        else:
            self._skip(path, NOT_REGULAR, problem=True)

    def _add_folder(self, root: Path) -> None:
        found: list[Path] = []
        before = len(self.skipped)
        entered = self._enter(root, None)  # not when walked already as another path
        if entered:
            for dirpath, dirnames, filenames in os.walk(
                root, onerror=self._unreadable, followlinks=True
            ):
                folder = Path(dirpath)
                dirnames[:] = [d for d in sorted(dirnames) if self._enter(folder / d, folder)]
                found += [f for f in map(folder.joinpath, sorted(filenames)) if self._is_audio(f)]
        for path in sorted(found):  # the order of the whole tree, as `ls -R` sorted would
            self._use(path)
        if entered and not found and not any(s.problem for s in self.skipped[before:]):
            self._skip(root, NO_AUDIO, counted_reasons(self.skipped[before:]), problem=True)

    def _enter(self, folder: Path, parent: Path | None) -> bool:
        """Whether to walk `folder`; when not, says why."""
        reason = skip_reason(folder.name) if parent is not None else None
        if reason:
            return self._skip(folder, reason)
        target = os.path.realpath(folder)
        if parent is not None and Path(os.path.realpath(parent)).is_relative_to(target):
            return self._skip(folder, LOOP, f"to {target}, which holds it")
        try:
            identity = _identity(folder)
        except OSError as exc:
            return self._unreadable(exc)
        first = self._folders_seen.setdefault(identity, folder)
        return first is folder or self._skip(folder, REVISITED, f"already walked as {first}")

    def _is_audio(self, path: Path) -> bool:
        """Whether a file found in a folder is audio to use; when not, says why."""
        reason = skip_reason(path.name)
        if reason is None and os.path.islink(path) and not os.path.exists(path):
            return self._skip(path, BROKEN_LINK, _link_target(path), problem=True)
        if reason is None and not path.is_file():
            reason = NOT_REGULAR
        reason = reason or audio_reason(path.name)
        return self._skip(path, reason) if reason else True

    def _use(self, path: Path) -> None:
        try:
            identity = _identity(path)
        except OSError as exc:  # a file in a folder that cannot be searched
            self._unreadable(exc)
            return
        first = self._files_seen.setdefault(identity, path)
        if first is path:
            self.files.append(path)
        else:
            self._skip(path, DUPLICATE, f"same file as {first}")

    def _unreadable(self, error: OSError) -> bool:
        path = Path(error.filename or "?")
        return self._skip(path, UNREADABLE, error.strerror or str(error), problem=True)

    def _skip(self, path: Path, reason: str, detail: str = "", problem: bool = False) -> bool:
        self.skipped.append(Skipped(path, reason, detail, problem))
        return False


def _identity(path: Path) -> tuple[int, int]:
    """(device, inode) of what `path` leads to: the same for every link to it."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _link_target(path: Path) -> str:
    """ "to <where the link points>", for a broken link's message."""
    try:
        return f"to {os.readlink(path)}"
    except OSError:  # not a link after all: a path that vanished or cannot be reached
        return ""
