"""The frame-local front end of a split model, each frame computed once per stream.

Frame t of a window starting at stream sample `a` covers samples [a + t*hop - n_fft/2,
+ n_fft). Interior frames (inside the window) depend only on the stream, so their
columns (log-mel, and the Tgram's first conv) are kept per stream, keyed by the frame's
first sample, and reused by every later window that holds the same frame: at a 10 s
window and a 1 s hop (16000 samples, not a multiple of the 512-sample STFT hop), the
frame grids of consecutive windows are 128 samples apart and repeat every 4 hops, so
each window computes about 125 of its 311 interior frames. The few frames at each edge
pad the window (reflect for the log-mel, zeros for the Tgram) and are computed per window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_asd.engines.split_graph import FRAMES, LOGMEL_COLUMNS, POWER, TGRAM_COLUMNS, SplitModel
from edge_asd.model_file import ModelInfo


@dataclass
class _Columns:
    """One stream's computed interior frames: first samples (sorted) and their columns."""

    positions: np.ndarray  # int64 [n]
    logmel: np.ndarray  # float32 [n, n_mels]
    tgram: np.ndarray | None  # float32 [n, C]


@dataclass
class _Work:
    """A batch's frames to compute: power rows and Tgram frame rows, in order."""

    power: list[np.ndarray]
    frames: list[np.ndarray]
    count: int = 0  # rows scheduled so far (the same in both lists)

    def add(self, power: np.ndarray, frames: np.ndarray) -> slice:
        self.power.append(power)
        self.frames.append(frames)
        self.count += len(power)
        return slice(self.count - len(power), self.count)


class FrontEnd:
    """Log-mel [B, n_mels, T] and Tgram first-conv [B, C, T] features of window batches.

    `columns` is an onnxruntime session of the split's columns graph. Streams are named
    by the caller (a machine); `forget()` drops every stream's frames.
    """

    def __init__(self, split: SplitModel, info: ModelInfo, columns) -> None:
        fe = info.front_end
        self.n_fft, self.hop, self.n_frames = fe.n_fft, fe.hop_length, fe.frames
        self.half = fe.n_fft // 2
        self.window_samples = info.window_samples
        self.window = np.asarray(split.window, dtype=np.float32)
        self.n_mels = fe.n_mels
        self.has_tgram = split.tgram_input is not None
        self._columns = columns
        starts = np.arange(self.n_frames) * self.hop - self.half  # first sample, in the window
        inside = (starts >= 0) & (starts + self.n_fft <= self.window_samples)
        self.interior = np.flatnonzero(inside)  # consecutive frames, `hop` apart
        self.edges = np.flatnonzero(~inside)
        self.interior_starts = starts[self.interior]
        self._streams: dict[str, _Columns] = {}

    def forget(self) -> None:
        self._streams.clear()

    def features(
        self,
        waveforms: np.ndarray,
        streams: Sequence[str] | None = None,
        window_starts: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Features of float32 windows [B, window_samples].

        With `streams` (a name per row) and `window_starts` (each row's first sample in
        its stream, int), interior frames already computed for a stream are reused and new
        ones kept; rows of one stream must come in stream order, across calls too.
        """
        work = _Work([], [])
        if streams is None:
            fresh = [work.add(self._power(f), f) for f in map(self._frames, waveforms)]
        else:
            needed = [int(start) + self.interior_starts for start in window_starts]
            pending = self._schedule(waveforms, streams, needed, work)
        edges = [self._edge_work(w, work) for w in waveforms]
        logmel_cols, tgram_cols = self._run(work)
        if streams is not None:
            self._store(pending, logmel_cols, tgram_cols)
        logmel = np.empty((len(waveforms), self.n_mels, self.n_frames), dtype=np.float32)
        tgram = None
        if tgram_cols is not None:
            tgram = np.empty((len(waveforms), tgram_cols.shape[1], self.n_frames), np.float32)
        for row, edge in enumerate(edges):
            if streams is None:
                lm, tg = logmel_cols[fresh[row]], _rows(tgram_cols, fresh[row])
            else:
                lm, tg = self._read(streams[row], needed[row])
            logmel[row][:, self.interior] = lm.T
            logmel[row][:, self.edges] = logmel_cols[edge].T
            if tgram is not None:
                tgram[row][:, self.interior] = tg.T
                tgram[row][:, self.edges] = tgram_cols[edge].T
        if streams is not None:
            for stream, needs in zip(streams, needed, strict=True):
                self._evict(stream, int(needs[0]))
        return logmel, tgram

    def _frames(self, waveform: np.ndarray) -> np.ndarray:
        """The interior frames of a window, a strided view [n_interior, n_fft]."""
        first = self.interior_starts[0]
        return np.lib.stride_tricks.as_strided(
            waveform[first:],
            shape=(len(self.interior), self.n_fft),
            strides=(self.hop * waveform.strides[0], waveform.strides[0]),
            writeable=False,
        )

    def _power(self, frames: np.ndarray) -> np.ndarray:
        spectrum = np.fft.rfft(frames * self.window, axis=1)
        return (spectrum.real**2 + spectrum.imag**2).astype(np.float32, copy=False)

    def _edge_work(self, waveform: np.ndarray, work: _Work) -> slice:
        """Edge frames: reflect padding for the log-mel, zeros for the Tgram (as the graph).

        Only the window's two ends are padded (`_edge_frames`), not the whole window.
        """
        reflect, zeros = self._edge_frames(waveform)
        return work.add(self._power(reflect), zeros)

    def _edge_frames(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The edge frames [n_edges, n_fft], reflect-padded and zero-padded, in frame order."""
        starts = self.edges * self.hop - self.half  # first sample, in the window
        left = starts < 0  # the others run past the window's end
        reflect, zeros = [], []
        if left.any():
            # reflecting `half` samples needs half + 1 of them
            segment = waveform[: max(starts[left].max() + self.n_fft, self.half + 1)]
            index = (starts[left] + self.half)[:, None] + np.arange(self.n_fft)
            reflect.append(np.pad(segment, (self.half, 0), mode="reflect")[index])
            zeros.append(np.pad(segment, (self.half, 0))[index])
        if (~left).any():
            first = min(starts[~left].min(), len(waveform) - self.half - 1)
            segment = waveform[first:]
            index = (starts[~left] - first)[:, None] + np.arange(self.n_fft)
            reflect.append(np.pad(segment, (0, self.half), mode="reflect")[index])
            zeros.append(np.pad(segment, (0, self.half))[index])
        return np.concatenate(reflect), np.concatenate(zeros)

    def _schedule(self, waveforms, streams, needed, work: _Work) -> dict[str, list]:
        """Schedule each stream's interior frames that no earlier window computed, once.

        Returns {stream: [(positions, rows of the batch's work), ...]}.
        """
        pending: dict[str, list[tuple[np.ndarray, slice]]] = {}
        for waveform, stream, positions in zip(waveforms, streams, needed, strict=True):
            known = [p for p, _ in pending.get(stream, [])]
            cached = self._streams.get(stream)
            if cached is not None:
                known.append(cached.positions)
            new = ~np.isin(positions, np.concatenate(known)) if known else None
            if new is not None and not new.any():
                continue
            frames = self._frames(waveform)
            if new is not None:
                frames, positions = np.ascontiguousarray(frames[new]), positions[new]
            rows = work.add(self._power(frames), frames)
            pending.setdefault(stream, []).append((positions, rows))
        return pending

    def _store(self, pending: dict[str, list], logmel_cols, tgram_cols) -> None:
        """Add the batch's new columns to each stream's store, sorted by position."""
        for stream, parts in pending.items():
            old = self._streams.get(stream)
            positions = [p for p, _ in parts]
            logmel = [logmel_cols[rows] for _, rows in parts]
            tgram = [_rows(tgram_cols, rows) for _, rows in parts]
            if old is not None:
                positions.insert(0, old.positions)
                logmel.insert(0, old.logmel)
                tgram.insert(0, old.tgram)
            all_positions = np.concatenate(positions)
            order = np.argsort(all_positions, kind="stable")
            self._streams[stream] = _Columns(
                all_positions[order],
                np.concatenate(logmel)[order],
                None if tgram_cols is None else np.concatenate(tgram)[order],
            )

    def _read(self, stream: str, needed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        cached = self._streams[stream]
        index = np.searchsorted(cached.positions, needed)
        return cached.logmel[index], _rows(cached.tgram, index)

    def _evict(self, stream: str, keep_from: int) -> None:
        """Drop a stream's frames before `keep_from`: no later window starts before it."""
        cached = self._streams[stream]
        first = int(np.searchsorted(cached.positions, keep_from))
        if first:
            self._streams[stream] = _Columns(
                cached.positions[first:],
                cached.logmel[first:],
                _rows(cached.tgram, slice(first, None)),
            )

    def _run(self, work: _Work) -> tuple[np.ndarray, np.ndarray | None]:
        feeds = {POWER: np.concatenate(work.power)}
        names = [LOGMEL_COLUMNS]
        if self.has_tgram:
            feeds[FRAMES] = np.concatenate(work.frames).astype(np.float32, copy=False)
            names.append(TGRAM_COLUMNS)
        outputs = self._columns.run(names, feeds)
        return outputs[0], (outputs[1] if self.has_tgram else None)


def _rows(columns: np.ndarray | None, rows) -> np.ndarray | None:
    return None if columns is None else columns[rows]
