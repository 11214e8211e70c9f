"""How the daemon's process hands memory back: large blocks straight to the system.

Every hop allocates and frees arrays of a few MB (windows, frames, spectra). glibc's
malloc raises its mmap threshold to the largest block freed so far, so after the first
hops those arrays come from the heap, whose free space fragments and is rarely returned:
the RSS of a daemon with eight machines crept up by tens of MB. A fixed threshold keeps
every block of `MMAP_THRESHOLD_BYTES` or more in its own mapping, unmapped when freed.
onnxruntime's activations stay in its arena (reused every window, never re-faulted).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

MMAP_THRESHOLD_BYTES = 1 << 20
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def return_large_blocks(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve blocks >= `threshold_bytes` with mmap from now on; False where the C library
    is not glibc (nothing changes then)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        log.debug("no mallopt in %s: malloc keeps its defaults", name)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's malloc_trim); False where
    there is no malloc_trim. Worth it once start-up (model, calibrations) is done."""
    name = ctypes.util.find_library("c")
    try:
        malloc_trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return False
    malloc_trim.argtypes = [ctypes.c_size_t]
    return bool(malloc_trim(0))
