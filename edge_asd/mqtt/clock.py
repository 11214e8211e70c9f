"""Whether the system clock is synchronised (NTP, PTP, GPS), for the events' `clock_synced`.

A Jetson without a real-time clock boots in 1970 or at its last shutdown until NTP has
answered; an event stamped then is misleading, so it says so. Linux keeps the kernel's
view in adjtimex(2): a read-only call (modes = 0) returns TIME_ERROR while the clock is
unsynchronised. Elsewhere (or if the call fails) the answer is False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

TIME_ERROR = 5  # adjtimex's "clock not synchronised" state
_TIMEX_BYTES = 512  # struct timex is 208 bytes on 64-bit Linux; a larger zeroed buffer is safe


def clock_synced() -> bool:
    """True when the kernel says the clock is synchronised; False when unsure."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buffer = ctypes.create_string_buffer(_TIMEX_BYTES)  # modes = 0: read only
        state = libc.adjtimex(buffer)
    except (OSError, AttributeError):
        return False
    return 0 <= state < TIME_ERROR
