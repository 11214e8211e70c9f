"""Inference engines behind one protocol (see `base.Engine`), opened by `open_engine`.

`onnxruntime` is the default and runs anywhere; `tensorrt` runs on a Jetson or another
NVIDIA GPU with TensorRT 10 and falls back to onnxruntime (with a warning, and the
reason kept in `engine.fallback_reason`) unless told not to.
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
    optimise: bool = False,
) -> Engine:
    """Load a model directory (or its model.onnx / model.yaml) into an engine of `kind`.

    threads: onnxruntime intra-op threads (None: one per core); precision, cache_dir and
    max_batch: the TensorRT build's; optimise: onnxruntime runs the split model (see
    edge_asd.engines.fast_onnx) instead of model.onnx. Raises ModelFileError when the
    files are missing, their sha256 disagree or the graph's inputs/outputs contradict
    model.yaml; UserError for an unknown kind, or when TensorRT is unavailable and
    allow_fallback is False.
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
    if optimise:
        from edge_asd.engines.fast_onnx import open_fast_engine

        engine = open_fast_engine(info, threads=threads)
    else:
        engine = OnnxEngine(info, threads=threads)
    engine.fallback_reason = fallback_reason
    return engine


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
