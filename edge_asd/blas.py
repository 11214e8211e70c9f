"""numpy's BLAS on one thread: for one computation (`one_blas_thread`) or for the whole
daemon (`limit_blas_to_one_thread`).

The matrices the runtime multiplies (a mel projection, a memory bank of a few thousand
embeddings, a Gaussian mixture's n_mels x n_mels) are too small to gain from BLAS threads,
and OpenBLAS' idle workers spin for more work (~0.1 s each time they wake): on a busy
device, or beside the engine's own threads (onnxruntime and TensorRT keep their own pools,
not BLAS'), that costs far more CPU than it saves. Measured: choosing TWFR's pooling on 11
windows took 0.24 s of CPU on one thread and 38 s on two, on a loaded 2-core machine; the
page's spectrogram 9 ms of CPU on one thread, ~120 ms without the limit
(benchmarks/bench_web.py).

threadpoolctl (scikit-learn's) sets the limit in the BLAS library itself, which is shared
by the whole process: a per-request `with one_blas_thread()` from several threads would
race (one request restores the limit another still relies on), hence the daemon-wide limit.
"""

from __future__ import annotations

import contextlib
from typing import Any


def one_blas_thread() -> Any:
    """A context in which numpy's BLAS runs on one thread (when threadpoolctl is there).

    Process-wide while it lasts: use it from one thread at a time (calibration, tests).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; degrade to numpy's default
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def limit_blas_to_one_thread() -> None:
    """From now on, numpy's BLAS runs on one thread in this process (the daemon's start)."""
    one_blas_thread()  # threadpoolctl applies the limit at once; not restored without `with`
