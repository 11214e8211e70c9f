"""Building a TensorRT engine from `model.onnx` with the TensorRT 10 Python API.

Used by the runtime on first start (`TensorRTEngine`) and by `edge-asd build-engine`.
The build: parse the ONNX file, one optimization profile over the batch (min/opt/max),
a workspace limit, FP16 (default) or FP32, and a timing cache kept beside the engines so
that a rebuild (a new model on the same board) skips most kernel timing.

In FP16 the log-mel front end (every layer that feeds the `logmel` output) stays in FP32:
a full-scale tone gives a power spectrum above FP16's largest value (65504), and the
floor under the power before the log (1e-10) is below FP16's smallest (6e-8), so digital
silence would become log(0) = -inf. The network after the front end sees dB values
(about -100..+100) and runs in FP16.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_asd.engines.base import EngineUnavailable
from edge_asd.engines.engine_cache import write_atomic
from edge_asd.model_file import ModelInfo

log = logging.getLogger(__name__)

LOGMEL_OUTPUT = "logmel"
MIB = 1 << 20


def import_tensorrt() -> Any:
    """The `tensorrt` module; EngineUnavailable saying how to get it when it is missing."""
    try:
        import tensorrt
    except ImportError as exc:
        raise EngineUnavailable(
            f"the tensorrt Python package cannot be imported ({exc}); on a Jetson it comes "
            "with JetPack (apt package python3-libnvinfer), and edge-asd's virtual "
            "environment must see it (created with --system-site-packages, as "
            "deploy/jetson/install.sh does)"
        ) from None
    major = int(str(tensorrt.__version__).split(".")[0])
    if major < 10:
        raise EngineUnavailable(
            f"TensorRT {tensorrt.__version__} is too old: edge-asd needs TensorRT 10 (JetPack 6)"
        )
    return tensorrt


@dataclass(frozen=True)
class BuildOptions:
    """What a build may vary: precision, the batch range, the workspace, the timing cache."""

    precision: str = "fp16"
    min_batch: int = 1
    opt_batch: int | None = None  # None: max_batch (the daemon scores all machines at once)
    max_batch: int = 16
    workspace_mib: int = 1024
    timing_cache: Path | None = None

    def batch_shapes(self, window_samples: int) -> tuple[tuple[int, int], ...]:
        """(min, opt, max) input shapes [batch, window_samples] of the optimization profile."""
        opt = self.max_batch if self.opt_batch is None else self.opt_batch
        if not 1 <= self.min_batch <= opt <= self.max_batch:
            raise ValueError(
                f"batch sizes must satisfy 1 <= min <= opt <= max, got "
                f"{self.min_batch}, {opt}, {self.max_batch}"
            )
        return tuple((b, window_samples) for b in (self.min_batch, opt, self.max_batch))


@dataclass(frozen=True)
class BuildResult:
    """A serialized engine and how long it took."""

    engine: bytes
    build_seconds: float
    fp32_layers: int  # layers pinned to FP32 (the front end) in an FP16 build


def build_engine(trt: Any, info: ModelInfo, options: BuildOptions) -> BuildResult:
    """Build a serialized engine for `info.onnx_path`.

    Raises EngineUnavailable when the parser rejects the graph (with its errors) or the
    builder fails (the TensorRT log says why).
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(info.onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineUnavailable(
            f"TensorRT's ONNX parser rejected {info.onnx_path}: " + "; ".join(errors)
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib * MIB)
    fp32_layers = 0
    if options.precision == "fp16":
        if not builder.platform_has_fast_fp16:
            log.warning("this GPU has no fast FP16; the FP16 engine may be no faster than FP32")
        config.set_flag(trt.BuilderFlag.FP16)
        fp32_layers = pin_front_end_fp32(trt, network)
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
    _add_batch_profile(builder, network, config, options, info.window_samples)
    timing_cache = _load_timing_cache(config, options.timing_cache)
    started = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.monotonic() - started
    if serialized is None:
        raise EngineUnavailable(
            f"TensorRT could not build an engine from {info.onnx_path} "
            "(the TensorRT messages above say why)"
        )
    _save_timing_cache(timing_cache, options.timing_cache)
    return BuildResult(bytes(memoryview(serialized)), seconds, fp32_layers)


def _add_batch_profile(builder, network, config, options: BuildOptions, window: int) -> None:
    """One optimization profile: the input's batch axis from min to max."""
    profile = builder.create_optimization_profile()
    shapes = options.batch_shapes(window)
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        static = tuple(tensor.shape)[1:]
        if static != (window,):
            raise EngineUnavailable(
                f"input {tensor.name!r} has shape {tuple(tensor.shape)}, expected "
                f"[batch, {window}] (model.yaml's window_samples)"
            )
        profile.set_shape(tensor.name, *shapes)
    config.add_optimization_profile(profile)


def pin_front_end_fp32(trt: Any, network) -> int:
    """Ask for FP32 in every layer that feeds the `logmel` output; returns how many.

    Only layers whose outputs are all floating point are pinned (shape arithmetic stays
    integer). The builder follows with PREFER_PRECISION_CONSTRAINTS.
    """
    producers = {}
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        for out in range(layer.num_outputs):
            producers[layer.get_output(out).name] = layer
    pending = [
        network.get_output(i).name
        for i in range(network.num_outputs)
        if network.get_output(i).name == LOGMEL_OUTPUT
    ]
    seen: set[str] = set()
    pinned = 0
    floats = (trt.DataType.FLOAT, trt.DataType.HALF)
    while pending:
        layer = producers.get(pending.pop())
        if layer is None or layer.name in seen:
            continue
        seen.add(layer.name)
        outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
        if all(t.dtype in floats for t in outputs):
            layer.precision = trt.DataType.FLOAT
            for i in range(layer.num_outputs):
                layer.set_output_type(i, trt.DataType.FLOAT)
            pinned += 1
        for i in range(layer.num_inputs):
            tensor = layer.get_input(i)
            if tensor is not None:
                pending.append(tensor.name)
    return pinned


def _load_timing_cache(config, path: Path | None):
    """Attach a timing cache to the config, seeded from `path` when it holds one."""
    data = b""
    if path is not None and path.is_file():
        data = path.read_bytes()
    cache = config.create_timing_cache(data)
    # A cache from another TensorRT or GPU is ignored rather than trusted.
    if not config.set_timing_cache(cache, ignore_mismatch=False) and data:
        log.warning("timing cache %s does not fit this TensorRT/GPU; starting afresh", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _save_timing_cache(cache, path: Path | None) -> None:
    if path is None:
        return
    try:
        write_atomic(path, bytes(memoryview(cache.serialize())))
    except OSError as exc:  # a cache that cannot be written only costs time next build
        log.warning("cannot write the timing cache %s: %s", path, exc)
