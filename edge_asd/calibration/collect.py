"""What calibration needs of a machine's normal recordings, read once and kept small.

Each recording is streamed window by window through the engine exactly as `edge-asd
score` and the daemon stream it (`Engine.infer_streams`, then
edge_asd.scoring.features.window_features), and only each window's features are kept
(a few kB a window, not its 640 kB of audio). A few windows spread over all recordings,
the **probes**, are also kept as audio: after the pass, synthetic faults of every kind and
level (edge_asd.faults) and gain changes are made from each and run through the engine,
so that calibration can judge its choices by what they detect (edge_asd.calibration.select).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_asd.audio import SAMPLE_RATE
from edge_asd.calibration.honest import Probes
from edge_asd.calibration.select import GAIN_KIND, Cases
from edge_asd.engines.base import Engine
from edge_asd.faults import DEFAULT_LEVELS_DB, FAULT_KINDS, GAIN_CHANGES_DB, add_fault, apply_gain
from edge_asd.recording import WindowBatch
from edge_asd.scoring.features import WindowFeatures, window_features
from edge_asd.windows import window_starts

DEFAULT_PROBES = 24  # windows faults are made from: 24 x (5 kinds x 4 levels + 4 gains)
PROBE_BATCH = 8


@dataclass(frozen=True)
class Source:
    """One normal recording to calibrate on: its name, length, expected window count, and a
    function that streams its windows (a fresh stream at each call)."""

    name: str
    seconds: float
    n_windows: int
    windows: Callable[[], Iterator[WindowBatch]]
    new_condition: bool = False


@dataclass(frozen=True)
class CalibrationData:
    """Every window's features (recordings in order), the recordings, and the probes."""

    features: WindowFeatures
    counts: tuple[int, ...]  # windows per recording
    names: tuple[str, ...]
    seconds: tuple[float, ...]
    new_condition: tuple[bool, ...]
    probes: Probes
    cases: Cases

    @property
    def window_new_condition(self) -> np.ndarray:
        """bool [windows]: which windows belong to the new-condition set."""
        return np.repeat(np.asarray(self.new_condition, dtype=bool), self.counts)


def file_sources(
    recordings: Sequence[Any],
    *,
    window_samples: int,
    hop_samples: int,
    channel: int | None = None,
    batch_size: int = 8,
    new_condition: bool = False,
) -> list[Source]:
    """A Source per checked recording (edge_asd.calibration.inputs.Recording), streamed
    from its files; a tiled one (shorter than a window) gives one window."""
    sources = []
    for r in recordings:
        frames = round(r.seconds * SAMPLE_RATE)
        count = 1 if r.tiled else len(window_starts(frames, window_samples, hop_samples))
        stream = functools.partial(r.windows, channel, window_samples, hop_samples, batch_size)
        sources.append(Source(r.name, r.seconds, count, stream, new_condition))
    return sources


def pick_probes(counts: Sequence[int], n_probes: int, spacing: int) -> np.ndarray:
    """Global window indices of up to `n_probes` windows spread over all recordings,
    at least `spacing` windows apart where there is room (fewer shared samples)."""
    total = int(sum(counts))
    if total == 0 or n_probes < 1:
        return np.zeros(0, dtype=np.int64)
    step = max(1.0, total / n_probes)
    if step < spacing:  # not enough windows for disjoint probes: spread them evenly anyway
        step = max(1.0, total / min(n_probes, total))
    picks = np.unique(np.floor(np.arange(0, total, step)).astype(np.int64))
    return picks[:n_probes]


def collect(
    engine: Engine,
    sources: Sequence[Source],
    *,
    hop_samples: int,
    n_probes: int = DEFAULT_PROBES,
    seed: int = 0,
    advance: Callable[[int], object] | None = None,
) -> CalibrationData:
    """Stream every source through the engine, keep features and probes, then make and
    run the probes' faults. `advance(n)` is called as windows are done (a progress bar).

    Raises AudioFileError from a source that cannot be read (naming the file).
    """
    spacing = max(1, -(-engine.info.window_samples // hop_samples))
    wanted = set(pick_probes([s.n_windows for s in sources], n_probes, spacing).tolist())
    parts, counts, kept = [], [], {}
    first = 0
    for source in sources:
        count = 0
        for batch in source.windows():
            streams = [source.name] * len(batch)
            output = engine.infer_streams(batch.waveforms, streams, batch.end_samples)
            parts.append(window_features(output))
            for row in range(len(batch)):
                if first + count + row in wanted:
                    kept[first + count + row] = batch.waveforms[row].copy()
            count += len(batch)
            if advance is not None:
                advance(len(batch))
        counts.append(count)
        first += count
    engine.forget_streams()
    if not parts:
        raise ValueError("no window in any recording")
    probes, cases = run_probes(engine, kept, seed, advance)
    return CalibrationData(
        WindowFeatures.concat(parts),
        tuple(counts),
        tuple(s.name for s in sources),
        tuple(s.seconds for s in sources),
        tuple(s.new_condition for s in sources),
        probes,
        cases,
    )


def probe_cases() -> list[tuple[str, float]]:
    """(kind, level dB) of every probe variant: each fault at each level, then the gains."""
    faults = [(kind, level) for kind in FAULT_KINDS for level in DEFAULT_LEVELS_DB]
    return faults + [(GAIN_KIND, gain) for gain in GAIN_CHANGES_DB]


def make_variant(window: np.ndarray, kind: str, level_db: float, seed: int) -> np.ndarray:
    """One probe variant of a window: the same fault shape at every level for a seed."""
    if kind == GAIN_KIND:
        return apply_gain(window, level_db)
    return add_fault(window, kind, level_db, np.random.default_rng(seed))


def run_probes(
    engine: Engine,
    kept: dict[int, np.ndarray],
    seed: int,
    advance: Callable[[int], object] | None = None,
) -> tuple[Probes, Cases]:
    """Features of every variant of every kept window, with each one's source and case."""
    rows, sources, kinds, levels = [], [], [], []
    pending: list[np.ndarray] = []
    for index, window in sorted(kept.items()):
        for kind, level in probe_cases():
            variant_seed = zlib.crc32(f"{seed}/{index}/{kind}".encode())
            pending.append(make_variant(window, kind, level, variant_seed))
            sources.append(index)
            kinds.append(kind)
            levels.append(level)
            if len(pending) == PROBE_BATCH:
                rows.append(_run(engine, pending, advance))
                pending = []
    if pending:
        rows.append(_run(engine, pending, advance))
    if not rows:
        raise ValueError("no probe window to make synthetic faults from")
    probes = Probes(WindowFeatures.concat(rows), np.asarray(sources, dtype=np.int64))
    return probes, Cases(np.asarray(kinds), np.asarray(levels, dtype=np.float64))


def _run(engine: Engine, windows: list[np.ndarray], advance) -> WindowFeatures:
    features = window_features(engine.infer(np.stack(windows).astype(np.float32)))
    if advance is not None:
        advance(len(windows))
    return features
