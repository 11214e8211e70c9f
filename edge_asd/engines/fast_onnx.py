"""The optimised onnxruntime engine: model.onnx split into a per-frame front end and the
network (edge_asd.engines.split_graph), with the same outputs within a stated tolerance.

Speed comes from three things, each measured by `edge-asd bench`: the DFT done as an FFT
instead of a 1026 x 1024 convolution; the PRelu rewrite that keeps onnxruntime's
backbone in one memory layout; and, through `infer_streams`, every frame of a stream
computed once instead of once per window that holds it (10 times at a 1 s hop).

The split is checked against model.onnx when it is derived, on generated windows, and
refused (the plain engine runs instead) when any output differs by more than
`TOLERANCES`; the derived graphs and the check's result are then cached beside the model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge_asd.engines.base import EngineOutput
from edge_asd.engines.front_end import FrontEnd
from edge_asd.engines.onnx_engine import (
    OnnxEngine,
    TensorSpec,
    check_model_io,
    check_waveforms,
    describe_session,
    load_session,
    session_options,
)
from edge_asd.engines.split_graph import (
    SplitModel,
    SplitUnavailable,
    default_cache_dir,
    derive_split,
    load_cached,
    store,
)
from edge_asd.model_file import ModelInfo

log = logging.getLogger(__name__)

# Largest differences from model.onnx accepted, on outputs of generated windows: the
# log-mel in dB; the embedding relative to its norm; the logits (scaled cosines)
# absolute. Float32 rounding in another order gives about a tenth of these.
TOLERANCES = {"logmel_db": 0.05, "embedding_relative": 1e-4, "logits": 2e-3}
# What those allow the scores to differ by: a knn score (a cosine distance) by about
# twice the embedding's relative change; a section score (a difference of two
# log-sum-exps of the logits) by twice the logits'.
SCORE_TOLERANCES = {"knn": 2e-4, "section": 4e-3}
# Windows per network run. One at a time was faster per window than 4, 8 or 16 at once
# on a 2-core x86 (the activations of one window stay in cache), and the memory the
# network needs then does not grow with the number of machines (docs/benchmarks.md).
NETWORK_BATCH = 1


class FastOnnxEngine:
    """model.onnx, split; see `edge_asd.engines.base.Engine`, plus `infer_streams`.

    Raises ModelFileError like OnnxEngine, SplitUnavailable when the model cannot be
    split or its split does not match model.onnx (`open_fast_engine` then runs the plain
    engine). `cache_dir`: where the split is kept (default: beside the model).
    """

    name = "onnxruntime"
    description = "onnxruntime (model.onnx split: front end per frame, network per window)"

    def __init__(
        self, info: ModelInfo, threads: int | None = None, cache_dir: Path | None = None
    ) -> None:
        self.info = info
        self.fallback_reason: str | None = None
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(info)
        cached = load_cached(info, cache_dir)
        if cached is not None:
            split, meta = cached
            # model.onnx's signature as recorded when it was split (the sha256 is the same)
            check_model_io(*signature_from_dict(meta["signature"]), info)
            self.checked = meta["checked"]
            self._open(split, threads)
        else:
            started = time.monotonic()
            signature = _signature(info)
            check_model_io(*signature, info)
            split = derive_split(info)
            self._open(split, threads)
            self.checked = self._check_against_model(threads)
            store(
                split,
                cache_dir,
                {"checked": self.checked, "signature": signature_to_dict(*signature)},
            )
            log.info("derived the split model in %.1f s", time.monotonic() - started)
        self.providers: list[str] = list(self._network.get_providers())

    def _open(self, split: SplitModel, threads: int | None) -> None:
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        # The arena keeps one window's activations (NETWORK_BATCH) for the next window:
        # without it every run page-faults them in again (+35 % CPU time). No memory
        # pattern: the arena then holds the live tensors, not the whole plan (-6 MB).
        options = session_options(threads)
        options.enable_mem_pattern = False
        self._network = ort.InferenceSession(
            split.network, sess_options=options, providers=providers
        )
        # a few small matrix products per hop: one thread, no hand-offs
        self._columns = ort.InferenceSession(
            split.columns, sess_options=session_options(1, arena=False), providers=providers
        )
        self._inputs = [split.logmel_input] + ([split.tgram_input] if split.tgram_input else [])
        self.front_end = FrontEnd(split, self.info, self._columns)

    def warm_up(self, batch_size: int = 1) -> None:
        """Run once on silence so that the first real window is not slow. One window
        whatever `batch_size`: the network runs NETWORK_BATCH windows at a time anyway."""
        self.infer(np.zeros((NETWORK_BATCH, self.info.window_samples), dtype=np.float32))

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
        self._network = None
        self._columns = None

    def _network_outputs(self, logmel: np.ndarray, tgram: np.ndarray | None) -> EngineOutput:
        if self._network is None:
            raise RuntimeError("the engine is closed")
        parts = []
        for first in range(0, len(logmel), NETWORK_BATCH):
            rows = slice(first, first + NETWORK_BATCH)
            feeds = {self._inputs[0]: logmel[rows]}
            if tgram is not None:
                feeds[self._inputs[1]] = tgram[rows]
            parts.append(self._network.run(["embedding", "logits"], feeds))
        embedding, logits = (np.concatenate(column) for column in zip(*parts, strict=True))
        return EngineOutput(embedding=embedding, logits=logits, logmel=logmel)

    def _check_against_model(self, threads: int | None) -> dict[str, float]:
        """Outputs of generated windows, split vs model.onnx; SplitUnavailable past TOLERANCES."""
        windows = check_windows(self.info.window_samples, self.info.sample_rate)
        plain = OnnxEngine(self.info, threads=threads, use_cuda=False).infer(windows)
        fast = self.infer(windows)
        differences = compare_outputs(fast, plain)
        over = {k: v for k, v in differences.items() if v > TOLERANCES[k]}
        if over:
            raise SplitUnavailable(
                f"the split model differs from model.onnx by {over} (tolerances {TOLERANCES})"
            )
        return differences


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


def open_fast_engine(
    info: ModelInfo, threads: int | None = None, cache_dir: Path | None = None
) -> FastOnnxEngine | OnnxEngine:
    """The split engine, or the plain one (with a warning saying why) when the model
    cannot be split. Raises ModelFileError for a model that does not load at all."""
    try:
        return FastOnnxEngine(info, threads=threads, cache_dir=cache_dir)
    except SplitUnavailable as exc:
        log.warning("running model.onnx as it is (slower): %s", exc)
        return OnnxEngine(info, threads=threads, use_cuda=False)


def _signature(info: ModelInfo) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """model.onnx's declared inputs and outputs (a light session, no inference)."""
    return describe_session(load_session(info, threads=1, use_cuda=False, optimise=False))


def signature_to_dict(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> dict:
    return {"inputs": [asdict(s) for s in inputs], "outputs": [asdict(s) for s in outputs]}


def signature_from_dict(data: dict) -> tuple[list[TensorSpec], list[TensorSpec]]:
    def spec(item: dict) -> TensorSpec:
        shape = None if item["shape"] is None else tuple(item["shape"])
        return TensorSpec(item["name"], item["element_type"], shape)

    return [spec(i) for i in data["inputs"]], [spec(o) for o in data["outputs"]]
