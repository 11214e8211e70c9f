"""Whether TensorRT can run here: the one condition that GPU tests and their CPU twins
branch on, so that a test runs one way or the other and never passes both ways."""

from __future__ import annotations

import importlib.util

from edge_asd.engines.base import EngineUnavailable
from edge_asd.engines.cudart import CudaRuntime

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def cuda_device_count() -> int:
    """CUDA devices the runtime sees; 0 without libcudart or a device."""
    try:
        return CudaRuntime.load().device_count()
    except EngineUnavailable:
        return 0


TENSORRT_RUNS = HAS_TENSORRT and cuda_device_count() > 0
