"""The model file split for speed: a per-frame front end, and the network per window.

`model.onnx` (the contract) runs its whole front end on every window, although a 10 s
window at a 1 s hop shares 90 % of its audio with the window before. Everything before
the Tgram's LayerNorm is frame-local: the log-mel columns (windowed DFT, power, mel,
dB) and the Tgram's first convolution. `derive_split` reads that front end out of the
graph and returns two ONNX graphs derived from it:

- `columns`: power spectra [N, n_bins] -> log-mel columns [N, n_mels], and frames
  [N, n_fft] -> the Tgram's first-conv columns [N, C] (the graph's own mel matrix and
  Tgram kernels, model.yaml's dB floor; the DFT itself is done as an FFT, after checking
  that the graph's DFT kernels are the windowed DFT of the window read from them);
- `network`: the rest of model.onnx, cut out of it unchanged from the `logmel` tensor
  (and the Tgram's first-conv output) to `embedding` and `logits`, with every PRelu
  written as y + (1-a)*relu(-y): the same function, but onnxruntime then keeps the
  whole backbone in its blocked (NCHWc) layout instead of converting around each PRelu.

Whoever uses the split checks its outputs against model.onnx (edge_asd.engines.fast_onnx).
Deriving needs the `onnx` package; the derived graphs are cached (`store`, `load_cached`)
and a cached split loads without it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_asd.model_file import ModelInfo

log = logging.getLogger(__name__)

DERIVATION = 2  # what derive_split makes; bump on any change, so old cache entries are ignored
OPSET = 18
POWER, FRAMES = "power", "frames"  # the columns graph's inputs
LOGMEL_COLUMNS, TGRAM_COLUMNS = "logmel_columns", "tgram_columns"  # and its outputs
KERNEL_TOLERANCE = 1e-5  # DFT kernels vs the windowed DFT: float32 rounding of the export


class SplitUnavailable(Exception):
    """This model cannot be split (onnx missing, a front end of another shape); says why."""


@dataclass(frozen=True)
class SplitModel:
    """The two derived graphs and what the front end around them needs.

    window: float32 [n_fft], the analysis window of the log-mel's DFT; tgram_input: the
    network's second input (None for a log-mel-only model); logmel_input: its first.
    """

    network: bytes
    columns: bytes
    window: np.ndarray
    logmel_input: str
    tgram_input: str | None
    model_sha256: str

    def meta(self) -> dict[str, Any]:
        return {
            "derivation": DERIVATION,
            "model_sha256": self.model_sha256,
            "logmel_input": self.logmel_input,
            "tgram_input": self.tgram_input,
            "window": [float(v) for v in self.window],
        }


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise SplitUnavailable("the `onnx` package is not installed (pip install onnx)") from None
    return onnx


class _Graph:
    """Look-ups over an ONNX graph: producers, consumers, constant values."""

    def __init__(self, model) -> None:
        from onnx import numpy_helper

        self.graph = model.graph
        self.producer = {out: node for node in self.graph.node for out in node.output}
        self.constants = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.attribute:
                value = node.attribute[0]
                if value.name == "value":
                    self.constants[node.output[0]] = numpy_helper.to_array(value.t)

    def nodes(self, op_type: str) -> list:
        return [node for node in self.graph.node if node.op_type == op_type]

    def constant(self, name: str) -> np.ndarray | None:
        return self.constants.get(name)


def _attribute(node, name: str, default: Any = None) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _is_frame_conv(node, graph: _Graph, channels: int | None, n_fft: int, hop: int) -> bool:
    """A 1-D Conv over the waveform: kernel n_fft, stride hop, one input channel."""
    if node.op_type != "Conv" or len(node.input) < 2:
        return False
    weight = graph.constant(node.input[1])
    if weight is None or weight.ndim != 3 or weight.shape[1:] != (1, n_fft):
        return False
    if channels is not None and weight.shape[0] != channels:
        return False
    return list(_attribute(node, "strides", [1])) == [hop] and _attribute(node, "group", 1) == 1


def _find_dft(graph: _Graph, info: ModelInfo):
    """The log-mel's DFT Conv (after a reflect Pad of n_fft // 2) and its window."""
    fe = info.front_end
    n_bins = fe.n_fft // 2 + 1
    for node in graph.nodes("Conv"):
        pad = graph.producer.get(node.input[0])
        if pad is None or pad.op_type != "Pad" or _attribute(pad, "mode") != b"reflect":
            continue
        if not _is_frame_conv(node, graph, 2 * n_bins, fe.n_fft, fe.hop_length):
            continue
        pads = graph.constant(pad.input[1]) if len(pad.input) > 1 else None
        if pads is None or sorted(set(pads.tolist()) - {0}) != [fe.n_fft // 2]:
            raise SplitUnavailable(f"the log-mel's padding is {pads}, not n_fft // 2 a side")
        kernels = graph.constant(node.input[1])[:, 0, :].astype(np.float64)
        return pad, _window_of(kernels, fe.n_fft)
    raise SplitUnavailable("no DFT convolution after a reflect pad (not an edge-asd front end)")


def _window_of(kernels: np.ndarray, n_fft: int) -> np.ndarray:
    """The window w such that kernels = [cos, -sin] DFT rows times w; else SplitUnavailable."""
    n_bins = n_fft // 2 + 1
    window = kernels[0]  # bin 0: cos(0) * w
    phase = 2.0 * np.pi * np.arange(n_bins)[:, None] * np.arange(n_fft)[None, :] / n_fft
    expected = np.concatenate([np.cos(phase) * window, -np.sin(phase) * window])
    error = np.abs(kernels - expected).max()
    if error > KERNEL_TOLERANCE * max(1.0, np.abs(window).max()):
        raise SplitUnavailable(f"the DFT kernels are not a windowed DFT (off by {error:.3g})")
    return window.astype(np.float32)


def _find_mel(graph: _Graph, info: ModelInfo) -> np.ndarray:
    """The mel matrix [n_mels, n_bins] that multiplies the power spectrum."""
    shape = (info.front_end.n_mels, info.front_end.n_fft // 2 + 1)
    for node in graph.nodes("MatMul"):
        matrix = graph.constant(node.input[0])
        if matrix is not None and matrix.shape == shape:
            return matrix.astype(np.float32)
    raise SplitUnavailable(f"no mel matrix of shape {list(shape)} in the graph")


def _find_tgram(graph: _Graph, info: ModelInfo, waveform_2d: str):
    """The Tgram's first Conv over the same waveform (None: a log-mel-only model)."""
    fe = info.front_end
    for node in graph.nodes("Conv"):
        if node.input[0] != waveform_2d:
            continue
        if not _is_frame_conv(node, graph, None, fe.n_fft, fe.hop_length):
            raise SplitUnavailable("a convolution over the waveform that is not frame-local")
        pads = list(_attribute(node, "pads", [0, 0]))
        if pads != [fe.n_fft // 2] * 2 or _attribute(node, "dilations", [1]) != [1]:
            raise SplitUnavailable(f"the Tgram's padding {pads} is not n_fft // 2 a side")
        bias = graph.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return node, graph.constant(node.input[1])[:, 0, :].astype(np.float32), bias
    return None, None, None


def derive_split(info: ModelInfo) -> SplitModel:
    """Split `info.onnx_path` (see the module doc); raises SplitUnavailable saying why not."""
    onnx = _import_onnx()
    model = onnx.load(info.onnx_path)
    graph = _Graph(model)
    pad, window = _find_dft(graph, info)
    mel = _find_mel(graph, info)
    tgram_node, tgram_kernels, tgram_bias = _find_tgram(graph, info, pad.input[0])
    tgram_input = None if tgram_node is None else tgram_node.output[0]
    inputs = ["logmel"] + ([tgram_input] if tgram_input else [])
    network = _extract(onnx, model, inputs, ["embedding", "logits"])
    _rewrite_prelu(onnx, network)
    columns = _columns_model(onnx, mel, info.front_end.db_floor, tgram_kernels, tgram_bias)
    return SplitModel(
        network=network.SerializeToString(),
        columns=columns.SerializeToString(),
        window=window,
        logmel_input="logmel",
        tgram_input=tgram_input,
        model_sha256=info.onnx_sha256,
    )


def _extract(onnx, model, inputs: list[str], outputs: list[str]):
    """The part of `model` from `inputs` to `outputs`; SplitUnavailable when it needs more."""
    from onnx.utils import Extractor

    inferred = onnx.shape_inference.infer_shapes(model)
    try:
        part = Extractor(inferred).extract_model(inputs, outputs)
    except Exception as exc:  # onnx raises several kinds for a cut that does not exist
        raise SplitUnavailable(f"cannot cut the network at {inputs}: {exc}") from None
    known = set(inputs) | {i.name for i in part.graph.initializer}
    for node in part.graph.node:
        missing = [name for name in node.input if name and name not in known]
        if missing:
            raise SplitUnavailable(f"the network also needs {missing}, not only {inputs}")
        known.update(node.output)
    return part


def _rewrite_prelu(onnx, model) -> None:
    """PRelu(y) -> y + (1-a) * Relu(-y) where the slope a is a constant (in place).

    onnxruntime has no PRelu in its blocked (NCHWc) layout, so it converts the layout
    before and after every PRelu. Here each of the three element-wise steps is a channel
    scaling (-1, then 1-a) that onnxruntime runs as a 1x1 depthwise convolution in the
    blocked layout, the Relu fused into the first and the Add into the second. The
    network then took 17.8 ms of CPU a window instead of 39.2 ms with PRelu (18.6 ms as
    a*y + (1-a)*Relu(y); 15.2 ms were it a plain Relu), on the 2-core x86 of
    docs/benchmarks.md.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {i.name: i for i in graph.initializer}

    def constant(name: str, value: np.ndarray) -> str:
        if name not in constants:
            constants[name] = numpy_helper.from_array(value.astype(np.float32), name)
            graph.initializer.append(constants[name])
        return name

    nodes = []
    for node in graph.node:
        slope = constants.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is None:
            nodes.append(node)
            continue
        y, a, out = node.input[0], node.input[1], node.output[0]
        value = numpy_helper.to_array(slope)
        minus_one = constant(f"{a}__minus_one", -np.ones_like(value))
        one_minus = constant(f"{a}__one_minus", 1.0 - value)
        nodes += [
            helper.make_node("Mul", [y, minus_one], [f"{out}__negated"]),
            helper.make_node("Relu", [f"{out}__negated"], [f"{out}__negative_part"]),
            helper.make_node("Mul", [f"{out}__negative_part", one_minus], [f"{out}__scaled"]),
            helper.make_node("Add", [y, f"{out}__scaled"], [out]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)


def _columns_model(onnx, mel: np.ndarray, db_floor: float, kernels, bias):
    """power [N, n_bins] -> dB mel columns; frames [N, n_fft] -> Tgram first-conv columns."""
    from onnx import TensorProto, helper, numpy_helper

    n_mels, n_bins = mel.shape
    constants = {
        "mel_t": mel.T.copy(),
        "db_floor": np.array(db_floor, dtype=np.float32),
        "db_scale": np.array(10.0 / math.log(10.0), dtype=np.float32),
    }
    nodes = [
        helper.make_node("MatMul", [POWER, "mel_t"], ["mel_power"]),
        helper.make_node("Clip", ["mel_power", "db_floor"], ["clipped"]),
        helper.make_node("Log", ["clipped"], ["log_power"]),
        helper.make_node("Mul", ["log_power", "db_scale"], [LOGMEL_COLUMNS]),
    ]
    inputs = [helper.make_tensor_value_info(POWER, TensorProto.FLOAT, ["n", n_bins])]
    outputs = [helper.make_tensor_value_info(LOGMEL_COLUMNS, TensorProto.FLOAT, ["n", n_mels])]
    if kernels is not None:
        constants["tgram_t"] = kernels.T.copy()
        product = "tgram_product" if bias is not None else TGRAM_COLUMNS
        nodes.append(helper.make_node("MatMul", [FRAMES, "tgram_t"], [product]))
        if bias is not None:
            constants["tgram_bias"] = bias.astype(np.float32)
            nodes.append(helper.make_node("Add", [product, "tgram_bias"], [TGRAM_COLUMNS]))
        n_fft, channels = kernels.shape[1], kernels.shape[0]
        inputs.append(helper.make_tensor_value_info(FRAMES, TensorProto.FLOAT, ["m", n_fft]))
        outputs.append(
            helper.make_tensor_value_info(TGRAM_COLUMNS, TensorProto.FLOAT, ["m", channels])
        )
    initializers = [numpy_helper.from_array(v, name) for name, v in constants.items()]
    graph = helper.make_graph(nodes, "edge_asd_columns", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


# --- the cache -------------------------------------------------------------------------


def cache_paths(cache_dir: Path, model_sha256: str) -> tuple[Path, Path, Path]:
    """(network.onnx, columns.onnx, meta.json) of a model's split in `cache_dir`."""
    stem = Path(cache_dir) / f"{model_sha256[:16]}-split{DERIVATION}"
    return (
        stem.with_name(f"{stem.name}.network.onnx"),
        stem.with_name(f"{stem.name}.columns.onnx"),
        stem.with_name(f"{stem.name}.json"),
    )


def default_cache_dir(info: ModelInfo) -> Path:
    """Beside the model: `<model dir>/.edge-asd-cache`."""
    return Path(info.onnx_path).parent / ".edge-asd-cache"


def load_cached(info: ModelInfo, cache_dir: Path) -> tuple[SplitModel, dict] | None:
    """The cached split of this model (and its meta), or None when absent or stale."""
    network, columns, meta_path = cache_paths(cache_dir, info.onnx_sha256)
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("derivation") != DERIVATION or meta.get("model_sha256") != info.onnx_sha256:
            return None
        split = SplitModel(
            network=network.read_bytes(),
            columns=columns.read_bytes(),
            window=np.asarray(meta["window"], dtype=np.float32),
            logmel_input=meta["logmel_input"],
            tgram_input=meta["tgram_input"],
            model_sha256=meta["model_sha256"],
        )
        if not {"checked", "signature"} <= set(meta):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return split, meta


def store(split: SplitModel, cache_dir: Path, extra: dict[str, Any]) -> bool:
    """Write the split and `extra` into its meta (how it compared with model.onnx, say);
    False when the cache cannot be written."""
    from edge_asd.engines.engine_cache import write_atomic

    network, columns, meta_path = cache_paths(cache_dir, split.model_sha256)
    try:
        write_atomic(network, split.network)
        write_atomic(columns, split.columns)
        meta = {**split.meta(), **extra}
        write_atomic(meta_path, (json.dumps(meta, indent=1) + "\n").encode())
    except OSError as exc:
        log.info(
            "cannot cache the split model in %s (%s); deriving it at each start",
            cache_dir,
            os.strerror(exc.errno) if exc.errno else exc,
        )
        return False
    return True
