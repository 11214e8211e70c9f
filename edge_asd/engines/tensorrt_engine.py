"""The TensorRT engine: `model.onnx` compiled for this GPU (a Jetson), cached between starts.

On the first start (or after a model, JetPack or board change) the engine is built from the
ONNX file, which takes minutes on a Jetson, and written into the engine cache
(`engine_cache`); later starts load it in seconds. `edge-asd build-engine` fills the same
cache ahead of time. TensorRT and the CUDA runtime are imported only when an engine is
opened, so the rest of edge-asd runs where neither exists; there the constructor raises
EngineUnavailable with the reason and `open_engine` falls back to onnxruntime.

Memory: page-locked host buffers and device buffers sized for `max_batch`, allocated once;
each `infer` copies in, runs `execute_async_v3` and copies out on one CUDA stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_asd.engines.base import EngineOutput, EngineUnavailable
from edge_asd.engines.cudart import CudaRuntime
from edge_asd.engines.engine_cache import (
    PRECISIONS,
    EngineKey,
    default_cache_dir,
    discard_engine,
    engine_path,
    find_engine,
    store_engine,
    timing_cache_path,
)
from edge_asd.engines.onnx_engine import ONNX_FLOAT, TensorSpec, check_model_io
from edge_asd.engines.trt_build import BuildOptions, build_engine, import_tensorrt
from edge_asd.model_file import INPUT_NAME, OUTPUT_NAMES, ModelInfo

log = logging.getLogger(__name__)


@dataclass
class _Buffer:
    """One I/O tensor: a page-locked host array [max_batch, ...] and its device twin."""

    host: np.ndarray
    host_pointer: int
    device_pointer: int

    @property
    def row_bytes(self) -> int:
        return self.host.nbytes // self.host.shape[0]


class TensorRTEngine:
    """Runs the model with TensorRT 10; see `edge_asd.engines.base.Engine`."""

    name = "tensorrt"

    def __init__(
        self,
        info: ModelInfo,
        precision: str = "fp16",
        cache_dir: Path | None = None,
        max_batch: int = 16,
        workspace_mib: int = 1024,
    ) -> None:
        """Load the cached engine for this model, TensorRT, GPU, precision and batch range,
        or build it (minutes on a Jetson) and cache it.

        Raises EngineUnavailable when TensorRT or CUDA is missing, there is no GPU, or the
        graph cannot be built; ModelFileError when the engine's inputs and outputs
        contradict model.yaml; ValueError on a bad precision or max_batch.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.info = info
        self.precision = precision
        self.max_batch = max_batch
        self.fallback_reason: str | None = None  # never set here: this is not a fallback
        self.built_seconds: float | None = None  # set when this start built the engine
        self.description = f"tensorrt ({precision}, model.onnx compiled for this GPU)"
        self._lock = threading.Lock()
        self._buffers: dict[str, _Buffer] = {}
        self._stream: int | None = None
        self._trt = import_tensorrt()
        self._cuda = CudaRuntime.load()
        self.gpu_name = self._cuda.device_name()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.key = EngineKey(
            info.onnx_sha256, self._trt.__version__, self.gpu_name, precision, 1, max_batch
        )
        self.engine_path = engine_path(self.cache_dir, self.key)
        self._runtime = self._trt.Runtime(self._trt.Logger(self._trt.Logger.WARNING))
        self._engine = self._load_or_build(workspace_mib)
        self._check_io()
        self._context = self._engine.create_execution_context()
        self._bound_batch = 0
        try:
            self._allocate()
        except Exception:
            self.close()
            raise

    def _load_or_build(self, workspace_mib: int) -> Any:
        found = find_engine(self.cache_dir, self.key)
        if found is not None:
            built_for, data = found
            path = engine_path(self.cache_dir, built_for)
            engine = self._runtime.deserialize_cuda_engine(data)
            if engine is not None:
                log.info("loaded TensorRT engine %s", path)
                self.engine_path = path
                return engine
            log.warning("cached engine %s does not load; building it again", path)
            discard_engine(self.cache_dir, built_for)
        log.warning(
            "building the TensorRT %s engine for %s on %s: this takes minutes on a Jetson "
            "(edge-asd build-engine does it ahead of time)",
            self.precision,
            self.info.onnx_path,
            self.gpu_name,
        )
        options = BuildOptions(
            precision=self.precision,
            max_batch=self.max_batch,
            workspace_mib=workspace_mib,
            timing_cache=timing_cache_path(
                self.cache_dir, self.key.tensorrt_version, self.gpu_name
            ),
        )
        vet_graph(self.info)
        result = build_engine(self._trt, self.info, options)
        self.built_seconds = result.build_seconds
        try:
            store_engine(self.cache_dir, self.key, result.engine, build_details(result, options))
        except OSError as exc:  # still usable now; the next start builds again
            log.warning("cannot cache the engine in %s: %s", self.cache_dir, exc)
        engine = self._runtime.deserialize_cuda_engine(result.engine)
        if engine is None:
            raise EngineUnavailable("TensorRT built an engine that it then could not load")
        return engine

    def _check_io(self) -> None:
        """Refuse an engine whose tensors contradict model.yaml (ModelFileError)."""
        trt, engine = self._trt, self._engine
        specs: dict[Any, list[TensorSpec]] = {
            trt.TensorIOMode.INPUT: [],
            trt.TensorIOMode.OUTPUT: [],
        }
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            dtype = engine.get_tensor_dtype(name)
            element = ONNX_FLOAT if dtype == trt.DataType.FLOAT else str(dtype)
            shape = tuple(None if d < 0 else d for d in engine.get_tensor_shape(name))
            specs[engine.get_tensor_mode(name)].append(TensorSpec(name, element, shape))
        check_model_io(specs[trt.TensorIOMode.INPUT], specs[trt.TensorIOMode.OUTPUT], self.info)
        profile_max = engine.get_tensor_profile_shape(INPUT_NAME, 0)[2]
        if profile_max[0] < self.max_batch:
            raise EngineUnavailable(
                f"engine {self.engine_path} takes batches up to {profile_max[0]}, "
                f"not {self.max_batch}"
            )

    def _allocate(self) -> None:
        self._stream = self._cuda.stream_create()
        for name in (INPUT_NAME, *OUTPUT_NAMES):
            dims = tuple(self._engine.get_tensor_shape(name))[1:]
            dtype = np.dtype(self._trt.nptype(self._engine.get_tensor_dtype(name)))
            host, host_pointer = self._cuda.host_array((self.max_batch, *dims), dtype)
            buffer = _Buffer(host, host_pointer, 0)
            self._buffers[name] = buffer
            buffer.device_pointer = self._cuda.malloc(host.nbytes)
            if not self._context.set_tensor_address(name, buffer.device_pointer):
                raise EngineUnavailable(f"TensorRT refused the device buffer for {name!r}")

    def warm_up(self, batch_size: int = 1) -> None:
        """Run once on silence so that the first real window is not slow."""
        self.infer(np.zeros((batch_size, self.info.window_samples), dtype=np.float32))

    def infer(self, waveforms: np.ndarray) -> EngineOutput:
        """Outputs for waveforms float32 [B, window_samples]; B above max_batch runs in parts.

        Raises ValueError on another dtype or shape, RuntimeError when the engine is
        closed or TensorRT fails to run, CudaError when a copy fails.
        """
        if not isinstance(waveforms, np.ndarray) or waveforms.dtype != np.float32:
            kind = getattr(waveforms, "dtype", type(waveforms).__name__)
            raise ValueError(f"waveforms must be a float32 numpy array, got {kind}")
        if waveforms.ndim != 2 or waveforms.shape[0] < 1:
            raise ValueError(f"waveforms must be [batch >= 1, samples], got {waveforms.shape}")
        if waveforms.shape[1] != self.info.window_samples:
            raise ValueError(
                f"windows of {waveforms.shape[1]} samples, but the model takes "
                f"{self.info.window_samples}"
            )
        with self._lock:
            parts = [
                self._run(waveforms[start : start + self.max_batch])
                for start in range(0, len(waveforms), self.max_batch)
            ]
        embedding, logits, logmel = (np.concatenate(column) for column in zip(*parts, strict=True))
        return EngineOutput(embedding=embedding, logits=logits, logmel=logmel)

    def infer_streams(
        self, waveforms: np.ndarray, streams: Sequence[str], end_frames: np.ndarray
    ) -> EngineOutput:
        """`infer`: the engine computes every window whole, whatever stream it comes from."""
        return self.infer(waveforms)

    def forget_streams(self) -> None:
        """Nothing is kept between windows."""

    def _run(self, waveforms: np.ndarray) -> list[np.ndarray]:
        if self._stream is None:
            raise RuntimeError("the engine is closed")
        n, cuda, stream = len(waveforms), self._cuda, self._stream
        source = self._buffers[INPUT_NAME]
        source.host[:n] = waveforms
        cuda.copy_to_device(
            source.device_pointer, source.host_pointer, n * source.row_bytes, stream
        )
        if n != self._bound_batch:
            if not self._context.set_input_shape(INPUT_NAME, (n, self.info.window_samples)):
                raise RuntimeError(f"TensorRT refused a batch of {n}")
            self._bound_batch = n
        if not self._context.execute_async_v3(stream):
            raise RuntimeError("TensorRT failed to run the engine (see its log)")
        for name in OUTPUT_NAMES:
            out = self._buffers[name]
            cuda.copy_to_host(out.host_pointer, out.device_pointer, n * out.row_bytes, stream)
        cuda.stream_synchronize(stream)
        return [self._buffers[name].host[:n].astype(np.float32) for name in OUTPUT_NAMES]

    def close(self) -> None:
        """Free the buffers, the stream, the context and the engine; safe to call twice."""
        with self._lock:
            if self._stream is not None:
                self._cuda.stream_synchronize(self._stream)
                self._cuda.stream_destroy(self._stream)
                self._stream = None
            for buffer in self._buffers.values():
                if buffer.device_pointer:
                    self._cuda.free(buffer.device_pointer)
                # drop our view of the page-locked memory before handing it back
                buffer.host = np.empty((1, 0), dtype=buffer.host.dtype)
                self._cuda.free_host(buffer.host_pointer)
            self._buffers.clear()
            self._context = None
            self._engine = None


def vet_graph(info: ModelInfo) -> None:
    """The static TensorRT check of the graph, when the `onnx` package is there to run it.

    Raises EngineUnavailable listing what TensorRT could not build, so that the runtime
    falls back to onnxruntime with that reason instead of failing a build minutes later.
    """
    try:
        import onnx  # noqa: F401  (only to know whether the check can run)
    except ImportError:
        log.debug("onnx is not installed: skipping the static TensorRT graph check")
        return
    from edge_asd.engines.trt_ops import check_graph

    result = check_graph(info.onnx_path)
    if not result.ok:
        raise EngineUnavailable(
            f"{info.onnx_path} is not buildable with TensorRT: " + "; ".join(result.problems)
        )


def build_details(result: Any, options: BuildOptions) -> dict[str, Any]:
    """What the cache's metadata records about a build, beside the key."""
    import datetime as dt

    return {
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(result.build_seconds, 1),
        "workspace_mib": options.workspace_mib,
        "opt_batch": options.opt_batch or options.max_batch,
        "fp32_layers": result.fp32_layers,
    }
