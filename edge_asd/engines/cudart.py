"""A minimal ctypes binding of the CUDA runtime (libcudart): what the TensorRT engine needs.

Why not cuda-python: JetPack 6 does not ship it, and its wheels follow the CUDA major
version (cuda-python 13 will not drive JetPack 6's CUDA 12.6, and its module paths moved
between 12.x and 13.x), so it would be one more pin to get right on every device. The
runtime library itself is always there where TensorRT is, and the dozen calls below have
had the same C signatures since CUDA 10. Loaded lazily; nothing here runs at import.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence

import numpy as np

from edge_asd.engines.base import EngineUnavailable

# Most specific first: JetPack 6 has CUDA 12.x; an unversioned name needs the -dev package.
LIBRARY_NAMES = (
    "libcudart.so.12",
    "libcudart.so",
    "/usr/local/cuda/lib64/libcudart.so.12",
    "/usr/local/cuda/lib64/libcudart.so",
    "libcudart.so.13",
    "libcudart.so.11.0",
)
LIBRARY_ENV = "EDGE_ASD_LIBCUDART"  # a path that overrides the search
DEVICE_PROP_BYTES = 8192  # larger than cudaDeviceProp in any CUDA release; `name` is first
DEVICE_NAME_BYTES = 256
MEMCPY_HOST_TO_DEVICE = 1
MEMCPY_DEVICE_TO_HOST = 2
ATTRIBUTE_COMPUTE_MAJOR = 75
ATTRIBUTE_COMPUTE_MINOR = 76


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message names the call and CUDA's reason."""


def _load_library(names: Sequence[str]) -> ctypes.CDLL:
    """The first libcudart that loads; EngineUnavailable listing what was tried."""
    override = os.environ.get(LIBRARY_ENV)
    candidates = [override] if override else list(names)
    errors = []
    for name in candidates:
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    raise EngineUnavailable(
        "the CUDA runtime library (libcudart) was not found; tried "
        + "; ".join(errors)
        + f" (set {LIBRARY_ENV} to its path)"
    )


class CudaRuntime:
    """The CUDA runtime calls the TensorRT engine uses, on one device.

    Pointers and stream handles are plain ints (what TensorRT's Python API takes).
    Every call raises CudaError with CUDA's message when it fails.
    """

    def __init__(self, library: ctypes.CDLL, device: int = 0) -> None:
        self._lib = library
        self._declare()
        self.device = device

    @classmethod
    def load(cls, device: int = 0, names: Sequence[str] = LIBRARY_NAMES) -> CudaRuntime:
        """Load libcudart and select `device`.

        Raises EngineUnavailable when the library is missing, there is no CUDA device
        (or no driver), or `device` does not exist.
        """
        runtime = cls(_load_library(names), device)
        try:
            count = runtime.device_count()
        except CudaError as exc:
            raise EngineUnavailable(f"no usable CUDA device: {exc}") from None
        if count == 0:
            raise EngineUnavailable("no CUDA device: cudaGetDeviceCount found none")
        if not 0 <= device < count:
            raise EngineUnavailable(f"CUDA device {device} does not exist ({count} found)")
        try:
            runtime._check(runtime._lib.cudaSetDevice(device), "cudaSetDevice")
        except CudaError as exc:
            raise EngineUnavailable(f"cannot use CUDA device {device}: {exc}") from None
        return runtime

    def _declare(self) -> None:
        lib, c_int, c_size, c_void_p = self._lib, ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p
        lib.cudaGetErrorString.restype = ctypes.c_char_p
        lib.cudaGetErrorString.argtypes = [c_int]
        lib.cudaGetDeviceCount.argtypes = [ctypes.POINTER(c_int)]
        lib.cudaSetDevice.argtypes = [c_int]
        lib.cudaDeviceGetAttribute.argtypes = [ctypes.POINTER(c_int), c_int, c_int]
        lib.cudaMalloc.argtypes = [ctypes.POINTER(c_void_p), c_size]
        lib.cudaFree.argtypes = [c_void_p]
        lib.cudaMallocHost.argtypes = [ctypes.POINTER(c_void_p), c_size]
        lib.cudaFreeHost.argtypes = [c_void_p]
        lib.cudaStreamCreate.argtypes = [ctypes.POINTER(c_void_p)]
        lib.cudaStreamDestroy.argtypes = [c_void_p]
        lib.cudaStreamSynchronize.argtypes = [c_void_p]
        lib.cudaMemcpyAsync.argtypes = [c_void_p, c_void_p, c_size, c_int, c_void_p]
        for function in (
            "cudaGetDeviceCount",
            "cudaSetDevice",
            "cudaDeviceGetAttribute",
            "cudaMalloc",
            "cudaFree",
            "cudaMallocHost",
            "cudaFreeHost",
            "cudaStreamCreate",
            "cudaStreamDestroy",
            "cudaStreamSynchronize",
            "cudaMemcpyAsync",
        ):
            getattr(lib, function).restype = c_int

    def _check(self, status: int, call: str) -> None:
        if status != 0:
            reason = self._lib.cudaGetErrorString(status) or b"unknown error"
            raise CudaError(f"{call} failed with CUDA error {status}: {reason.decode()}")

    def device_count(self) -> int:
        """Number of CUDA devices this process can see."""
        count = ctypes.c_int(0)
        self._check(self._lib.cudaGetDeviceCount(ctypes.byref(count)), "cudaGetDeviceCount")
        return count.value

    def device_name(self) -> str:
        """The device's name as CUDA reports it (e.g. "Orin", "NVIDIA H100 80GB HBM3")."""
        # CUDA 12 exports the current layout as cudaGetDeviceProperties_v2; `name` leads both.
        function = getattr(self._lib, "cudaGetDeviceProperties_v2", None)
        if function is None:
            function = self._lib.cudaGetDeviceProperties
        function.restype = ctypes.c_int
        function.argtypes = [ctypes.c_void_p, ctypes.c_int]
        buffer = ctypes.create_string_buffer(DEVICE_PROP_BYTES)
        self._check(function(buffer, self.device), "cudaGetDeviceProperties")
        return buffer.raw[:DEVICE_NAME_BYTES].split(b"\0", 1)[0].decode(errors="replace")

    def compute_capability(self) -> tuple[int, int]:
        """(major, minor), e.g. (8, 7) on Jetson Orin."""
        values = []
        for attribute in (ATTRIBUTE_COMPUTE_MAJOR, ATTRIBUTE_COMPUTE_MINOR):
            value = ctypes.c_int(0)
            status = self._lib.cudaDeviceGetAttribute(ctypes.byref(value), attribute, self.device)
            self._check(status, "cudaDeviceGetAttribute")
            values.append(value.value)
        return values[0], values[1]

    def malloc(self, n_bytes: int) -> int:
        """Device memory of `n_bytes`; free it with `free`."""
        pointer = ctypes.c_void_p()
        self._check(self._lib.cudaMalloc(ctypes.byref(pointer), n_bytes), "cudaMalloc")
        return int(pointer.value or 0)

    def free(self, pointer: int) -> None:
        self._check(self._lib.cudaFree(ctypes.c_void_p(pointer)), "cudaFree")

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, int]:
        """A page-locked host array (so copies are truly asynchronous) and its pointer.

        The array is a view of CUDA memory: free it with `free_host(pointer)` only once
        nothing uses the array any more.
        """
        dtype = np.dtype(dtype)
        n_bytes = int(np.prod(shape)) * dtype.itemsize
        pointer = ctypes.c_void_p()
        self._check(self._lib.cudaMallocHost(ctypes.byref(pointer), n_bytes), "cudaMallocHost")
        raw = (ctypes.c_byte * n_bytes).from_address(int(pointer.value or 0))
        return np.frombuffer(raw, dtype=dtype).reshape(shape), int(pointer.value or 0)

    def free_host(self, pointer: int) -> None:
        self._check(self._lib.cudaFreeHost(ctypes.c_void_p(pointer)), "cudaFreeHost")

    def stream_create(self) -> int:
        stream = ctypes.c_void_p()
        self._check(self._lib.cudaStreamCreate(ctypes.byref(stream)), "cudaStreamCreate")
        return int(stream.value or 0)

    def stream_destroy(self, stream: int) -> None:
        self._check(self._lib.cudaStreamDestroy(ctypes.c_void_p(stream)), "cudaStreamDestroy")

    def stream_synchronize(self, stream: int) -> None:
        status = self._lib.cudaStreamSynchronize(ctypes.c_void_p(stream))
        self._check(status, "cudaStreamSynchronize")

    def copy_to_device(self, device: int, host: int, n_bytes: int, stream: int) -> None:
        """Queue a host-to-device copy on `stream`."""
        status = self._lib.cudaMemcpyAsync(
            ctypes.c_void_p(device),
            ctypes.c_void_p(host),
            n_bytes,
            MEMCPY_HOST_TO_DEVICE,
            ctypes.c_void_p(stream),
        )
        self._check(status, "cudaMemcpyAsync (host to device)")

    def copy_to_host(self, host: int, device: int, n_bytes: int, stream: int) -> None:
        """Queue a device-to-host copy on `stream`."""
        status = self._lib.cudaMemcpyAsync(
            ctypes.c_void_p(host),
            ctypes.c_void_p(device),
            n_bytes,
            MEMCPY_DEVICE_TO_HOST,
            ctypes.c_void_p(stream),
        )
        self._check(status, "cudaMemcpyAsync (device to host)")
