"""Split model.onnx for speed at export, check the split against it, write it beside it.

The runtime (edge_asd.engines.fast_onnx) runs a model's split when model.yaml names one;
this module makes it, once per model, with the `onnx` package (the `train` extra; torch is
not needed): `edge-asd-train split --model DIR` adds it to a model exported before splits
were part of the bundle, and `train.export.export_model_dir` adds it to every export.

What the split is (edge_asd.engines.split_graph): `derive_split` reads the front end out of
model.onnx and returns two graphs derived from it:

- `columns`: power spectra [N, n_bins] -> log-mel columns [N, n_mels], and frames
  [N, n_fft] -> the Tgram's first-conv columns [N, C] (the graph's own mel matrix and
  Tgram kernels, model.yaml's dB floor; the DFT itself is done as an FFT, after checking
  that the graph's DFT kernels are the windowed DFT of the window read from them);
- `network`: the rest of model.onnx, cut out of it unchanged from the `logmel` tensor
  (and the Tgram's first-conv output) to `embedding` and `logits`, with every PRelu
  written as y + (1-a)*relu(-y): the same function, but onnxruntime then keeps the
  whole backbone in its blocked (NCHWc) layout instead of converting around each PRelu.

`check_split` runs the split beside model.onnx on generated windows and refuses it past
edge_asd.engines.fast_onnx.TOLERANCES; `add_split` writes the files and model.yaml's
`split:` (file names, sha256, derivation, measured differences). model.onnx and its sha256
(which calibrations bind to) do not change.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_asd.engines.split_graph import (
    DERIVATION,
    FRAMES,
    LOGMEL_COLUMNS,
    POWER,
    SPLIT_FILES,
    TGRAM_COLUMNS,
    SplitModel,
    SplitUnavailable,
)
from edge_asd.model_file import (
    MODEL_YAML,
    ModelInfo,
    SplitFile,
    SplitInfo,
    load_model_info,
    sha256_of,
    write_model_info,
)

log = logging.getLogger(__name__)

OPSET = 18
KERNEL_TOLERANCE = 1e-5  # DFT kernels vs the windowed DFT: float32 rounding of the export


def add_split(model: str | os.PathLike, threads: int | None = None) -> ModelInfo:
    """Derive model.onnx's split, check it, write it into the model directory; returns
    the model's new info (model.yaml with `split:`).

    Raises SplitUnavailable (saying why) when the model cannot be split or its split
    differs from model.onnx past the tolerances: nothing is written then. Raises
    ModelFileError when the model directory does not load.
    """
    info = load_model_info(model, without_split=True)  # a split there is made again
    split = derive_split(info)
    differences = check_split(info, split, threads)
    directory = info.directory
    _write_files(directory, split)
    entries = {
        name: SplitFile(file, sha256_of(directory / file)) for name, file in SPLIT_FILES.items()
    }
    split_info = SplitInfo(
        derivation=DERIVATION,
        onnx_sha256=info.onnx_sha256,
        logmel_input=split.logmel_input,
        tgram_input=split.tgram_input,
        differences={k: float(f"{v:.3g}") for k, v in differences.items()},
        **entries,
    )
    info = replace(info, split=split_info)
    write_model_info(info, directory / MODEL_YAML)
    return info


def _write_files(directory: Path, split: SplitModel) -> None:
    from edge_asd.engines.engine_cache import write_atomic

    window = io.BytesIO()
    np.save(window, np.asarray(split.window, dtype=np.float32), allow_pickle=False)
    contents = {"network": split.network, "columns": split.columns, "window": window.getvalue()}
    for name, file in SPLIT_FILES.items():
        write_atomic(directory / file, contents[name])


def check_split(info: ModelInfo, split: SplitModel, threads: int | None = None) -> dict:
    """Largest differences of the split's outputs from model.onnx's on generated windows
    (edge_asd.engines.fast_onnx.check_windows), in the units of TOLERANCES; raises
    SplitUnavailable past them."""
    from edge_asd.engines.fast_onnx import (
        TOLERANCES,
        FastOnnxEngine,
        check_windows,
        compare_outputs,
    )
    from edge_asd.engines.onnx_engine import OnnxEngine

    windows = check_windows(info.window_samples, info.sample_rate)
    plain = OnnxEngine(info, threads=threads, use_cuda=False)
    fast = FastOnnxEngine(info, threads=threads, split=split)
    try:
        differences = compare_outputs(fast.infer(windows), plain.infer(windows))
    finally:
        plain.close()
        fast.close()
    over = {k: v for k, v in differences.items() if v > TOLERANCES[k]}
    if over:
        raise SplitUnavailable(
            f"the split model differs from model.onnx by {over} (tolerances {TOLERANCES})"
        )
    return differences


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
