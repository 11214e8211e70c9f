"""numpy's BLAS on one thread for the whole daemon, set once at start (edge_asd.blas)."""

from __future__ import annotations

import gc

import pytest
import threadpoolctl

from edge_asd.blas import limit_blas_to_one_thread


def blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}


@pytest.fixture
def blas_restored():
    """The process' BLAS setting as it was, after the test (the limit is process-wide)."""
    if not blas_threads():
        pytest.skip("numpy has no BLAS that threadpoolctl can see")
    original = threadpoolctl.threadpool_limits(limits=None, user_api="blas")
    yield
    original.restore_original_limits()


def test_the_daemon_wide_limit_lasts_after_the_call(blas_restored):
    limit_blas_to_one_thread()
    gc.collect()  # nothing that an object's end would undo
    assert blas_threads() == {1}
