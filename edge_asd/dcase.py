"""The DCASE 2022 Task 2 file layout: `<root>/<type>/{train,test}/section_XX_<domain>_...wav`.

File names read `section_XX_<source|target>_<train|test>_<normal|anomaly>_NNNN[_attrs].wav`,
where attrs are `_<key>_<value>` pairs (e.g. `_flight_0r01_seg_03`). Training, calibration,
evaluation and the quality report all read clips through `list_clips`, which walks a
folder as every input folder is walked (edge_asd.input_files).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from edge_asd.errors import UserError
from edge_asd.input_files import (
    AUDIO_SUFFIXES,
    NO_AUDIO,
    Skipped,
    skip_reason,
    summary,
    walk_inputs,
)

log = logging.getLogger(__name__)

NOT_NAMED = "not named in the DCASE form"
_NAME = re.compile(
    r"section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<split>train|test)_"
    r"(?P<condition>normal|anomaly)_(?P<index>\d+)(?:_(?P<attrs>.+))?$"
)


@dataclass(frozen=True)
class Clip:
    """One clip of a DCASE-layout tree, with what its name says."""

    path: Path
    machine_type: str
    section: str  # two digits, e.g. "00"
    domain: str  # source | target
    split: str  # train | test
    condition: str  # normal | anomaly
    index: int
    attributes: str  # what follows the index, "" when nothing does

    @property
    def is_anomaly(self) -> bool:
        return self.condition == "anomaly"

    def attribute(self, key: str) -> str | None:
        """The value after `key` in the attribute pairs, or None."""
        parts = self.attributes.split("_") if self.attributes else []
        for i in range(0, len(parts) - 1):
            if parts[i] == key:
                return parts[i + 1]
        return None


def parse_clip(path: str | Path, machine_type: str | None = None) -> Clip | None:
    """The Clip a path names, or None when its name is not in the DCASE form."""
    path = Path(path)
    match = _NAME.match(path.stem)
    if not match or path.suffix.lower() not in AUDIO_SUFFIXES:
        return None
    return Clip(
        path=path,
        machine_type=machine_type or path.parent.parent.name,
        section=match["section"],
        domain=match["domain"],
        split=match["split"],
        condition=match["condition"],
        index=int(match["index"]),
        attributes=match["attrs"] or "",
    )


def machine_types(root: str | Path) -> list[str]:
    """Machine types (sub-folders holding train/ or test/) under a DCASE root, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such directory")
    return sorted(
        d.name
        for d in root.iterdir()
        if skip_reason(d.name) is None and ((d / "train").is_dir() or (d / "test").is_dir())
    )


def list_clips(root: str | Path, machine_type: str, split: str) -> list[Clip]:
    """Every clip under `<root>/<machine_type>/<split>/`, in path order.

    The folder is walked as every input folder is (edge_asd.input_files: links followed,
    hidden, system and non-audio files left out); files not named in the DCASE form are
    left out too. Logs a summary of what was used and left out (INFO), each path left out
    (DEBUG) and each problem, such as a broken link (WARNING). Raises UserError when the
    folder is missing or holds no clip named in the DCASE form (naming up to three of the
    files that are there).
    """
    folder = Path(root) / machine_type / split
    if not folder.is_dir():
        raise UserError(f"{folder}: no such directory (expected the DCASE 2022 layout)")
    found = walk_inputs([folder])
    skipped = [s for s in found.skipped if s.reason != NO_AUDIO]
    clips = []
    for path in found.files:
        clip = parse_clip(path, machine_type)
        if clip is None:
            skipped.append(Skipped(path, NOT_NAMED))
        else:
            clips.append(clip)
    _log_listing(folder, [c.path for c in clips], skipped)
    if not clips:
        named = sorted(skipped, key=lambda s: s.reason != NOT_NAMED)  # misnamed audio first
        shown = ", ".join(s.path.name for s in named[:3]) or "nothing"
        raise UserError(
            f"{folder}: no clip named section_XX_<source|target>_{split}_<normal|anomaly>_NNNN"
            f"[_attrs].wav (found {shown})"
        )
    return clips


def _log_listing(folder: Path, used: list[Path], skipped: list[Skipped]) -> None:
    log.info("%s: %s", folder, summary(used, skipped))
    for item in skipped:
        if item.problem:
            log.warning("left out: %s", item)
        else:
            log.debug("skipped %s", item)


def group_recordings(clips: list[Clip], key: str) -> dict[tuple[str, ...], list[Clip]]:
    """Clips grouped into the recordings they were cut from, each group in `seg` order.

    A recording is (section, domain, condition, value of `key`), e.g. key="flight" for
    uav_propeller or "rec" for sensiml_fan. Clips without `key` form one group each.
    """
    groups: dict[tuple[str, ...], list[Clip]] = defaultdict(list)
    for clip in clips:
        value = clip.attribute(key)
        ident = value if value is not None else f"#{clip.path.name}"
        groups[(clip.section, clip.domain, clip.condition, ident)].append(clip)
    for members in groups.values():
        members.sort(key=lambda c: (int(c.attribute("seg") or 0), c.index))
    return dict(groups)
