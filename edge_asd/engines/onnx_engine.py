"""The onnxruntime engine (the default): CPU, or CUDA when onnxruntime-gpu provides it.

Also the check that a model file's graph is the one its `model.yaml` describes: input and
output names, element types and sizes. The check reads the graph's declared signature,
so it costs no inference; sizes left symbolic in the graph are checked on every batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_asd.engines.base import EngineOutput
from edge_asd.errors import ModelFileError
from edge_asd.model_file import INPUT_NAME, OUTPUT_NAMES, ModelInfo

log = logging.getLogger(__name__)

ONNX_FLOAT = "tensor(float)"
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output as declared: a dim is an int, or a str/None when symbolic."""

    name: str
    element_type: str  # onnxruntime's spelling, e.g. "tensor(float)"
    shape: tuple[int | str | None, ...] | None  # None: rank unknown (checked at run time)


def expected_specs(info: ModelInfo) -> tuple[TensorSpec, dict[str, TensorSpec]]:
    """The input and outputs `model.yaml` promises; the batch dim (first) is None."""
    front_end = info.front_end
    outputs = {
        "embedding": TensorSpec("embedding", ONNX_FLOAT, (None, info.embedding_dim)),
        "logits": TensorSpec("logits", ONNX_FLOAT, (None, info.n_labels)),
        "logmel": TensorSpec("logmel", ONNX_FLOAT, (None, front_end.n_mels, front_end.frames)),
    }
    assert set(outputs) == set(OUTPUT_NAMES)
    return TensorSpec(INPUT_NAME, ONNX_FLOAT, (None, info.window_samples)), outputs


def _shape_text(shape: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"


def check_spec(actual: TensorSpec, expected: TensorSpec, where: str) -> None:
    """Raise ModelFileError, naming `where`, when `actual` is not float32 or its sizes
    contradict `expected` (a None or str size in either is not compared)."""
    kind = f"{where}: {'input' if expected.name == INPUT_NAME else 'output'} {actual.name!r}"
    if actual.element_type != expected.element_type:
        raise ModelFileError(
            f"{kind} is {actual.element_type}, but the model contract needs float32"
        )
    if actual.shape is None:
        return
    same_rank = len(actual.shape) == len(expected.shape)
    if not same_rank or any(
        isinstance(got, int) and isinstance(want, int) and got != want
        for got, want in zip(actual.shape[1:], expected.shape[1:], strict=True)
    ):
        raise ModelFileError(
            f"{kind} has shape {_shape_text(actual.shape)}, "
            f"but model.yaml implies {_shape_text(expected.shape)}"
        )


def check_model_io(
    inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], info: ModelInfo
) -> None:
    """Refuse a graph that does not match its `model.yaml`.

    Raises ModelFileError naming the ONNX file, the tensor and what differs: a missing or
    extra input, a missing output, a non-float32 tensor, or a size that contradicts the
    yaml (window_samples, embedding_dim, the number of labels, the front end's mels and
    frames). Symbolic sizes pass here; `OnnxEngine.infer` checks them on real outputs.
    """
    where = info.onnx_path or "model.onnx"
    want_input, want_outputs = expected_specs(info)
    if [i.name for i in inputs] != [INPUT_NAME]:
        raise ModelFileError(
            f"{where}: inputs are {[i.name for i in inputs]}, but the model contract has one "
            f"input {INPUT_NAME!r}; is this an edge-asd export?"
        )
    check_spec(inputs[0], want_input, where)
    by_name = {o.name: o for o in outputs}
    missing = [name for name in OUTPUT_NAMES if name not in by_name]
    if missing:
        raise ModelFileError(
            f"{where}: outputs {missing} are missing (it has {sorted(by_name)}); "
            f"the model contract needs {list(OUTPUT_NAMES)}"
        )
    for name, spec in want_outputs.items():
        check_spec(by_name[name], spec, where)


def describe_session(session) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The declared inputs and outputs of an onnxruntime InferenceSession."""

    def spec(arg) -> TensorSpec:
        return TensorSpec(arg.name, arg.type, None if arg.shape is None else tuple(arg.shape))

    return [spec(a) for a in session.get_inputs()], [spec(a) for a in session.get_outputs()]


def session_options(threads: int | None = None, optimise: bool = True, arena: bool = True):
    """onnxruntime SessionOptions as every engine here uses them.

    threads: intra-op threads (None: one per core); optimise=False skips graph optimisation;
    arena=False returns activation memory after each run instead of keeping it.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = arena
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1  # one graph, run sequentially: parallelism is intra-op
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # onnxruntime's warnings are not the user's concern
    # Idle intra-op threads sleep instead of spinning: a spinning thread burns a core the
    # capture, the other windows' work or the rest of the device needs, and on a busy
    # 2-core machine it was slower too (docs/benchmarks.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def load_session(
    info: ModelInfo, threads: int | None = None, use_cuda: bool = True, optimise: bool = True
):
    """An onnxruntime InferenceSession for the model; ModelFileError when it cannot load.

    optimise=False skips graph optimisation: enough to read the signature, and quicker.
    """
    import onnxruntime as ort

    options = session_options(threads, optimise)
    providers = [CPU_PROVIDER]
    if use_cuda and CUDA_PROVIDER in ort.get_available_providers():
        providers.insert(0, CUDA_PROVIDER)
    try:
        return ort.InferenceSession(info.onnx_path, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own types (Fail, InvalidGraph, ...)
        raise ModelFileError(f"{info.onnx_path}: onnxruntime cannot load it ({exc})") from None


def check_waveforms(waveforms: np.ndarray, window_samples: int) -> None:
    """Raise ValueError unless `waveforms` is float32 [batch >= 1, window_samples]."""
    if not isinstance(waveforms, np.ndarray) or waveforms.dtype != np.float32:
        kind = getattr(waveforms, "dtype", type(waveforms).__name__)
        raise ValueError(f"waveforms must be a float32 numpy array, got {kind}")
    if waveforms.ndim != 2 or waveforms.shape[0] < 1:
        raise ValueError(f"waveforms must be [batch >= 1, samples], got {waveforms.shape}")
    if waveforms.shape[1] != window_samples:
        raise ValueError(
            f"windows of {waveforms.shape[1]} samples, but the model takes {window_samples}"
        )


class OnnxEngine:
    """Runs `model.onnx` as it is with onnxruntime; see `edge_asd.engines.base.Engine`."""

    name = "onnxruntime"
    description = "onnxruntime (model.onnx as it is)"

    def __init__(self, info: ModelInfo, threads: int | None = None, use_cuda: bool = True) -> None:
        """Load and check the model. threads: intra-op threads (None: onnxruntime's
        default, one per core). Raises ModelFileError on a file that does not load or
        does not match its model.yaml."""
        self.info = info
        self.fallback_reason: str | None = None
        self._session = load_session(info, threads=threads, use_cuda=use_cuda)
        self.providers: list[str] = list(self._session.get_providers())
        inputs, outputs = describe_session(self._session)
        check_model_io(inputs, outputs, info)
        batch_dim = inputs[0].shape[0] if inputs[0].shape else None
        # A graph exported with a fixed batch size takes batches of exactly that size.
        self._fixed_batch = batch_dim if isinstance(batch_dim, int) else None
        self._expected = expected_specs(info)[1]

    def warm_up(self, batch_size: int = 1) -> None:
        """Run once on silence so that the first real window is not slow."""
        self.infer(np.zeros((batch_size, self.info.window_samples), dtype=np.float32))

    def infer(self, waveforms: np.ndarray) -> EngineOutput:
        """Outputs for waveforms float32 [B, window_samples], B >= 1.

        Raises ValueError on another dtype or shape, ModelFileError when the graph's
        outputs turn out to differ from model.yaml.
        """
        check_waveforms(waveforms, self.info.window_samples)
        waveforms = np.ascontiguousarray(waveforms)
        if self._fixed_batch is None:
            embedding, logits, logmel = self._run(waveforms)
        else:
            embedding, logits, logmel = self._run_fixed_batches(waveforms, self._fixed_batch)
        return EngineOutput(embedding=embedding, logits=logits, logmel=logmel)

    def infer_streams(
        self, waveforms: np.ndarray, streams: Sequence[str], end_frames: np.ndarray
    ) -> EngineOutput:
        """`infer`: model.onnx computes every window whole, whatever stream it comes from."""
        return self.infer(waveforms)

    def forget_streams(self) -> None:
        """Nothing is kept between windows."""

    def close(self) -> None:
        self._session = None

    def _run(self, waveforms: np.ndarray) -> list[np.ndarray]:
        if self._session is None:
            raise RuntimeError("the engine is closed")
        results = self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: waveforms})
        for name, value in zip(OUTPUT_NAMES, results, strict=True):
            want = (len(waveforms), *self._expected[name].shape[1:])
            if value.shape != want:
                raise ModelFileError(
                    f"{self.info.onnx_path}: output {name!r} came back {list(value.shape)}, "
                    f"but model.yaml implies {list(want)}"
                )
        return results

    def _run_fixed_batches(self, waveforms: np.ndarray, size: int) -> list[np.ndarray]:
        """Run in chunks of the graph's fixed batch size, zero-padding the last one."""
        parts = []
        for start in range(0, len(waveforms), size):
            chunk = waveforms[start : start + size]
            padded = np.zeros((size, chunk.shape[1]), dtype=np.float32)
            padded[: len(chunk)] = chunk
            parts.append([out[: len(chunk)] for out in self._run(padded)])
        return [np.concatenate(column) for column in zip(*parts, strict=True)]
