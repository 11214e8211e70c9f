"""Every hop, the last window of every machine, in one batch.

Window k of a source ends (exclusive) at frame `window_samples + k * hop_samples` of that
source's stream, as `edge_asd.windows.sliding_windows` cuts a recording offline, so live
capture and offline scoring see the same windows for the same audio. A window exists
only once its source holds all of it (after any gap in the input).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge_asd.audio import WINDOW_SAMPLES
from edge_asd.capture.ringbuffer import FramesUnavailable
from edge_asd.capture.source import FAST, Source
from edge_asd.windows import hop_samples as to_hop_samples

MAX_POLL_SECONDS = 0.05  # longest sleep while waiting for frames: bounds the added latency


@dataclass(frozen=True)
class Machine:
    """A monitored machine: channel `channel` (0-based) of the source named `source`."""

    name: str
    source: str
    channel: int = 0


@dataclass(frozen=True)
class WindowBatch:
    """One hop's windows: row i of `waveforms` belongs to machine `names[i]`.

    `waveforms` float32 [n, window_samples]; `end_frames` int64 [n], the exclusive end of
    each window in its source's stream (frames at the model rate); `end_times` float64
    [n], the estimated UNIX time (s) its last sample was captured. A machine whose source
    had no new window this hop (stalled, reopening, finished) is absent.
    """

    names: tuple[str, ...]
    waveforms: np.ndarray
    end_frames: np.ndarray
    end_times: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class WindowerStats:
    """Counts of machine windows: handed over, skipped because the consumer was late
    (REALTIME only), and lost to gaps in the input (a reopened device)."""

    batches: int = 0
    windows: int = 0
    skipped: int = 0
    lost: int = 0


class Windower:
    """Cuts windows from `sources` for `machines`; `next_batch()` hands over each hop's batch.

    All sources must share one pacing. REALTIME: the batch holds each source's newest
    window; windows that came and went while the consumer was busy are skipped and
    counted, never queued; sources are never waited on, except that a batch waits up to
    one hop for sources still short of their next window, so machines of several devices
    stay in one batch. FAST: the windower pumps the sources itself, window after window,
    and skips nothing. Raises ValueError for an inconsistent set-up.
    """

    def __init__(
        self,
        sources: Mapping[str, Source],
        machines: Sequence[Machine],
        window_samples: int = WINDOW_SAMPLES,
        hop_seconds: float = 1.0,
    ) -> None:
        self.sources = dict(sources)
        self.machines = tuple(machines)
        self.window_samples = int(window_samples)
        rates = {source.sample_rate for source in self.sources.values()}
        if len(rates) != 1:
            raise ValueError(f"all sources must deliver one sample rate, not {sorted(rates)}")
        self.sample_rate = rates.pop()
        self.hop_samples = to_hop_samples(hop_seconds, self.sample_rate)
        self.hop_seconds = hop_seconds
        pacings = {source.pacing for source in self.sources.values()}
        if len(pacings) != 1:
            raise ValueError(f"sources mix pacings {sorted(pacings)}; use one pacing")
        self.pacing = pacings.pop()
        self._check_machines()
        self._next_index = {name: 0 for name in self.sources}  # next window index per source
        self._counts = {"batches": 0, "windows": 0, "skipped": 0, "lost": 0}

    def _check_machines(self) -> None:
        if not self.machines:
            raise ValueError("no machines to window")
        names = [machine.name for machine in self.machines]
        if len(set(names)) != len(names):
            raise ValueError(f"machine names repeat: {names}")
        for machine in self.machines:
            source = self.sources.get(machine.source)
            if source is None:
                raise ValueError(f"machine {machine.name!r}: no source {machine.source!r}")
            if not 0 <= machine.channel < source.channels:
                raise ValueError(
                    f"machine {machine.name!r}: channel {machine.channel} not in source "
                    f"{machine.source!r} ({source.channels} channels)"
                )
            if source.ring.capacity_frames < self.window_samples + self.hop_samples:
                raise ValueError(
                    f"source {machine.source!r}: its ring holds fewer frames than a window "
                    "and a hop"
                )

    @property
    def stats(self) -> WindowerStats:
        return WindowerStats(**self._counts)

    def end_frame(self, index: int) -> int:
        """The exclusive end frame of window `index` (0-based) of every source."""
        return self.window_samples + index * self.hop_samples

    def next_batch(self, timeout: float | None = None) -> WindowBatch | None:
        """The next hop's batch; None after `timeout` seconds, or when all sources ended.

        `exhausted` tells the two apart: True once no source will ever give a window again.
        """
        if self.pacing == FAST:
            return self._next_fast()
        return self._next_realtime(timeout)

    @property
    def exhausted(self) -> bool:
        """True when every source finished and its last window was handed over."""
        return all(
            source.health().finished and self._ready_index(name) < 0
            for name, source in self.sources.items()
        )

    def __iter__(self) -> Iterator[WindowBatch]:
        """Batches until every source has finished (forever for live devices)."""
        while True:
            batch = self.next_batch(timeout=1.0)
            if batch is not None:
                yield batch
            elif self.exhausted:
                return

    def _newest_index(self, name: str) -> int:
        """Index of the newest window `name`'s ring holds whole, or -1 when none."""
        total = self.sources[name].ring.total_frames
        return max((total - self.window_samples) // self.hop_samples, -1)

    def _first_continuous_index(self, name: str) -> int:
        """The first window index starting at or after the source's last gap."""
        return -(-self.sources[name].ring.continuous_from // self.hop_samples)

    def _next_fast(self) -> WindowBatch | None:
        """FAST: pump every source to the next window end and take that window of each."""
        ready: dict[str, int] = {}
        for name, source in self.sources.items():
            index = max(self._next_index[name], self._first_continuous_index(name))
            source.pump(self.end_frame(index))
            if self._newest_index(name) >= index:
                ready[name] = index
        return self._take(ready)

    def _next_realtime(self, timeout: float | None) -> WindowBatch | None:
        """REALTIME: wait for new windows, then take the newest of each source."""
        deadline = None if timeout is None else time.monotonic() + timeout
        first_ready_at: float | None = None
        while True:
            ready = {
                name: index for name in self.sources if (index := self._ready_index(name)) >= 0
            }
            now = time.monotonic()
            healths = {name: source.health() for name, source in self.sources.items()}
            if ready:
                # wait (up to a hop) only for sources delivering audio, not for dead ones
                waiting = [n for n, health in healths.items() if n not in ready and health.ok]
                first_ready_at = now if first_ready_at is None else first_ready_at
                if not waiting or now - first_ready_at >= self.hop_seconds:
                    return self._take(ready)
            elif all(health.finished for health in healths.values()):
                return None  # every source finished and was read to its end
            if deadline is not None and now >= deadline:
                return None
            time.sleep(
                self._poll_seconds([n for n in self.sources if n not in ready], deadline, now)
            )

    def _ready_index(self, name: str) -> int:
        """The newest whole window of source `name` not handed over yet, or -1."""
        index = self._newest_index(name)
        first = max(self._next_index[name], self._first_continuous_index(name))
        return index if index >= first else -1

    def _poll_seconds(self, names: list[str], deadline: float | None, now: float) -> float:
        """Sleep until about when the next window of `names` can be complete, within limits."""
        frames_short = min(
            self.end_frame(max(self._next_index[name], self._first_continuous_index(name)))
            - self.sources[name].ring.total_frames
            for name in names
        )
        seconds = max(frames_short / self.sample_rate, 0.002)
        if deadline is not None:
            seconds = min(seconds, max(deadline - now, 0.0))
        return min(seconds, MAX_POLL_SECONDS)

    def _take(self, ready: dict[str, int]) -> WindowBatch | None:
        """Read window `ready[source]` of every machine of those sources into one batch."""
        while ready:
            try:
                return self._read_batch(ready)
            except FramesUnavailable:
                # the consumer is so late that the ring wrapped past a window while it was
                # read: take the newest again (REALTIME only; FAST never overwrites unread)
                ready = {name: index for name in ready if (index := self._ready_index(name)) >= 0}
        return None

    def _read_batch(self, ready: dict[str, int]) -> WindowBatch | None:
        machines = [machine for machine in self.machines if machine.source in ready]
        waveforms = np.empty((len(machines), self.window_samples), dtype=np.float32)
        end_frames = np.empty(len(machines), dtype=np.int64)
        end_times = np.empty(len(machines), dtype=np.float64)
        for row, machine in enumerate(machines):
            ring = self.sources[machine.source].ring
            end = self.end_frame(ready[machine.source])
            ring.read(end, self.window_samples, machine.channel, out=waveforms[row])
            end_frames[row] = end
            end_times[row] = ring.frame_time(end)
        self._count(ready)
        if not machines:
            return None
        return WindowBatch(tuple(m.name for m in machines), waveforms, end_frames, end_times)

    def _count(self, ready: dict[str, int]) -> None:
        """Advance each source past its window; count the windows skipped or lost before it."""
        for name, index in ready.items():
            n_machines = sum(machine.source == name for machine in self.machines)
            first_continuous = self._first_continuous_index(name)
            passed = range(self._next_index[name], index)
            lost = sum(1 for i in passed if i < first_continuous)
            self._counts["lost"] += lost * n_machines
            self._counts["skipped"] += (len(passed) - lost) * n_machines
            self._counts["windows"] += n_machines
            self._next_index[name] = index + 1
        self._counts["batches"] += 1
