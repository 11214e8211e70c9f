"""The static TensorRT check: the real export passes, hand-built bad graphs are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge_asd.engines.trt_ops import (  # noqa: E402
    MAX_OPSET,
    TENSORRT10_OPERATORS,
    check_graph,
    require_tensorrt_ready,
)
from edge_asd.errors import ModelFileError  # noqa: E402
from edge_asd.model_file import MODEL_ONNX  # noqa: E402


def save(tmp_path: Path, nodes, inputs, outputs, initializers=(), opset=18, name="g") -> Path:
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def tensor(name: str, dims) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def relu_graph(tmp_path: Path, input_dims, output_dims, **kwargs) -> Path:
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    return save(tmp_path, [node], [tensor("x", input_dims)], [tensor("y", output_dims)], **kwargs)


def test_exported_model_passes_the_tensorrt_check(exported_model: Path) -> None:
    result = check_graph(exported_model / MODEL_ONNX)
    assert result.ok, result.problems
    assert result.batch_dim is not None
    assert result.opset is not None and result.opset <= MAX_OPSET
    assert {"Conv", "Log", "MatMul"} <= set(result.operators)
    assert set(result.operators) <= TENSORRT10_OPERATORS
    assert "DFT" not in result.operators and "STFT" not in result.operators


def test_a_static_graph_with_a_dynamic_batch_passes(tmp_path: Path) -> None:
    result = check_graph(relu_graph(tmp_path, ["batch", 160], ["batch", 160]))
    assert result.ok, result.problems
    assert result.operators == {"Relu": 1}
    assert result.batch_dim == "batch"


def test_an_unsupported_operator_is_named_with_a_node(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("DFT", ["r"], ["y"], name="spectrum", onesided=1),
    ]
    path = save(tmp_path, nodes, [tensor("x", ["batch", 16, 1])], [tensor("y", ["batch", 9, 2])])
    result = check_graph(path)
    assert not result.ok
    assert any("DFT" in p and "'spectrum'" in p for p in result.problems), result.problems


def test_a_dynamic_time_dimension_is_refused(tmp_path: Path) -> None:
    result = check_graph(relu_graph(tmp_path, ["batch", "samples"], ["batch", "samples"]))
    assert not result.ok
    assert any("input 'x' axis 1 is dynamic (samples)" in p for p in result.problems)
    assert any("output 'y' axis 1 is dynamic" in p for p in result.problems)


def test_a_fixed_batch_is_refused(tmp_path: Path) -> None:
    result = check_graph(relu_graph(tmp_path, [1, 160], [1, 160]))
    assert any("fixed batch of 1" in p for p in result.problems), result.problems


def test_an_opset_newer_than_tensorrt_10_3_reads_is_refused(tmp_path: Path) -> None:
    path = relu_graph(tmp_path, ["batch", 4], ["batch", 4], opset=MAX_OPSET + 1)
    result = check_graph(path)
    assert any(f"opset {MAX_OPSET + 1}" in p for p in result.problems), result.problems


def test_a_custom_domain_operator_is_refused(tmp_path: Path) -> None:
    node = helper.make_node("Gelu", ["x"], ["y"], name="fused", domain="com.microsoft")
    graph = helper.make_graph([node], "g", [tensor("x", ["b", 4])], [tensor("y", ["b", 4])])
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)],
    )
    onnx.save(model, str(tmp_path / "custom.onnx"))
    result = check_graph(tmp_path / "custom.onnx")
    assert any("com.microsoft::Gelu" in p for p in result.problems), result.problems


def test_an_unsupported_operator_inside_a_subgraph_is_found(tmp_path: Path) -> None:
    unique = helper.make_node("Unique", ["x"], ["u"], name="inner_unique")
    branch = helper.make_graph([unique], "branch", [], [tensor("u", [None])])
    condition = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node(
        "If", ["cond"], ["y"], name="choose", then_branch=branch, else_branch=branch
    )
    path = save(
        tmp_path, [node], [tensor("x", ["batch", 4])], [tensor("y", ["batch", 4])], [condition]
    )
    result = check_graph(path)
    assert any("Unique" in p and "inner_unique" in p for p in result.problems), result.problems


def test_reduction_axes_must_be_constant(tmp_path: Path) -> None:
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    constant = [helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=1)]
    inputs, outputs = [tensor("x", ["batch", 4])], [tensor("y", ["batch", 1])]
    assert check_graph(save(tmp_path, constant, inputs, outputs, [axes], name="c")).ok

    computed = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Size", ["shape"], ["rank"], name="rank"),
        helper.make_node("Sub", ["rank", "one"], ["last"], name="last"),
        helper.make_node("Unsqueeze", ["last", "zero"], ["axes"], name="as_list"),
        helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=1),
    ]
    scalars = [
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
    ]
    result = check_graph(save(tmp_path, computed, inputs, outputs, scalars, name="d"))
    assert any("ReduceMean node 'mean'" in p and "constant" in p for p in result.problems)


def test_an_intermediate_tensor_with_a_data_dependent_size_is_refused(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("NonZero", ["x"], ["where"], name="nonzero"),
        helper.make_node("Cast", ["where"], ["wf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["wf", "axes"], ["total"], name="sum", keepdims=0),
        helper.make_node("Add", ["x", "total"], ["y"], name="add"),
    ]
    axes = numpy_helper.from_array(np.array([0, 1], dtype=np.int64), "axes")
    path = save(tmp_path, nodes, [tensor("x", ["batch", 4])], [tensor("y", ["batch", 4])], [axes])
    result = check_graph(path)
    assert any("intermediate" in p and "'where'" in p for p in result.problems), result.problems


def test_require_lists_every_problem_in_one_error(tmp_path: Path) -> None:
    nodes = [helper.make_node("DFT", ["x"], ["y"], name="spectrum")]
    path = save(tmp_path, nodes, [tensor("x", [1, "samples", 1])], [tensor("y", [1, "bins", 2])])
    with pytest.raises(ModelFileError) as raised:
        require_tensorrt_ready(path)
    message = str(raised.value)
    assert str(path) in message
    for expected in ("DFT", "fixed batch", "axis 1 is dynamic (samples)"):
        assert expected in message


def test_a_file_that_is_not_onnx_is_a_model_file_error(tmp_path: Path) -> None:
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"\x00not a protobuf at all" * 10)
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        check_graph(junk)
    with pytest.raises(ModelFileError, match="no such file"):
        check_graph(tmp_path / "missing.onnx")
