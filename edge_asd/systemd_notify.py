"""systemd's notify protocol (sd_notify) in a few lines: READY=1, WATCHDOG=1, STATUS=...

With `Type=notify` systemd waits for READY=1 before it calls the service started, and
with `WatchdogSec=` it restarts the service when WATCHDOG=1 stops coming. The daemon
sends READY=1 after the engine's warm-up and WATCHDOG=1 while windows are being scored,
so a capture or inference that hangs is restarted. Without $NOTIFY_SOCKET (not under
systemd) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `message` (e.g. "READY=1") to $NOTIFY_SOCKET; False when there is none or it fails."""
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket: the name starts with a NUL byte
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.debug("sd_notify %r failed: %s", message, exc)
        return False
    return True


class Notifier:
    """READY, STOPPING and a rate-limited WATCHDOG for one service process."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.enabled = bool(self.environ.get("NOTIFY_SOCKET"))
        self.watchdog_interval_s = self._watchdog_interval(self.environ)
        self._last_watchdog = float("-inf")

    @staticmethod
    def _watchdog_interval(environ: Mapping[str, str]) -> float:
        """Half of $WATCHDOG_USEC (systemd's advice), or 1 s when it is not set."""
        pid = environ.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            return float("inf")  # the watchdog is meant for another process
        try:
            return int(environ["WATCHDOG_USEC"]) / 2e6
        except (KeyError, ValueError):
            return 1.0

    def ready(self, status: str = "") -> None:
        """Start-up is done (after the engine's warm-up)."""
        self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        """The main loop is alive; sent at most every half watchdog interval."""
        now = time.monotonic()
        if now - self._last_watchdog >= self.watchdog_interval_s:
            self._last_watchdog = now
            self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """A one-line status for `systemctl status`."""
        self._send(f"STATUS={text}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def _send(self, message: str) -> None:
        if self.enabled:
            notify(message, self.environ)
