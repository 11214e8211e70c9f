"""The exported model file: torch and onnxruntime agree, the graph is TensorRT-ready, and
the split for speed is written beside it, checked against it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edge_asd.audio import N_MELS, WINDOW_FRAMES, WINDOW_SAMPLES, read_audio
from edge_asd.engines import open_engine
from edge_asd.engines.fast_onnx import TOLERANCES, FastOnnxEngine
from edge_asd.engines.trt_ops import TENSORRT10_OPERATORS, check_graph
from edge_asd.model_file import INPUT_NAME, OUTPUT_NAMES, load_model_info, sha256_of
from train.export import export_model_dir
from train.model import ModelConfig
from train.synthetic import DEFAULT_LABELS, random_model

# float32 on two runtimes: outputs agree within these absolute errors (logmel in dB) plus
# RELATIVE_TOLERANCE of the value (embeddings of the MobileNet rows reach the tens)
TOLERANCE = {"embedding": 1e-3, "logits": 1e-3, "logmel": 2e-3}
RELATIVE_TOLERANCE = 1e-4
STGRAM_MFN_OPERATORS = (
    "Add",
    "Clip",
    "Concat",
    "Conv",
    "Div",
    "LayerNormalization",
    "LeakyRelu",
    "Log",
    "MatMul",
    "Mul",
    "PRelu",
    "Pad",
    "ReduceSum",
    "Slice",
    "Sqrt",
    "Squeeze",
    "Unsqueeze",
)
# what the comparison rows add to that graph, as docs/training.md lists it
MOBILENET_OPERATORS = {
    "mobilenetv2": {"Gemm", "ReduceMean"},
    "mobilenetv3": {"Gemm", "HardSigmoid", "HardSwish", "ReduceMean", "Relu"},
}


@pytest.fixture(scope="module")
def torch_and_onnx(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    model = random_model(DEFAULT_LABELS, seed=1)
    directory = export_model_dir(model, DEFAULT_LABELS, tmp_path_factory.mktemp("m"), "section")
    return model, directory


def run_both(model, directory: Path, waveforms: np.ndarray) -> tuple[list, list]:
    session = ort.InferenceSession(
        str(directory / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    onnx_out = session.run(list(OUTPUT_NAMES), {INPUT_NAME: waveforms})
    with torch.no_grad():
        torch_out = [t.numpy() for t in model(torch.from_numpy(waveforms))]
    return torch_out, onnx_out


def assert_outputs_agree(torch_out, onnx_out, batch: int, n_labels: int) -> None:
    shapes = {"embedding": (batch, 128), "logits": (batch, n_labels)}
    shapes["logmel"] = (batch, N_MELS, WINDOW_FRAMES)
    for name, ours, theirs in zip(OUTPUT_NAMES, torch_out, onnx_out, strict=True):
        assert theirs.shape == shapes[name]
        np.testing.assert_allclose(
            theirs, ours, rtol=RELATIVE_TOLERANCE, atol=TOLERANCE[name], err_msg=name
        )


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_matches_torch_on_random_audio_at_any_batch(torch_and_onnx, batch):
    model, directory = torch_and_onnx
    waveforms = 0.1 * np.random.default_rng(batch).standard_normal((batch, WINDOW_SAMPLES))
    torch_out, onnx_out = run_both(model, directory, waveforms.astype(np.float32))
    assert_outputs_agree(torch_out, onnx_out, batch, len(DEFAULT_LABELS))


@pytest.mark.data
def test_onnxruntime_matches_torch_on_real_recordings(torch_and_onnx, shared_data):
    model, directory = torch_and_onnx
    paths = sorted((shared_data / "dcase2020_pump" / "test").glob("*.wav"))[:2]
    if not paths:
        pytest.skip(f"no dcase2020_pump clips under {shared_data}")
    waveforms = np.stack([read_audio(p).mono()[:WINDOW_SAMPLES] for p in paths])
    torch_out, onnx_out = run_both(model, directory, waveforms)
    assert_outputs_agree(torch_out, onnx_out, len(paths), len(DEFAULT_LABELS))


def test_model_yaml_binds_the_onnx_file_and_lists_the_labels(torch_and_onnx):
    _, directory = torch_and_onnx
    info = load_model_info(directory)
    assert info.labels == DEFAULT_LABELS
    assert info.onnx_sha256 == sha256_of(directory / "model.onnx")
    assert info.window_samples == WINDOW_SAMPLES
    assert info.front_end.frames == WINDOW_FRAMES
    assert info.backbone == "stgram+mobilefacenet"


def test_export_writes_the_split_checked_against_model_onnx(torch_and_onnx):
    model, directory = torch_and_onnx
    info = load_model_info(directory)
    split = info.split
    assert split is not None and split.onnx_sha256 == info.onnx_sha256
    for entry in split.files().values():
        assert entry.sha256 == sha256_of(directory / entry.file)
    assert all(split.differences[k] <= TOLERANCES[k] for k in TOLERANCES), split.differences
    engine = open_engine(directory, threads=2)
    assert isinstance(engine, FastOnnxEngine)
    waveforms = 0.1 * np.random.default_rng(5).standard_normal((2, WINDOW_SAMPLES))
    with torch.no_grad():
        expected = model(torch.from_numpy(waveforms.astype(np.float32)))[0].numpy()
    got = engine.infer(waveforms.astype(np.float32)).embedding
    np.testing.assert_allclose(got, expected, rtol=RELATIVE_TOLERANCE, atol=TOLERANCE["embedding"])


def test_graph_has_the_contract_inputs_outputs_and_static_shapes(torch_and_onnx):
    _, directory = torch_and_onnx
    graph = onnx.load(str(directory / "model.onnx")).graph

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [(v.name, dims(v)) for v in graph.input] == [(INPUT_NAME, ["batch", WINDOW_SAMPLES])]
    assert [(v.name, dims(v)) for v in graph.output] == [
        ("embedding", ["batch", 128]),
        ("logits", ["batch", len(DEFAULT_LABELS)]),
        ("logmel", ["batch", N_MELS, WINDOW_FRAMES]),
    ]
    check = check_graph(directory / "model.onnx")
    assert check.problems == ()
    assert set(check.operators) <= TENSORRT10_OPERATORS
    # the ST-gram + MobileFaceNet graph, as docs/training.md lists it
    assert set(check.operators) == set(STGRAM_MFN_OPERATORS)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backbone", "features"), [("mobilenetv2", "logmel"), ("mobilenetv3", "stgram")]
)
def test_comparison_rows_export_tensorrt_ready_graphs(tmp_path, backbone, features):
    config = ModelConfig(backbone=backbone, features=features)
    model = random_model(DEFAULT_LABELS[:2], config)
    directory = export_model_dir(model, DEFAULT_LABELS[:2], tmp_path, "section")
    check = check_graph(directory / "model.onnx")
    assert check.problems == ()
    assert set(check.operators) - set(STGRAM_MFN_OPERATORS) == MOBILENET_OPERATORS[backbone]
    waveforms = 0.1 * np.random.default_rng(0).standard_normal((2, WINDOW_SAMPLES))
    torch_out, onnx_out = run_both(model, directory, waveforms.astype(np.float32))
    assert_outputs_agree(torch_out, onnx_out, 2, 2)


def test_exported_model_fixture_is_a_model_directory_the_runtime_loads(exported_model):
    info = load_model_info(exported_model)
    assert info.labels == ("fan/section_00", "fan/section_01", "fan/section_02")
    session = ort.InferenceSession(info.onnx_path, providers=["CPUExecutionProvider"])
    waveforms = np.zeros((2, info.window_samples), dtype=np.float32)
    embedding, logits, _ = session.run(list(OUTPUT_NAMES), {INPUT_NAME: waveforms})
    assert embedding.shape == (2, info.embedding_dim) and logits.shape == (2, info.n_labels)
