"""A static check that an ONNX graph will import into TensorRT 10 and build as we need it.

It runs without TensorRT or a GPU (it reads the graph with the `onnx` package), so a model
can be vetted on a workstation or in CI before it reaches a Jetson, and `edge-asd
build-engine` can refuse a graph with a clear reason before a build that takes minutes.

Checked: the default-domain opset is one TensorRT 10.3's parser reads (9..20); every
operator, also inside subgraphs and model-local functions, is one that parser imports;
the restrictions on those operators that can be seen statically (reduction axes given as
an input must be constants); tensor element types TensorRT has; and every shape is static
apart from the batch (the first axis of the input), which is what lets one optimization
profile over the batch describe the whole engine.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from edge_asd.errors import EXIT_RUNTIME, ModelFileError, UserError

MIN_OPSET = 9
MAX_OPSET = 20  # TensorRT 10.0 to 10.7 parsers: "opset 9 to opset 20" (onnx-tensorrt docs)

# Operators the ONNX parser of TensorRT 10.x imports (onnx-tensorrt, docs/operators.md, 10.x
# branches), limited to those already there in 10.0, so that JetPack 6's TensorRT 10.3
# has them all. Left out on purpose: DFT and STFT (no DFT importer; STFT came later and
# runs in FP32 only: our log-mel is a Conv with fixed DFT kernels instead), and every
# operator the table marks unsupported (Sequence*, String*, ConvInteger, ...).
TENSORRT10_OPERATORS = frozenset(
    {
        "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan",
        "Atanh", "AveragePool", "BatchNormalization", "BlackmanWindow", "Cast", "CastLike",
        "Ceil", "Celu", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv",
        "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "DequantizeLinear", "Div",
        "Dropout", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten",
        "Floor", "GRU", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm",
        "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual",
        "GridSample", "GroupNormalization", "HammingWindow", "HannWindow", "HardSigmoid",
        "HardSwish", "Hardmax", "Identity", "If", "ImageScaler", "InstanceNormalization",
        "IsInf", "IsNaN", "LRN", "LSTM", "LayerNormalization", "LeakyRelu", "Less",
        "LessOrEqual", "Log", "LogSoftmax", "Loop", "LpNormalization", "LpPool", "MatMul",
        "Max", "MaxPool", "Mean", "MeanVarianceNormalization", "Min", "Mish", "Mod", "Mul",
        "Neg", "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "PRelu", "Pad",
        "ParametricSoftplus", "Pow", "QuantizeLinear", "RNN", "RandomNormal",
        "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Reciprocal",
        "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
        "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize",
        "ReverseSequence", "RoiAlign", "Round", "ScaledTanh", "Scan", "Scatter",
        "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin",
        "Sinh", "Size", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split",
        "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK",
        "Transpose", "Trilu", "Unsqueeze", "Upsample", "Where", "Xor"
    }
)  # fmt: skip

# Operators whose axes, when given as an input, the parser needs as a build-time constant.
AXES_INPUTS = {
    **{op: 1 for op in TENSORRT10_OPERATORS if op.startswith("Reduce")},
    "CumSum": 1,
}
DEFAULT_DOMAINS = ("", "ai.onnx")
# TensorProto element types TensorRT has no type for (DOUBLE is cast down by the parser).
UNSUPPORTED_TYPES = {4: "uint16", 5: "int16", 8: "string", 12: "uint32", 13: "uint64"}
UNSUPPORTED_TYPES.update({14: "complex64", 15: "complex128"})
MAX_LISTED = 5  # problems of one kind listed before "... and N more"


@dataclass(frozen=True)
class GraphCheck:
    """The result: the opset, how often each operator occurs, and what would not work."""

    path: str
    opset: int | None
    operators: dict[str, int]
    batch_dim: str | None
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_graph(onnx_path: str | os.PathLike) -> GraphCheck:
    """Check `onnx_path` for TensorRT 10; the problems come back, nothing is raised for them.

    Raises ModelFileError when the file cannot be read as ONNX, UserError when the
    `onnx` package is not installed.
    """
    onnx = _import_onnx()
    path = os.fspath(onnx_path)
    try:
        model = onnx.load(path)
        inferred = onnx.shape_inference.infer_shapes(model)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except Exception as exc:  # onnx raises DecodeError, ValidationError, InferenceError...
        raise ModelFileError(f"{path}: not a readable ONNX model ({exc})") from None
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)
    problems = _opset_problems(opset)
    operators: Counter[str] = Counter()
    problems += _node_problems(model, operators)
    batch_dim, io_problems = _io_problems(inferred.graph)
    problems += io_problems
    problems += _value_problems(inferred.graph, batch_dim)
    return GraphCheck(path, opset, dict(sorted(operators.items())), batch_dim, tuple(problems))


def require_tensorrt_ready(onnx_path: str | os.PathLike) -> GraphCheck:
    """`check_graph`, raising ModelFileError that lists every problem when there is one."""
    result = check_graph(onnx_path)
    if not result.ok:
        raise ModelFileError(
            f"{result.path}: TensorRT 10 cannot build this graph as edge-asd needs it:\n  - "
            + "\n  - ".join(result.problems)
        )
    return result


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise UserError(
            "the TensorRT graph check needs the `onnx` package: pip install onnx",
            exit_code=EXIT_RUNTIME,
        ) from None
    return onnx


def _opset_problems(opset: int | None) -> list[str]:
    if opset is None:
        return ["the model imports no default-domain opset"]
    if not MIN_OPSET <= opset <= MAX_OPSET:
        return [
            f"opset {opset} is outside what TensorRT 10.3's parser reads "
            f"({MIN_OPSET}..{MAX_OPSET}); export with opset {MAX_OPSET} or lower"
        ]
    return []


def _node_problems(model, operators: Counter[str]) -> list[str]:
    """Unsupported and custom operators, and axes inputs that are not constants."""
    functions = {(f.domain, f.name): f for f in model.functions}
    unsupported: dict[str, list[str]] = {}
    axes: list[str] = []

    def visit(nodes, constants: set[str]) -> None:
        constants = constants | {out for n in nodes if n.op_type == "Constant" for out in n.output}
        for node in nodes:
            function = functions.get((node.domain, node.op_type))
            if function is not None:  # a model-local function: the parser inlines it
                visit(function.node, set())
                continue
            custom = node.domain not in DEFAULT_DOMAINS
            name = f"{node.domain}::{node.op_type}" if custom else node.op_type
            operators[name] += 1
            if name not in TENSORRT10_OPERATORS:
                unsupported.setdefault(name, []).append(node.name or "(unnamed)")
            index = AXES_INPUTS.get(node.op_type)
            axes_input = node.input[index] if index is not None and len(node.input) > index else ""
            if axes_input and axes_input not in constants:
                axes.append(f"{node.op_type} node {node.name!r}")
            for attribute in node.attribute:
                for graph in [attribute.g, *attribute.graphs]:
                    visit(graph.node, constants | {i.name for i in graph.initializer})

    initializers = {i.name for i in model.graph.initializer}
    visit(model.graph.node, initializers)
    problems = [
        f"operator {op} ({len(nodes)}x, e.g. node {nodes[0]!r}) is not imported by "
        "TensorRT 10's ONNX parser"
        for op, nodes in sorted(unsupported.items())
    ]
    problems += [
        f"{where}: its axes come from a computed tensor; TensorRT needs them constant"
        for where in axes
    ]
    return problems


def _dims(value) -> list[int | str | None] | None:
    """A value's dims (int, symbol or None for unknown); None when the shape is unknown."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
        for d in tensor_type.shape.dim
    ]


def _io_problems(graph) -> tuple[str | None, list[str]]:
    """Graph inputs and outputs: a dynamic first axis (the batch), all other axes static."""
    initializers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    problems: list[str] = []
    batch_dim = None
    for kind, values in (("input", inputs), ("output", graph.output)):
        for value in values:
            dims = _dims(value)
            if not dims:
                problems.append(f"{kind} {value.name!r} has no declared shape")
                continue
            if isinstance(dims[0], int):
                problems.append(
                    f"{kind} {value.name!r} has a fixed batch of {dims[0]}; export with a "
                    "dynamic first axis so one engine takes every machine's window at once"
                )
            elif kind == "input" and batch_dim is None:
                batch_dim = dims[0]
            for axis, dim in enumerate(dims[1:], start=1):
                if not isinstance(dim, int) or dim <= 0:
                    problems.append(
                        f"{kind} {value.name!r} axis {axis} is dynamic ({dim or 'unknown'}); "
                        "only the batch may vary (a fixed window gives a fixed time axis)"
                    )
    return batch_dim, problems


def _value_problems(graph, batch_dim: str | None) -> list[str]:
    """Intermediate tensors: element types TensorRT has, no dynamic axis but the batch."""
    dynamic, types = [], []
    for value in [*graph.value_info, *graph.initializer]:
        elem_type = getattr(value, "data_type", None) or value.type.tensor_type.elem_type
        if elem_type in UNSUPPORTED_TYPES:
            types.append(f"{value.name!r} is {UNSUPPORTED_TYPES[elem_type]}")
        dims = _dims(value) if hasattr(value, "type") else []
        symbolic = [d for d in dims or [] if not isinstance(d, int) and d != batch_dim]
        if symbolic:
            dynamic.append(f"{value.name!r} {dims}")
    problems = [f"tensor {t}, a type TensorRT does not have" for t in _listed(types)]
    if dynamic:
        problems.append(
            "intermediate tensors with a dynamic axis other than the batch: "
            + ", ".join(_listed(dynamic))
        )
    return problems


def _listed(items: list[str]) -> list[str]:
    """At most MAX_LISTED items, then one that says how many were left out."""
    if len(items) <= MAX_LISTED:
        return items
    return [*items[:MAX_LISTED], f"... and {len(items) - MAX_LISTED} more"]
