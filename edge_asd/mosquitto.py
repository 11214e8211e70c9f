"""A private mosquitto broker on a free loopback port, for `edge-asd demo` and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from edge_asd.errors import EXIT_RUNTIME, UserError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    """Return once 127.0.0.1:`port` accepts connections; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def mosquitto_binary() -> str:
    """Path of the mosquitto executable; UserError saying how to install it when absent."""
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if not found:
        raise UserError(
            "mosquitto is not installed (apt-get install mosquitto, or run scripts/setup.sh)",
            EXIT_RUNTIME,
        )
    return found


class Broker:
    """mosquitto on 127.0.0.1:`port`, anonymous, no persistence.

    `stop()` then `start()` again keeps the same port, so clients reconnect to it.
    `extra_config` is appended to the generated mosquitto.conf (TLS listeners, passwords).
    """

    def __init__(self, workdir: Path, port: int | None = None, extra_config: str = "") -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.extra_config = extra_config
        self._process: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"{self.extra_config}"
        )
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - lives with the process
        self._process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)], stdout=log, stderr=log
        )
        log.close()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None
