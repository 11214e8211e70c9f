"""The split, made once at export (train/split.py): derived from model.onnx, checked against
it, written beside it and recorded in model.yaml; refused, with nothing written, when it
cannot be trusted. Needs the `onnx` package, not torch (the tiny committed model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx", reason="deriving a split needs the onnx package")
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge_asd.engines import open_engine  # noqa: E402
from edge_asd.engines.fast_onnx import TOLERANCES, FastOnnxEngine  # noqa: E402
from edge_asd.engines.split_graph import DERIVATION, SPLIT_FILES, SplitUnavailable  # noqa: E402
from edge_asd.model_file import load_model_info, sha256_of  # noqa: E402
from train.split import _rewrite_prelu, add_split  # noqa: E402


def unsplit_copy(model: Path, tmp_path: Path) -> Path:
    """A copy of `model` as an export before splits were part of the bundle."""
    target = tmp_path / "model"
    shutil.copytree(model, target)
    for file in SPLIT_FILES.values():
        (target / file).unlink()
    data = yaml.safe_load((target / "model.yaml").read_text())
    data.pop("split")
    (target / "model.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def edit_graph(model: Path, change) -> None:
    """Apply `change(onnx model)` to model.onnx and record its new sha256 in model.yaml."""
    onnx_path = model / "model.onnx"
    graph = onnx.load(onnx_path)
    change(graph)
    onnx.save(graph, onnx_path)
    data = yaml.safe_load((model / "model.yaml").read_text())
    data["onnx_sha256"] = sha256_of(onnx_path)
    (model / "model.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_split_command_adds_the_split_to_an_older_model_directory(tiny_model, tmp_path, capsys):
    from train.cli import main

    model = unsplit_copy(tiny_model, tmp_path)
    before = load_model_info(model)
    assert main(["split", "--model", str(model), "--threads", "1"]) == 0
    assert "split written to" in capsys.readouterr().out
    after = load_model_info(model)
    assert after.onnx_sha256 == before.onnx_sha256 == sha256_of(model / "model.onnx")
    assert after.split.derivation == DERIVATION
    assert after.split.onnx_sha256 == after.onnx_sha256
    for entry in after.split.files().values():
        assert entry.sha256 == sha256_of(model / entry.file)
    assert set(after.split.differences) == set(TOLERANCES)
    assert all(after.split.differences[k] <= TOLERANCES[k] for k in TOLERANCES)
    assert isinstance(open_engine(model, threads=1), FastOnnxEngine)
    # the derivation is deterministic: the committed bundle's split, byte for byte
    for file in SPLIT_FILES.values():
        assert sha256_of(model / file) == sha256_of(tiny_model / file), (
            f"{file} is not what the derivation makes now: if it changed on purpose, bump "
            "split_graph.DERIVATION and run tests/fixtures/make_tiny_model.py"
        )


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


def test_a_front_end_of_another_shape_is_not_split(tiny_model, tmp_path):
    def zero_padding(graph) -> None:
        pad = next(n for n in graph.graph.node if n.op_type == "Pad")
        pad.attribute[0].s = b"constant"

    model = unsplit_copy(tiny_model, tmp_path)
    edit_graph(model, zero_padding)
    yaml_before = (model / "model.yaml").read_text()
    with pytest.raises(SplitUnavailable, match="reflect pad"):
        add_split(model, threads=1)
    assert (model / "model.yaml").read_text() == yaml_before
    assert not any((model / file).exists() for file in SPLIT_FILES.values())


def test_a_split_that_does_not_match_model_onnx_is_refused(tiny_model, tmp_path):
    """model.onnx floors the mel power at 1e-5, model.yaml says 1e-10: silence differs."""

    def floor_at_1e5(graph) -> None:
        clip = next(n for n in graph.graph.node if n.op_type == "Clip")
        floor = next(i for i in graph.graph.initializer if i.name == clip.input[1])
        floor.CopyFrom(numpy_helper.from_array(np.array(1e-5, dtype=np.float32), floor.name))

    model = unsplit_copy(tiny_model, tmp_path)
    edit_graph(model, floor_at_1e5)
    with pytest.raises(SplitUnavailable, match=r"differs from model\.onnx.*logmel_db"):
        add_split(model, threads=1)
    assert load_model_info(model).split is None
    assert not any((model / file).exists() for file in SPLIT_FILES.values())


def test_split_command_says_why_a_model_cannot_be_split(tiny_model, tmp_path, capsys):
    from train.cli import main

    def zero_padding(graph) -> None:
        pad = next(n for n in graph.graph.node if n.op_type == "Pad")
        pad.attribute[0].s = b"constant"

    model = unsplit_copy(tiny_model, tmp_path)
    edit_graph(model, zero_padding)
    assert main(["split", "--model", str(model)]) != 0
    assert "cannot split this model" in capsys.readouterr().err
