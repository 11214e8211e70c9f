"""`edge-asd build-engine` as far as it runs without a GPU, and its comparison of outputs."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_asd.cli import main
from edge_asd.commands.build_engine import check_windows, compare_outputs
from edge_asd.engines.onnx_engine import OnnxEngine
from edge_asd.errors import EXIT_INPUT, EXIT_RUNTIME
from edge_asd.model_file import MODEL_ONNX, load_model_info, sha256_of, write_model_info

REPO = Path(__file__).resolve().parents[4]
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
# the static graph check before any build reads the graph with the onnx package
needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None, reason="the graph check needs the onnx package"
)


@pytest.fixture(scope="module")
def reference(tiny_model: Path):
    """onnxruntime's outputs for the build-engine check windows, and those windows."""
    info = load_model_info(tiny_model)
    windows = check_windows(info, 4)
    engine = OnnxEngine(info, threads=2, use_cuda=False)
    try:
        return windows, engine.infer(windows), engine.infer(windows[::-1].copy())
    finally:
        engine.close()


@needs_onnx
def test_check_only_passes_a_model_directory(
    tiny_model: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["build-engine", "--model", str(tiny_model), "--check-only"]) == 0
    out = capsys.readouterr().out
    assert "TensorRT 10 can build it" in out
    assert str(tiny_model / MODEL_ONNX) in out


@needs_onnx
def test_the_deploy_wrapper_runs_the_same_command(tiny_model: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "deploy/jetson/build_engine.py"),
            *("--model", str(tiny_model), "--check-only"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "TensorRT 10 can build it" in result.stdout


@needs_onnx
def test_a_graph_tensorrt_cannot_build_is_refused_before_any_build(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import onnx
    from onnx import helper

    model_dir = tmp_path / "bad_model"
    shutil.copytree(tiny_model, model_dir)
    graph = onnx.load(str(model_dir / MODEL_ONNX))
    # make the input's time axis dynamic, as an export without a fixed window would
    graph.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "samples"
    graph.graph.node.append(helper.make_node("Unique", ["waveform"], ["unused"], name="odd"))
    onnx.save(graph, str(model_dir / MODEL_ONNX))
    info = load_model_info(model_dir, verify_sha256=False)
    write_model_info(
        dataclasses.replace(info, onnx_sha256=sha256_of(model_dir / MODEL_ONNX)),
        model_dir / "model.yaml",
    )
    assert main(["build-engine", "--model", str(model_dir)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "Unique" in err and "'odd'" in err
    assert "axis 1 is dynamic (samples)" in err


@needs_onnx
@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here")
def test_building_without_tensorrt_exits_with_the_reason(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["build-engine", "--model", str(tiny_model), "--cache-dir", str(tmp_path)])
    assert code == EXIT_RUNTIME
    err = capsys.readouterr().err
    assert "cannot build here" in err and "tensorrt" in err
    assert list(tmp_path.iterdir()) == [], "nothing is written when nothing was built"


def test_check_windows_cover_silence_a_full_scale_tone_and_machine_sound(
    tiny_model: Path,
) -> None:
    info = load_model_info(tiny_model)
    windows = check_windows(info, 5)
    assert windows.shape == (5, info.window_samples) and windows.dtype == np.float32
    assert not windows[0].any(), "the first window is digital silence"
    assert np.max(np.abs(windows[1])) == pytest.approx(1.0, abs=1e-3), "then full scale"
    assert all(np.std(w) > 1e-3 for w in windows[2:]), "then machine sound"
    assert not np.array_equal(windows[2], windows[3])


def test_identical_outputs_compare_as_equal(reference) -> None:
    _, out, _ = reference
    comparison = compare_outputs(out, out)
    assert comparison.max_abs_diff == {"embedding": 0.0, "logits": 0.0, "logmel": 0.0}
    assert comparison.max_cosine_distance == pytest.approx(0.0, abs=1e-12)
    assert comparison.acceptable(1e-6)
    assert "largest difference" in comparison.report()


def test_outputs_of_other_windows_do_not_pass_as_the_same(reference) -> None:
    _, out, other = reference
    comparison = compare_outputs(out, other)
    name, diff = comparison.largest()
    assert diff == comparison.max_abs_diff[name] == max(comparison.max_abs_diff.values()) > 0
    assert comparison.max_abs_diff["logmel"] > 1.0, "silence vs machine sound differs in dB"
    assert comparison.max_cosine_distance > 1e-3
    assert not comparison.acceptable(1e-3)


def test_nan_in_the_engine_output_fails_the_check(reference) -> None:
    _, out, _ = reference
    broken_logmel = out.logmel.copy()
    broken_logmel[0, 0, 0] = -np.inf  # what FP16 makes of log(0) on silence
    broken = dataclasses.replace(out, logmel=broken_logmel)
    comparison = compare_outputs(out, broken)
    assert comparison.non_finite == ("logmel",)
    assert not comparison.acceptable(1.0)
    assert "NaN or inf in: logmel" in comparison.report()
