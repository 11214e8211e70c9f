"""The split engine: the model's split, read from its bundle, gives model.onnx's outputs and
scores; frames shared by a stream's windows and windows run side by side change nothing;
a bundle without a split, or with a split it cannot trust, behaves as documented."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge_asd.engines import open_engine
from edge_asd.engines.fast_onnx import (
    SCORE_TOLERANCES,
    TOLERANCES,
    FastOnnxEngine,
    compare_outputs,
)
from edge_asd.engines.onnx_engine import OnnxEngine
from edge_asd.errors import ModelFileError
from edge_asd.model_file import load_model_info
from edge_asd.scoring.knn import knn_scores
from edge_asd.scoring.section import section_scores
from edge_asd.synth import Fault, render_clip
from edge_asd.windows import sliding_windows

HOP = 16000  # 1 s
WINDOW = 160000


def copy_model(model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model, target)
    return target


def edit_yaml(model: Path, change) -> None:
    path = model / "model.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def recording(seconds: float = 24.0) -> np.ndarray:
    """Fan sound with a fault in its second half: windows of both kinds."""
    faults = (Fault("impacts", seconds / 2, seconds),)
    return render_clip("fan", 1, "source", seconds, seed=5, faults=faults)


def windows_of(samples: np.ndarray, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows and their end samples in the stream."""
    windows = np.ascontiguousarray(sliding_windows(samples, WINDOW, hop))
    return windows, WINDOW + hop * np.arange(len(windows))


@pytest.fixture(scope="module")
def windows_and_ends():
    return windows_of(recording())


@pytest.mark.parametrize("model_fixture", ["tiny_model", "exported_model"])
def test_split_engine_outputs_and_scores_match_model_onnx(request, model_fixture, windows_and_ends):
    model = request.getfixturevalue(model_fixture)  # exported_model: the real sizes (torch)
    windows, ends = windows_and_ends
    plain = OnnxEngine(load_model_info(model), threads=2, use_cuda=False).infer(windows)
    engine = open_engine(model, threads=2)
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
def test_frames_shared_between_windows_change_no_output(tiny_model, hop):
    """A stream's windows, one by one or in batches, give what each window alone gives."""
    windows, ends = windows_of(recording(20.0), hop)
    alone = FastOnnxEngine(load_model_info(tiny_model), threads=2).infer(windows)
    for batch in (1, 3, len(windows)):
        engine = FastOnnxEngine(load_model_info(tiny_model), threads=2)
        parts = [
            engine.infer_streams(windows[i : i + batch], ["m"] * len(ends[i : i + batch]),
                                 ends[i : i + batch])
            for i in range(0, len(windows), batch)
        ]  # fmt: skip
        for name in ("embedding", "logits", "logmel"):
            together = np.concatenate([getattr(part, name) for part in parts])
            np.testing.assert_allclose(together, getattr(alone, name), rtol=1e-5, atol=1e-5)


def test_windows_run_side_by_side_give_what_one_at_a_time_gives(tiny_model, windows_and_ends):
    windows, ends = windows_and_ends
    info = load_model_info(tiny_model)
    side_by_side = FastOnnxEngine(info, threads=2)
    one_at_a_time = FastOnnxEngine(info, threads=2, workers=1)
    assert side_by_side.workers == 2
    streams = ["m"] * len(ends)
    for first in range(0, len(windows), 8):  # batches of 8 windows of one stream, as offline
        rows = slice(first, first + 8)
        got = side_by_side.infer_streams(windows[rows], streams[rows], ends[rows])
        want = one_at_a_time.infer_streams(windows[rows], streams[rows], ends[rows])
        np.testing.assert_array_equal(got.embedding, want.embedding)
        np.testing.assert_array_equal(got.logits, want.logits)
    side_by_side.close()
    with pytest.raises(RuntimeError, match="closed"):
        side_by_side.infer(windows[:2])


def test_interleaved_streams_with_skipped_windows_keep_apart(tiny_model):
    """Three machines in one batch per hop, one of them skipping hops (a late consumer)."""
    streams = {name: recording(18.0 + i) for i, name in enumerate(("a", "b", "c"))}
    info = load_model_info(tiny_model)
    engine = FastOnnxEngine(info, threads=2)
    reference = FastOnnxEngine(info, threads=2)
    for hop_index in range(8):
        names = [n for n in streams if not (n == "b" and hop_index % 3 == 1)]
        end = WINDOW + hop_index * HOP
        batch = np.stack([streams[n][end - WINDOW : end] for n in names])
        got = engine.infer_streams(batch, names, np.full(len(names), end))
        np.testing.assert_allclose(got.embedding, reference.infer(batch).embedding, atol=1e-5)


def test_every_engine_offers_what_the_engine_protocol_declares(tiny_model):
    from edge_asd.engines.tensorrt_engine import TensorRTEngine

    members = ("warm_up", "infer", "infer_streams", "forget_streams", "close")
    for engine_class in (OnnxEngine, FastOnnxEngine, TensorRTEngine):
        assert all(callable(getattr(engine_class, m, None)) for m in members), engine_class
    windows = np.zeros((2, WINDOW), dtype=np.float32)
    for optimise in (True, False):
        engine = open_engine(tiny_model, threads=1, optimise=optimise)
        assert engine.name == "onnxruntime" and engine.description
        assert engine.fallback_reason is None
        engine.warm_up(2)
        out = engine.infer_streams(windows, ["a", "b"], np.array([WINDOW, WINDOW]))
        assert out.embedding.shape == (2, engine.info.embedding_dim)
        engine.forget_streams()
        engine.close()


def test_the_split_runs_without_the_onnx_package(tiny_model):
    """The runtime reads the split from the bundle: `import onnx` failing changes nothing."""
    script = (
        "import sys; sys.modules['onnx'] = None\n"  # any import of onnx now fails
        "from edge_asd.engines import open_engine\n"
        f"engine = open_engine({str(tiny_model)!r}, threads=1)\n"
        "print(type(engine).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "FastOnnxEngine"
    assert "WARNING" not in result.stderr


def test_a_bundle_without_a_split_runs_model_onnx_with_one_warning(tiny_model, tmp_path, caplog):
    model = copy_model(tiny_model, tmp_path)
    edit_yaml(model, lambda data: data.pop("split"))
    with caplog.at_level(logging.WARNING):
        engine = open_engine(model, threads=1)
    assert isinstance(engine, OnnxEngine)
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"edge-asd-train split --model {model}" in warning.getMessage()


def test_optimise_false_runs_model_onnx_without_a_warning(tiny_model, caplog):
    with caplog.at_level(logging.WARNING):
        engine = open_engine(tiny_model, threads=1, optimise=False)
    assert isinstance(engine, OnnxEngine) and not caplog.records


@pytest.mark.parametrize("file", ["split-network.onnx", "split-columns.onnx", "split-window.npy"])
def test_a_changed_split_file_is_refused_naming_it(tiny_model, tmp_path, file):
    model = copy_model(tiny_model, tmp_path)
    with open(model / file, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelFileError, match="sha256") as caught:
        open_engine(model, threads=1)
    assert str(model / file) in str(caught.value)
    assert "edge-asd-train split" in str(caught.value)


def test_a_missing_split_file_is_refused_naming_it(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    (model / "split-network.onnx").unlink()
    with pytest.raises(ModelFileError, match=r"split-network\.onnx: cannot read"):
        open_engine(model, threads=1)


def test_a_split_of_another_derivation_runs_model_onnx_with_a_warning(tiny_model, tmp_path, caplog):
    model = copy_model(tiny_model, tmp_path)
    edit_yaml(model, lambda data: data["split"].update(derivation=99))
    with caplog.at_level(logging.WARNING):
        engine = open_engine(model, threads=1)
    assert isinstance(engine, OnnxEngine)
    assert "derivation 99" in caplog.text and "edge-asd-train split" in caplog.text


def test_a_model_yaml_that_contradicts_the_split_is_refused(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    edit_yaml(model, lambda data: data.update(labels=data["labels"][:2]))
    with pytest.raises(ModelFileError, match=r"output 'logits' has shape \[batch, 3\]") as caught:
        open_engine(model, threads=1)
    assert "split-network.onnx" in str(caught.value)
