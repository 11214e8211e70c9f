"""The onnxruntime engines: loading, checking the graphs against model.yaml, inputs.

The fallback from TensorRT to onnxruntime is tested once, in test_tensorrt_engine.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge_asd.engines import open_engine
from edge_asd.engines.onnx_engine import OnnxEngine
from edge_asd.errors import EXIT_USAGE, ModelFileError, UserError
from edge_asd.model_file import load_model_info, sha256_of


def copy_model(model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model, target)
    return target


def edit_yaml(model_dir: Path, **changes) -> None:
    path = model_dir / "model.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_engine_runs_a_batch_and_says_what_it_is(tiny_model):
    engine = open_engine(tiny_model, threads=1)
    engine.warm_up(2)
    out = engine.infer(np.zeros((3, engine.info.window_samples), dtype=np.float32))
    assert engine.name == "onnxruntime" and engine.fallback_reason is None
    assert out.embedding.shape == (3, engine.info.embedding_dim)
    assert out.logits.shape == (3, len(engine.info.labels))
    assert out.logmel.shape == (3, engine.info.front_end.n_mels, engine.info.front_end.frames)
    assert "CPUExecutionProvider" in engine.providers


def test_threads_setting_reaches_onnxruntime(tiny_model):
    engine = OnnxEngine(load_model_info(tiny_model), threads=1)
    assert engine._session.get_session_options().intra_op_num_threads == 1


@pytest.mark.parametrize(
    ("waveforms", "message"),
    [
        (np.zeros((2, 160000), dtype=np.float64), "float32"),
        (np.zeros((2, 16000), dtype=np.float32), "16000 samples"),
        (np.zeros(160000, dtype=np.float32), "batch"),
        (np.zeros((0, 160000), dtype=np.float32), "batch"),
        ([[0.0] * 160000], "float32"),
    ],
)
def test_wrong_input_is_refused_with_a_reason(tiny_model, waveforms, message):
    engine = open_engine(tiny_model, threads=1)
    with pytest.raises(ValueError, match=message):
        engine.infer(waveforms)


@pytest.mark.parametrize("optimise", [True, False])  # the split, model.onnx as it is
def test_model_yaml_with_other_labels_is_refused(tiny_model, tmp_path, optimise):
    model = copy_model(tiny_model, tmp_path)
    edit_yaml(model, labels=["fan/section_00", "fan/section_01"])
    with pytest.raises(
        ModelFileError, match=r"output 'logits' has shape \[batch, 3\].*\[batch, 2\]"
    ) as caught:
        open_engine(model, optimise=optimise)
    graph = "split-network.onnx" if optimise else "model.onnx"
    assert str(model / graph) in str(caught.value)


def test_model_yaml_with_another_window_is_refused(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    edit_yaml(model, window_samples=80000)  # 5 s: a window the runtime could run, but
    # not this model's: its front end's frames (and its graph) say 10 s
    with pytest.raises(ModelFileError, match=r"front_end.frames: 626: expected 313") as caught:
        open_engine(model)
    assert f"{model / 'model.yaml'}:" in str(caught.value)


@pytest.mark.parametrize("optimise", [True, False])
def test_model_yaml_with_another_embedding_size_is_refused(tiny_model, tmp_path, optimise):
    model = copy_model(tiny_model, tmp_path)
    edit_yaml(model, embedding_dim=256)
    with pytest.raises(ModelFileError, match="embedding"):
        open_engine(model, optimise=optimise)


def test_graph_without_a_contract_output_is_refused(tiny_model, tmp_path):
    onnx = pytest.importorskip("onnx")
    model = copy_model(tiny_model, tmp_path)
    graph_file = model / "model.onnx"
    proto = onnx.load(str(graph_file))
    old = proto.graph.output[2].name
    for node in proto.graph.node:
        node.output[:] = ["features" if name == old else name for name in node.output]
        node.input[:] = ["features" if name == old else name for name in node.input]
    proto.graph.output[2].name = "features"
    onnx.save(proto, str(graph_file))
    edit_yaml(model, onnx_sha256=sha256_of(graph_file))  # a consistent pair, wrong graph
    with pytest.raises(ModelFileError, match=r"outputs \['logmel'\] are missing"):
        open_engine(model, optimise=False)
    with pytest.raises(ModelFileError, match=r"split was made from another model\.onnx"):
        open_engine(model)  # and the split, from the old graph, is not run in its place


def test_a_file_that_is_not_onnx_is_refused(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    (model / "model.onnx").write_bytes(b"not a graph")
    edit_yaml(model, onnx_sha256=sha256_of(model / "model.onnx"))
    with pytest.raises(ModelFileError, match="onnxruntime cannot load it"):
        open_engine(model, optimise=False)


def test_unknown_engine_kind_is_a_usage_error(tiny_model):
    with pytest.raises(UserError, match="openvino") as caught:
        open_engine(tiny_model, "openvino")
    assert caught.value.exit_code == EXIT_USAGE
