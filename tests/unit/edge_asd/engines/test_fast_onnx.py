"""The split engine: the same outputs and scores as model.onnx, frames shared by a stream's
windows without changing anything, the split cached beside the model, and model.onnx
run as it is whenever the split cannot be trusted."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from edge_asd.engines import open_engine
from edge_asd.engines.fast_onnx import (
    SCORE_TOLERANCES,
    TOLERANCES,
    FastOnnxEngine,
    compare_outputs,
    open_fast_engine,
)
from edge_asd.engines.onnx_engine import OnnxEngine
from edge_asd.engines.split_graph import _rewrite_prelu, cache_paths, default_cache_dir
from edge_asd.errors import ModelFileError
from edge_asd.model_file import load_model_info, sha256_of
from edge_asd.scoring.knn import knn_scores
from edge_asd.scoring.section import section_scores
from edge_asd.synth import Fault, render_clip
from edge_asd.windows import sliding_windows

HOP = 16000  # 1 s


def copy_model(exported_model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(exported_model, target, ignore=shutil.ignore_patterns(".edge-asd-cache"))
    return target


def recording(seconds: float = 24.0) -> np.ndarray:
    """Fan sound with a fault in its second half: windows of both kinds."""
    faults = (Fault("impacts", seconds / 2, seconds),)
    return render_clip("fan", 1, "source", seconds, seed=5, faults=faults)


def windows_of(samples: np.ndarray, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows and their end samples in the stream."""
    windows = np.ascontiguousarray(sliding_windows(samples, 160000, hop))
    return windows, 160000 + hop * np.arange(len(windows))


@pytest.fixture(scope="module")
def plain_outputs(exported_model):
    windows, ends = windows_of(recording())
    engine = OnnxEngine(load_model_info(exported_model), threads=2, use_cuda=False)
    return windows, ends, engine.infer(windows)


def test_split_engine_outputs_and_scores_match_model_onnx(exported_model, plain_outputs):
    windows, ends, plain = plain_outputs
    engine = open_engine(exported_model, threads=2, optimise=True)
    assert isinstance(engine, FastOnnxEngine)
    for fast in (engine.infer(windows), engine.infer_streams(windows, ["m"] * len(ends), ends)):
        assert fast.embedding.shape == plain.embedding.shape
        assert fast.logmel.shape == plain.logmel.shape
        differences = compare_outputs(fast, plain)
        assert all(differences[k] <= TOLERANCES[k] for k in TOLERANCES), differences
        bank = plain.embedding[::5]
        knn_gap = np.abs(knn_scores(fast.embedding, bank) - knn_scores(plain.embedding, bank))
        section_gap = np.abs(section_scores(fast.logits, [0]) - section_scores(plain.logits, [0]))
        assert knn_gap.max() <= SCORE_TOLERANCES["knn"]
        assert section_gap.max() <= SCORE_TOLERANCES["section"]


@pytest.mark.parametrize("hop", [HOP, 11200, 48000])  # 1 s, 0.7 s, 3 s
def test_frames_shared_between_windows_change_no_output(exported_model, hop):
    """A stream's windows, one by one or in batches, give what each window alone gives."""
    windows, ends = windows_of(recording(20.0), hop)
    alone = FastOnnxEngine(load_model_info(exported_model), threads=2).infer(windows)
    for batch in (1, 3, len(windows)):
        engine = FastOnnxEngine(load_model_info(exported_model), threads=2)
        parts = [
            engine.infer_streams(windows[i : i + batch], ["m"] * len(ends[i : i + batch]),
                                 ends[i : i + batch])
            for i in range(0, len(windows), batch)
        ]  # fmt: skip
        for name in ("embedding", "logits", "logmel"):
            together = np.concatenate([getattr(part, name) for part in parts])
            np.testing.assert_allclose(together, getattr(alone, name), rtol=1e-5, atol=1e-5)


def test_interleaved_streams_with_skipped_windows_keep_apart(exported_model):
    """Three machines in one batch per hop, one of them skipping hops (a late consumer)."""
    streams = {name: recording(18.0 + i) for i, name in enumerate(("a", "b", "c"))}
    info = load_model_info(exported_model)
    engine = FastOnnxEngine(info, threads=2)
    reference = FastOnnxEngine(info, threads=2)
    for hop_index in range(8):
        names = [n for n in streams if not (n == "b" and hop_index % 3 == 1)]
        end = 160000 + hop_index * HOP
        batch = np.stack([streams[n][end - 160000 : end] for n in names])
        got = engine.infer_streams(batch, names, np.full(len(names), end))
        np.testing.assert_allclose(got.embedding, reference.infer(batch).embedding, atol=1e-5)


def test_prelu_rewrite_is_the_same_function_for_any_slope():
    """Slopes below 0, between 0 and 1 and above 1, and an input of both signs."""
    slopes = np.array([-0.5, 0.0, 0.25, 1.0, 1.7], dtype=np.float32).reshape(5, 1, 1)
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["y"])],
        "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 4, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 4, 6])],
        [numpy_helper.from_array(slopes, "slope")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = np.random.default_rng(0).normal(size=(1, 5, 4, 6)).astype(np.float32)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    _rewrite_prelu(onnx, model)
    assert "PRelu" not in {node.op_type for node in model.graph.node}
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(after, np.where(x > 0, x, slopes * x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)


def test_split_is_cached_beside_the_model_and_reused(exported_model, tmp_path, caplog):
    model = copy_model(exported_model, tmp_path)
    info = load_model_info(model)
    with caplog.at_level(logging.INFO, logger="edge_asd.engines.fast_onnx"):
        first = FastOnnxEngine(info, threads=1)
        assert "derived the split model" in caplog.text
        caplog.clear()
        second = FastOnnxEngine(info, threads=1)
        assert "derived the split model" not in caplog.text
    for path in cache_paths(default_cache_dir(info), info.onnx_sha256):
        assert path.is_file()
    assert second.checked == first.checked
    assert all(second.checked[k] <= TOLERANCES[k] for k in TOLERANCES)


def test_cached_split_still_refuses_a_model_yaml_that_contradicts_the_graph(
    exported_model, tmp_path
):
    model = copy_model(exported_model, tmp_path)
    FastOnnxEngine(load_model_info(model), threads=1)  # caches the split
    path = model / "model.yaml"
    data = yaml.safe_load(path.read_text())
    data["labels"] = data["labels"][:2]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ModelFileError, match=r"output 'logits' has shape \[batch, 3\]"):
        open_engine(model, optimise=True)


def test_an_unwritable_cache_only_costs_the_derivation(exported_model, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    info = load_model_info(exported_model)
    engine = FastOnnxEngine(info, threads=1, cache_dir=blocker / "cache")
    out = engine.infer(np.zeros((1, info.window_samples), dtype=np.float32))
    assert out.embedding.shape == (1, info.embedding_dim)


def edit_graph(model: Path, change) -> None:
    """Apply `change(onnx model)` to model.onnx and record its new sha256 in model.yaml."""
    onnx_path = model / "model.onnx"
    graph = onnx.load(onnx_path)
    change(graph)
    onnx.save(graph, onnx_path)
    data = yaml.safe_load((model / "model.yaml").read_text())
    data["onnx_sha256"] = sha256_of(onnx_path)
    (model / "model.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_front_end_of_another_shape_runs_model_onnx_as_it_is(exported_model, tmp_path, caplog):
    def zero_padding(graph) -> None:
        pad = next(n for n in graph.graph.node if n.op_type == "Pad")
        pad.attribute[0].s = b"constant"

    model = copy_model(exported_model, tmp_path)
    edit_graph(model, zero_padding)
    with caplog.at_level(logging.WARNING):
        engine = open_engine(model, threads=1, optimise=True)
    assert isinstance(engine, OnnxEngine)
    assert "reflect pad" in caplog.text


def test_a_split_that_does_not_match_model_onnx_is_refused(exported_model, tmp_path, caplog):
    """model.onnx floors the mel power at 1e-5, model.yaml says 1e-10: silence differs."""

    def floor_at_1e5(graph) -> None:
        clip = next(n for n in graph.graph.node if n.op_type == "Clip")
        floor = next(i for i in graph.graph.initializer if i.name == clip.input[1])
        floor.CopyFrom(numpy_helper.from_array(np.array(1e-5, dtype=np.float32), floor.name))

    model = copy_model(exported_model, tmp_path)
    edit_graph(model, floor_at_1e5)
    with caplog.at_level(logging.WARNING):
        engine = open_fast_engine(load_model_info(model), threads=1)
    assert isinstance(engine, OnnxEngine)
    assert "differs from model.onnx" in caplog.text and "logmel_db" in caplog.text
    info = load_model_info(model)
    assert not any(path.exists() for path in cache_paths(default_cache_dir(info), info.onnx_sha256))
