"""The split engine: the model's split (made at export, edge_asd.engines.split_graph) run
with onnxruntime; the same outputs as model.onnx within `TOLERANCES`, measured at export.

Speed comes from four things, each measured by `edge-asd bench` (docs/benchmarks.md): the
DFT done as an FFT instead of a 1026 x 1024 convolution; the PRelu rewrite that keeps
onnxruntime's backbone in one memory layout; through `infer_streams`, every frame of a
stream computed once instead of once per window that holds it (10 times at a 1 s hop);
and the windows of a batch run side by side on `threads` worker threads, one onnxruntime
thread each, while a single window runs alone on `threads` onnxruntime threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edge_asd.engines.base import EngineOutput
from edge_asd.engines.front_end import FrontEnd
from edge_asd.engines.onnx_engine import (
    ONNX_FLOAT,
    TensorSpec,
    check_spec,
    check_waveforms,
    describe_session,
    session_options,
)
from edge_asd.engines.split_graph import (
    FRAMES,
    LOGMEL_COLUMNS,
    POWER,
    TGRAM_COLUMNS,
    SplitModel,
    load_split,
)
from edge_asd.errors import ModelFileError
from edge_asd.model_file import ModelInfo

# Largest differences from model.onnx accepted, on outputs of generated windows: the
# log-mel in dB; the embedding relative to its norm; the logits (scaled cosines)
# absolute. Float32 rounding in another order gives about a tenth of these.
TOLERANCES = {"logmel_db": 0.05, "embedding_relative": 1e-4, "logits": 2e-3}
# What those allow the scores to differ by: a knn score (a cosine distance) by about
# twice the embedding's relative change; a section score (a difference of two
# log-sum-exps of the logits) by twice the logits'.
SCORE_TOLERANCES = {"knn": 2e-4, "section": 4e-3}
NETWORK_OUTPUTS = ["embedding", "logits"]


class FastOnnxEngine:
    """model.onnx's split; see `edge_asd.engines.base.Engine`.

    One window per network run: the activations of one window stay in cache, and the
    arena does not grow with the number of machines (docs/benchmarks.md). A batch of
    several windows runs them on `threads` worker threads at once, each run on one
    onnxruntime thread of a second session (made at the first such batch); a single
    window runs on `threads` onnxruntime threads. On two quiet cores, batches of 4 and 8
    windows of one stream ran at 1.65 x the windows/s of one window at a time on two
    threads; one window on two threads took 0.72 x the time it took on one. The second
    session costs memory: +23 MB for an 8-machine daemon (docs/benchmarks.md).

    `split`: the split to run (default: the one model.yaml names, read and checked);
    `workers`: windows of a batch run side by side (default `threads`, else one per core;
    1: one window at a time on `threads` onnxruntime threads, as before).
    Raises ModelFileError when the split's files are missing, changed, or contradict
    model.yaml; SplitUnavailable for a split of a derivation this runtime does not read.
    """

    name = "onnxruntime"
    description = "onnxruntime (split model: front end per frame, network per window)"

    def __init__(
        self,
        info: ModelInfo,
        threads: int | None = None,
        split: SplitModel | None = None,
        workers: int | None = None,
    ) -> None:
        self.info = info
        self.fallback_reason: str | None = None
        split = load_split(info) if split is None else split
        threads_or_cores = threads if threads is not None else (os.cpu_count() or 1)
        self.workers = threads_or_cores if workers is None else workers
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        self._network_bytes = split.network if self.workers > 1 else None
        self._network = _network_session(split.network, threads)
        # a few small matrix products per hop: one thread, no hand-offs
        self._columns = _session(split.columns, session_options(1, arena=False))
        self._inputs = [split.logmel_input] + ([split.tgram_input] if split.tgram_input else [])
        self._check(split)
        self.front_end = FrontEnd(split, self.info, self._columns)
        self.providers: list[str] = list(self._network.get_providers())
        self._parallel = None  # the one-thread session the worker threads share
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def warm_up(self, batch_size: int = 1) -> None:
        """Run once on silence so that the first real window is not slow: one window, or
        a batch of up to `threads` windows where batches of `batch_size` run side by side."""
        rows = 1 if batch_size < 2 else min(batch_size, self.workers)
        self.infer(np.zeros((rows, self.info.window_samples), dtype=np.float32))

    def infer(self, waveforms: np.ndarray) -> EngineOutput:
        """Outputs for waveforms float32 [B, window_samples]; raises ValueError on others."""
        check_waveforms(waveforms, self.info.window_samples)
        return self._network_outputs(*self.front_end.features(waveforms))

    def infer_streams(
        self, waveforms: np.ndarray, streams: Sequence[str], end_frames: np.ndarray
    ) -> EngineOutput:
        """Like `infer`, for windows of named streams: row i is the window of stream
        `streams[i]` ending (exclusive) at its sample `end_frames[i]`. Frames a stream's
        earlier windows computed are reused; a stream's rows must come in stream order."""
        check_waveforms(waveforms, self.info.window_samples)
        starts = np.asarray(end_frames, dtype=np.int64) - self.info.window_samples
        return self._network_outputs(*self.front_end.features(waveforms, streams, starts))

    def forget_streams(self) -> None:
        """Drop every stream's frames (after a restart of the sources, say)."""
        self.front_end.forget()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool = None
            self._network = self._parallel = self._columns = None

    def _network_outputs(self, logmel: np.ndarray, tgram: np.ndarray | None) -> EngineOutput:
        if self._network is None:
            raise RuntimeError("the engine is closed")

        def feeds(row: int) -> dict[str, np.ndarray]:
            feed = {self._inputs[0]: logmel[row : row + 1]}
            if tgram is not None:
                feed[self._inputs[1]] = tgram[row : row + 1]
            return feed

        rows = range(len(logmel))
        if len(rows) > 1 and self.workers > 1:  # side by side, one onnxruntime thread each
            session, pool = self._batch_path()
            parts = list(pool.map(lambda row: session.run(NETWORK_OUTPUTS, feeds(row)), rows))
        else:
            parts = [self._network.run(NETWORK_OUTPUTS, feeds(row)) for row in rows]
        embedding, logits = (np.concatenate(column) for column in zip(*parts, strict=True))
        return EngineOutput(embedding=embedding, logits=logits, logmel=logmel)

    def _batch_path(self):
        """The one-thread session and the worker threads for batches, made once."""
        with self._lock:
            if self._parallel is None:
                self._parallel = _network_session(self._network_bytes, 1)
                self._network_bytes = None
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="edge-asd-net")
            return self._parallel, self._pool

    def _check(self, split: SplitModel) -> None:
        """Refuse a split whose graphs contradict model.yaml (ModelFileError naming it)."""
        info, fe = self.info, self.info.front_end
        names = info.split.files() if info.split is not None else {}
        where = {k: str(info.directory / v.file) for k, v in names.items()}
        network_in, network_out = describe_session(self._network)
        by_name = {spec.name: spec for spec in network_in + network_out}
        n_channels = None
        wanted = [
            TensorSpec(split.logmel_input, ONNX_FLOAT, (None, fe.n_mels, fe.frames)),
            TensorSpec("embedding", ONNX_FLOAT, (None, info.embedding_dim)),
            TensorSpec("logits", ONNX_FLOAT, (None, info.n_labels)),
        ]
        if split.tgram_input is not None:
            tgram = by_name.get(split.tgram_input)
            n_channels = tgram.shape[1] if tgram is not None and tgram.shape else None
            wanted.append(TensorSpec(split.tgram_input, ONNX_FLOAT, (None, n_channels, fe.frames)))
        _check_named(by_name, wanted, where.get("network", "the split's network"))
        columns_in, columns_out = describe_session(self._columns)
        by_name = {spec.name: spec for spec in columns_in + columns_out}
        wanted = [
            TensorSpec(POWER, ONNX_FLOAT, (None, fe.n_fft // 2 + 1)),
            TensorSpec(LOGMEL_COLUMNS, ONNX_FLOAT, (None, fe.n_mels)),
        ]
        if split.tgram_input is not None:
            wanted += [
                TensorSpec(FRAMES, ONNX_FLOAT, (None, fe.n_fft)),
                TensorSpec(TGRAM_COLUMNS, ONNX_FLOAT, (None, n_channels)),
            ]
        _check_named(by_name, wanted, where.get("columns", "the split's columns"))


def _check_named(found: dict[str, TensorSpec], wanted: list[TensorSpec], where: str) -> None:
    for spec in wanted:
        if spec.name not in found:
            raise ModelFileError(
                f"{where}: has no tensor {spec.name!r} (it has {sorted(found)}); make the "
                "split again with `edge-asd-train split`"
            )
        check_spec(found[spec.name], spec, where)


def _session(model: bytes, options):
    import onnxruntime as ort

    try:
        return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types (Fail, InvalidGraph, ...)
        raise ModelFileError(f"the split model does not load in onnxruntime ({exc})") from None


def _network_session(model: bytes, threads: int | None):
    # The arena keeps a window's activations for the next window: without it every run
    # page-faults them in again (+35 % CPU time). No memory pattern: the arena then holds
    # the live tensors, not the whole plan (-6 MB).
    options = session_options(threads)
    options.enable_mem_pattern = False
    return _session(model, options)


def compare_outputs(ours: EngineOutput, reference: EngineOutput) -> dict[str, float]:
    """Largest differences, in the units of TOLERANCES."""
    norms = np.linalg.norm(reference.embedding, axis=1, keepdims=True)
    return {
        "logmel_db": float(np.abs(ours.logmel - reference.logmel).max()),
        "embedding_relative": float(
            (np.abs(ours.embedding - reference.embedding) / np.maximum(norms, 1e-12)).max()
        ),
        "logits": float(np.abs(ours.logits - reference.logits).max()),
    }


def check_windows(window_samples: int, sample_rate: int) -> np.ndarray:
    """Generated windows the split is checked on: machine sound, noise, a tone, silence."""
    from edge_asd.synth import render_clip

    seconds = window_samples / sample_rate
    t = np.arange(window_samples) / sample_rate
    rng = np.random.default_rng(0)
    return np.stack(
        [
            render_clip("fan", 0, "source", seconds, seed=7)[:window_samples],
            rng.normal(scale=0.1, size=window_samples),
            0.3 * np.sin(2 * np.pi * 1000.0 * t) + rng.normal(scale=1e-3, size=window_samples),
            np.zeros(window_samples),
        ]
    ).astype(np.float32)
