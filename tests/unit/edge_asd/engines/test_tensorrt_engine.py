"""The TensorRT engine: clear refusals where it cannot run, and (on a GPU) onnxruntime parity.

Without TensorRT or a GPU (this machine, CI) the tests check what a user sees there: the
reason the engine is unavailable and the fallback to onnxruntime. The `gpu` tests run on a
Jetson or another NVIDIA GPU with TensorRT 10; they build real engines (minutes each on a
Jetson) and use EDGE_ASD_TEST_MODEL when set, else the `exported_model` fixture (torch).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edge_asd.audio import WINDOW_SAMPLES
from edge_asd.commands.build_engine import check_windows, compare_outputs
from edge_asd.engines import open_engine
from edge_asd.engines.base import EngineUnavailable
from edge_asd.engines.cudart import LIBRARY_ENV, CudaRuntime
from edge_asd.engines.engine_cache import engine_path
from edge_asd.errors import EXIT_RUNTIME, UserError
from edge_asd.model_file import FrontEnd, ModelInfo, load_model_info
from tests.harness.gpu import HAS_TENSORRT, TENSORRT_RUNS, cuda_device_count


def hand_made_info() -> ModelInfo:
    """A model.yaml's contents, for the refusals that happen before the graph is read."""
    return ModelInfo(
        format_version=1,
        sample_rate=16000,
        window_samples=WINDOW_SAMPLES,
        embedding_dim=128,
        labels=("fan/section_00",),
        front_end=FrontEnd(n_fft=1024, hop_length=512, n_mels=128, frames=313),
        backbone="mobilefacenet",
        label_scheme="section",
        onnx_sha256="0" * 64,
        onnx_path="/nonexistent/model.onnx",
    )


@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here")
def test_without_tensorrt_the_engine_says_what_to_install() -> None:
    from edge_asd.engines.tensorrt_engine import TensorRTEngine

    with pytest.raises(EngineUnavailable) as raised:
        TensorRTEngine(hand_made_info())
    message = str(raised.value)
    assert "tensorrt" in message
    assert "python3-libnvinfer" in message
    assert "--system-site-packages" in message


@pytest.mark.skipif(TENSORRT_RUNS, reason="TensorRT runs here: nothing to fall back from")
def test_daemon_falls_back_to_onnxruntime_and_keeps_the_reason(
    tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine(tiny_model, kind="tensorrt")
    try:
        assert engine.name == "onnxruntime"
        assert engine.fallback_reason and engine.fallback_reason in caplog.text
        assert "using onnxruntime instead" in caplog.text
        out = engine.infer(np.zeros((2, engine.info.window_samples), dtype=np.float32))
        assert out.embedding.shape == (2, engine.info.embedding_dim)
    finally:
        engine.close()


@pytest.mark.skipif(TENSORRT_RUNS, reason="TensorRT runs here")
def test_without_fallback_the_missing_tensorrt_is_a_runtime_error(tiny_model: Path) -> None:
    with pytest.raises(UserError, match="the tensorrt engine cannot run here: ") as raised:
        open_engine(tiny_model, kind="tensorrt", allow_fallback=False)
    assert raised.value.exit_code == EXIT_RUNTIME


def test_a_bad_precision_or_batch_is_refused_before_anything_loads() -> None:
    from edge_asd.engines.tensorrt_engine import TensorRTEngine

    with pytest.raises(ValueError, match="precision"):
        TensorRTEngine(hand_made_info(), precision="int8")
    with pytest.raises(ValueError, match="max_batch"):
        TensorRTEngine(hand_made_info(), max_batch=0)


@pytest.mark.skipif(cuda_device_count() > 0, reason="a CUDA device is present")
def test_without_a_cuda_device_the_runtime_says_so() -> None:
    with pytest.raises(EngineUnavailable) as raised:
        CudaRuntime.load()
    message = str(raised.value).lower()
    assert "cuda" in message
    assert "no usable cuda device" in message or "libcudart" in message


def test_a_missing_cuda_library_lists_what_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LIBRARY_ENV, raising=False)
    names = ("libcudart-edge-asd-test-missing.so.99",)
    with pytest.raises(EngineUnavailable) as raised:
        CudaRuntime.load(names=names)
    assert names[0] in str(raised.value)
    assert LIBRARY_ENV in str(raised.value)


# --- on a GPU with TensorRT 10 ---------------------------------------------------------

gpu = pytest.mark.gpu
needs_gpu = pytest.mark.skipif(
    not HAS_TENSORRT or cuda_device_count() == 0, reason="needs TensorRT 10 and a CUDA GPU"
)


@pytest.fixture(scope="module")
def gpu_model(request: pytest.FixtureRequest) -> Path:
    """EDGE_ASD_TEST_MODEL (a model directory on the device), else the exported model."""
    if os.environ.get("EDGE_ASD_TEST_MODEL"):
        return Path(os.environ["EDGE_ASD_TEST_MODEL"])
    return request.getfixturevalue("exported_model")


@pytest.fixture(scope="module")
def gpu_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engines")


@gpu
@needs_gpu
@pytest.mark.parametrize(("precision", "max_cosine_distance"), [("fp32", 1e-4), ("fp16", 1e-2)])
def test_engine_matches_onnxruntime_on_real_windows(
    gpu_model: Path, gpu_cache: Path, precision: str, max_cosine_distance: float
) -> None:
    from edge_asd.engines.onnx_engine import OnnxEngine
    from edge_asd.engines.tensorrt_engine import TensorRTEngine

    info = load_model_info(gpu_model)
    windows = check_windows(info, 8)
    engine = TensorRTEngine(info, precision=precision, cache_dir=gpu_cache, max_batch=8)
    try:
        got = engine.infer(windows)
    finally:
        engine.close()
    want = OnnxEngine(info, use_cuda=False).infer(windows)
    comparison = compare_outputs(want, got)
    print(f"\n{precision} engine ({engine.gpu_name}) vs onnxruntime, 8 windows:")
    print(comparison.report())
    assert not comparison.non_finite
    assert comparison.max_cosine_distance <= max_cosine_distance


@gpu
@needs_gpu
def test_second_open_loads_the_cached_engine(gpu_model: Path, gpu_cache: Path) -> None:
    from edge_asd.engines.tensorrt_engine import TensorRTEngine

    info = load_model_info(gpu_model)
    windows = check_windows(info, 3)
    first = TensorRTEngine(info, precision="fp16", cache_dir=gpu_cache, max_batch=8)
    out_first = first.infer(windows)
    first.close()
    second = TensorRTEngine(info, precision="fp16", cache_dir=gpu_cache, max_batch=8)
    try:
        assert second.built_seconds is None, "the cached engine should have been loaded"
        assert second.engine_path == engine_path(gpu_cache, second.key)
        np.testing.assert_array_equal(second.infer(windows).embedding, out_first.embedding)
    finally:
        second.close()


@gpu
@needs_gpu
def test_a_corrupt_cached_engine_is_rebuilt(gpu_model: Path, gpu_cache: Path) -> None:
    from edge_asd.engines.tensorrt_engine import TensorRTEngine

    info = load_model_info(gpu_model)
    engine = TensorRTEngine(info, precision="fp16", cache_dir=gpu_cache, max_batch=8)
    engine.close()
    engine.engine_path.write_bytes(b"\x00" * 4096)
    rebuilt = TensorRTEngine(info, precision="fp16", cache_dir=gpu_cache, max_batch=8)
    try:
        assert rebuilt.built_seconds is not None
        out = rebuilt.infer(check_windows(info, 2))
        assert np.isfinite(out.embedding).all()
    finally:
        rebuilt.close()


@gpu
@needs_gpu
def test_batches_above_max_batch_run_in_parts(gpu_model: Path, gpu_cache: Path) -> None:
    from edge_asd.engines.tensorrt_engine import TensorRTEngine

    info = load_model_info(gpu_model)
    windows = check_windows(info, 5)
    engine = TensorRTEngine(info, precision="fp32", cache_dir=gpu_cache, max_batch=2)
    try:
        together = engine.infer(windows)
        one_by_one = [engine.infer(windows[i : i + 1]) for i in range(len(windows))]
        engine.warm_up(2)
    finally:
        engine.close()
    assert together.logits.shape == (5, info.n_labels)
    stacked = np.concatenate([o.logits for o in one_by_one])
    np.testing.assert_allclose(together.logits, stacked, rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError, match="closed"):
        engine.infer(windows)
