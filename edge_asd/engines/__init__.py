"""Inference engines behind one protocol (see `base.Engine`), opened by `open_engine`.

`onnxruntime` is the default and runs anywhere: the model's split (made at export, see
edge_asd.engines.fast_onnx) when the model directory has one, else model.onnx as it is,
with one warning saying how to add the split. `tensorrt` runs on a Jetson or another
NVIDIA GPU with TensorRT 10 and falls back to onnxruntime (with a warning, and the
reason kept in `engine.fallback_reason`) unless told not to. Every command (the daemon,
calibrate, score, evaluate, bench) opens its engine here with the same defaults, so they
all run the same graph.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_asd.engines.base import Engine, EngineOutput, EngineUnavailable
from edge_asd.errors import EXIT_RUNTIME, EXIT_USAGE, UserError
from edge_asd.model_file import ModelInfo, load_model_info

__all__ = ["ENGINE_KINDS", "Engine", "EngineOutput", "EngineUnavailable", "open_engine"]

ENGINE_KINDS = ("onnxruntime", "tensorrt")

log = logging.getLogger(__name__)


def open_engine(
    model: str | Path,
    kind: str = "onnxruntime",
    *,
    threads: int | None = None,
    allow_fallback: bool = True,
    precision: str = "fp16",
    cache_dir: Path | None = None,
    max_batch: int = 16,
    optimise: bool = True,
) -> Engine:
    """Load a model directory (or its model.onnx / model.yaml) into an engine of `kind`.

    threads: onnxruntime threads (None: one per core); precision, cache_dir and
    max_batch: the TensorRT build's; optimise: onnxruntime runs the model's split when
    model.yaml names one (False: model.onnx as it is). Raises ModelFileError when the
    files are missing, their sha256 disagree (the split's too) or the graph's
    inputs/outputs contradict model.yaml; UserError for an unknown kind, or when TensorRT
    is unavailable and allow_fallback is False.
    """
    from edge_asd.engines.onnx_engine import OnnxEngine

    if kind not in ENGINE_KINDS:
        raise UserError(
            f"unknown engine {kind!r} (choose from {', '.join(ENGINE_KINDS)})",
            exit_code=EXIT_USAGE,
        )
    info = load_model_info(model)
    fallback_reason = None
    if kind == "tensorrt":
        _check_graph(info)  # before a TensorRT build that can take minutes
        try:
            return _open_tensorrt(info, precision, cache_dir, max_batch)
        except EngineUnavailable as exc:
            if not allow_fallback:
                raise UserError(
                    f"the tensorrt engine cannot run here: {exc}", exit_code=EXIT_RUNTIME
                ) from None
            fallback_reason = str(exc)
            log.warning("tensorrt engine unavailable (%s); using onnxruntime instead", exc)
    engine = _open_split(info, threads) if optimise else None
    if engine is None:
        engine = OnnxEngine(info, threads=threads)
    engine.fallback_reason = fallback_reason
    return engine


def _open_split(info: ModelInfo, threads: int | None) -> Engine | None:
    """The split engine, or None (with a warning naming the fix) when the model has no
    split this runtime reads. ModelFileError when its files are missing or changed."""
    from edge_asd.engines.fast_onnx import FastOnnxEngine
    from edge_asd.engines.split_graph import SplitUnavailable

    fix = f"add it with `edge-asd-train split --model {info.directory}` (needs the onnx package)"
    if info.split is None:
        log.warning(
            "%s has no split model (model.yaml has no `split:`): running model.onnx as it is, "
            "3 to 4 times slower (docs/benchmarks.md); %s",
            info.directory,
            fix,
        )
        return None
    try:
        return FastOnnxEngine(info, threads=threads)
    except SplitUnavailable as exc:
        log.warning("%s: %s: running model.onnx as it is; %s", info.directory, exc, fix)
        return None


def _open_tensorrt(
    info: ModelInfo, precision: str, cache_dir: Path | None, max_batch: int
) -> Engine:
    try:
        from edge_asd.engines.tensorrt_engine import TensorRTEngine
    except ModuleNotFoundError as exc:
        if exc.name != "edge_asd.engines.tensorrt_engine":
            raise  # a bug inside the module, not a missing engine
        raise EngineUnavailable("this edge-asd has no tensorrt engine module") from None
    return TensorRTEngine(info, precision=precision, cache_dir=cache_dir, max_batch=max_batch)


def _check_graph(info: ModelInfo) -> None:
    """Check the graph against model.yaml with a light onnxruntime session (no inference)."""
    from edge_asd.engines.onnx_engine import check_model_io, describe_session, load_session

    session = load_session(info, threads=1, use_cuda=False, optimise=False)
    check_model_io(*describe_session(session), info)
