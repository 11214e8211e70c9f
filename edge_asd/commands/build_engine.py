"""`edge-asd build-engine`: compile a model into a TensorRT engine ahead of the daemon's start.

    edge-asd build-engine --model M [--precision fp16|fp32] [--max-batch N] [--opt-batch N]
        [--workspace-mib MIB] [--cache-dir DIR] [--force] [--check-windows N] [--check-only]

Steps: the static TensorRT check of the graph (runs anywhere; `--check-only` stops there);
the build (FP16 by default, front end kept in FP32) into the engine cache the daemon reads,
with the build time and engine size; then the engine against onnxruntime on a few windows
(machine sound from edge_asd.synth, silence, a full-scale tone), printing the largest
difference of each output. Exit 4 when the engine's embeddings stray from onnxruntime's by
more than `--max-cosine-distance` or it returns NaN/inf.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_asd.engines.base import EngineOutput
from edge_asd.errors import EXIT_RUNTIME, UserError
from edge_asd.model_file import OUTPUT_NAMES, ModelInfo

DEFAULT_CHECK_WINDOWS = 4
DEFAULT_MAX_COSINE_DISTANCE = 0.01
TONE_HZ = 1000.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build-engine",
        help="build the TensorRT engine for a model (on the Jetson)",
        description="Build the TensorRT engine for a model into the engine cache the daemon "
        "reads, and check it against onnxruntime.",
    )
    parser.add_argument("--model", required=True, help="model directory (model.onnx + .yaml)")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    parser.add_argument(
        "--max-batch", type=int, default=16, help="largest batch (machines per hop); default 16"
    )
    parser.add_argument(
        "--opt-batch", type=int, default=None, help="batch TensorRT tunes for (default: max)"
    )
    parser.add_argument("--workspace-mib", type=int, default=1024, help="builder workspace")
    parser.add_argument("--cache-dir", type=Path, default=None, help="engine cache directory")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument(
        "--check-windows",
        type=int,
        default=DEFAULT_CHECK_WINDOWS,
        help="windows to compare with onnxruntime (0: skip)",
    )
    parser.add_argument(
        "--max-cosine-distance",
        type=float,
        default=DEFAULT_MAX_COSINE_DISTANCE,
        help="largest embedding cosine distance to onnxruntime accepted",
    )
    parser.add_argument(
        "--check-only", action="store_true", help="only the static graph check (no TensorRT)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_asd.engines.trt_ops import require_tensorrt_ready
    from edge_asd.model_file import load_model_info

    info = load_model_info(args.model)
    check = require_tensorrt_ready(info.onnx_path)
    nodes = sum(check.operators.values())
    print(
        f"graph check: {info.onnx_path}: opset {check.opset}, {nodes} nodes of "
        f"{len(check.operators)} operator types, batch axis {check.batch_dim!r}, "
        "other shapes static: TensorRT 10 can build it"
    )
    if args.check_only:
        return 0
    if args.max_batch < 1 or (args.opt_batch is not None and args.opt_batch > args.max_batch):
        raise UserError("need 1 <= --opt-batch <= --max-batch", exit_code=2)
    path = _build(info, args)
    if args.check_windows <= 0:
        return 0
    return _check_against_onnxruntime(info, args, path)


def _build(info: ModelInfo, args: argparse.Namespace) -> Path:
    """Build into the cache unless it holds the engine (or --force); returns its path."""
    from edge_asd.engines.base import EngineUnavailable
    from edge_asd.engines.cudart import CudaRuntime
    from edge_asd.engines.engine_cache import (
        EngineKey,
        default_cache_dir,
        engine_path,
        load_engine_bytes,
        store_engine,
        timing_cache_path,
    )
    from edge_asd.engines.tensorrt_engine import build_details
    from edge_asd.engines.trt_build import BuildOptions, build_engine, import_tensorrt

    try:
        trt = import_tensorrt()
        gpu_name = CudaRuntime.load().device_name()
    except EngineUnavailable as exc:
        raise UserError(f"cannot build here: {exc}", exit_code=EXIT_RUNTIME) from None
    cache_dir = args.cache_dir or default_cache_dir()
    key = EngineKey(info.onnx_sha256, trt.__version__, gpu_name, args.precision, 1, args.max_batch)
    path = engine_path(cache_dir, key)
    print(f"TensorRT {trt.__version__} on {gpu_name}; engine cache {cache_dir}")
    if load_engine_bytes(cache_dir, key) is not None and not args.force:
        print(f"already built: {path} (--force builds it again)")
        return path
    options = BuildOptions(
        precision=args.precision,
        opt_batch=args.opt_batch,
        max_batch=args.max_batch,
        workspace_mib=args.workspace_mib,
        timing_cache=timing_cache_path(cache_dir, key.tensorrt_version, gpu_name),
    )
    try:
        result = build_engine(trt, info, options)
        store_engine(cache_dir, key, result.engine, build_details(result, options))
    except EngineUnavailable as exc:
        raise UserError(str(exc), exit_code=EXIT_RUNTIME) from None
    except OSError as exc:
        raise UserError(f"cannot write the engine into {cache_dir}: {exc}", EXIT_RUNTIME) from None
    pinned = f", {result.fp32_layers} front-end layers kept in FP32" if result.fp32_layers else ""
    print(
        f"built the {args.precision} engine in {result.build_seconds:.1f} s: {path} "
        f"({len(result.engine) / 2**20:.1f} MiB{pinned})"
    )
    return path


def _check_against_onnxruntime(info: ModelInfo, args: argparse.Namespace, path: Path) -> int:
    from edge_asd.engines.onnx_engine import OnnxEngine
    from edge_asd.engines.tensorrt_engine import TensorRTEngine

    windows = check_windows(info, args.check_windows)
    engine = TensorRTEngine(
        info, args.precision, args.cache_dir, args.max_batch, args.workspace_mib
    )
    try:
        candidate = engine.infer(windows)
    finally:
        engine.close()
    reference = OnnxEngine(info, use_cuda=False).infer(windows)
    comparison = compare_outputs(reference, candidate)
    print(f"{path.name} against onnxruntime on {len(windows)} windows:")
    print(comparison.report())
    if not comparison.acceptable(args.max_cosine_distance):
        print(
            f"FAILED: the engine does not match onnxruntime (limit: embedding cosine "
            f"distance {args.max_cosine_distance:g}, finite outputs)"
        )
        return EXIT_RUNTIME
    print("OK: the engine matches onnxruntime")
    return 0


def check_windows(info: ModelInfo, count: int, seed: int = 0) -> np.ndarray:
    """`count` windows float32 [count, window_samples] that exercise the engine's range.

    Silence (the log floor), a full-scale tone (the loudest power spectrum), then machine
    sound of the model's labels from edge_asd.synth, one label after another.
    """
    from edge_asd.synth import render_clip

    samples = info.window_samples
    t = np.arange(samples) / info.sample_rate
    windows = [np.zeros(samples), np.sin(2 * np.pi * TONE_HZ * t)]
    for index in range(max(0, count - len(windows))):
        label = info.labels[index % len(info.labels)]
        machine_type, _, rest = label.partition("/")
        section = int(rest.split("/")[0].removeprefix("section_") or 0) if rest else 0
        seconds = samples / info.sample_rate
        windows.append(render_clip(machine_type, section, "source", seconds, seed + index))
    return np.stack(windows[:count]).astype(np.float32)


@dataclass(frozen=True)
class Comparison:
    """How far one engine's outputs are from another's on the same windows."""

    max_abs_diff: dict[str, float]  # per output
    max_cosine_distance: float  # of the embeddings, window by window
    non_finite: tuple[str, ...]  # outputs of the candidate holding NaN or inf

    def largest(self) -> tuple[str, float]:
        """The output with the largest absolute difference, and that difference."""
        name = max(self.max_abs_diff, key=lambda k: self.max_abs_diff[k])
        return name, self.max_abs_diff[name]

    def acceptable(self, max_cosine_distance: float) -> bool:
        return not self.non_finite and self.max_cosine_distance <= max_cosine_distance

    def report(self) -> str:
        lines = [f"  {name:9s} max |diff| {diff:.3g}" for name, diff in self.max_abs_diff.items()]
        lines.append(f"  embedding cosine distance, largest: {self.max_cosine_distance:.3g}")
        if self.non_finite:
            lines.append(f"  NaN or inf in: {', '.join(self.non_finite)}")
        name, diff = self.largest()
        lines.append(f"largest difference: {name} {diff:.3g}")
        return "\n".join(lines)


def compare_outputs(reference: EngineOutput, candidate: EngineOutput) -> Comparison:
    """Compare `candidate` to `reference` output by output (both for the same windows)."""
    diffs, non_finite = {}, []
    for name in OUTPUT_NAMES:
        want, got = getattr(reference, name), getattr(candidate, name)
        if want is None or got is None:
            continue
        if want.shape != got.shape:
            raise ValueError(f"{name}: shapes differ, {want.shape} vs {got.shape}")
        if not np.isfinite(got).all():
            non_finite.append(name)
        with np.errstate(invalid="ignore"):
            diff = np.abs(want.astype(np.float64) - got.astype(np.float64))
        diffs[name] = float(np.nan_to_num(diff, nan=np.inf).max())
    a = reference.embedding.astype(np.float64)
    b = np.nan_to_num(candidate.embedding.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosine = np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)
    return Comparison(diffs, float(np.max(1.0 - cosine)), tuple(non_finite))
