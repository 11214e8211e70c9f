"""The page's HTTP server: waitress on its own threads inside the daemon, behind HTTP Basic.

waitress (Pylons project) is a pure-Python WSGI server with no C extension and no
dependencies: one thread accepts connections (asyncore-style), a small pool of worker
threads runs requests. The scoring loop shares nothing with it but snapshots taken under
short locks (edge_asd.web.views), and the pool is bounded, so a slow browser cannot take
more than WORKER_THREADS threads.

With a password (web.password_env / _file / _credential) every request needs it, compared
in constant time (hmac.compare_digest); without one, the config allows only a loopback
address (edge_asd.config.schema.WebConfig).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import threading
from collections.abc import Iterable
from typing import Any

from edge_asd.config.schema import WebConfig
from edge_asd.errors import ConfigError

log = logging.getLogger(__name__)

WORKER_THREADS = 4  # requests served at once; the page makes at most three at a time
CLOSE_TIMEOUT_SECONDS = 5.0  # at stop, how long the server's thread gets to end
REALM = "edge-asd"


class BasicAuth:
    """WSGI middleware: 401 unless the request carries `username` and `password`."""

    def __init__(self, app: Any, username: str, password: str) -> None:
        self.app = app
        self._expected = (username.encode(), password.encode())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self._allowed(environ.get("HTTP_AUTHORIZATION", "")):
            return self.app(environ, start_response)
        body = b"the page needs its user name and password\n"
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    def _allowed(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        username, colon, password = decoded.partition(b":")
        # Both compared, always: the time taken says nothing about which one was wrong.
        user_ok = hmac.compare_digest(username, self._expected[0])
        password_ok = hmac.compare_digest(password, self._expected[1])
        return bool(colon) and user_ok and password_ok


class WebServer:
    """The page being served on web.address:web.port; `close()` stops it."""

    def __init__(self, config: WebConfig, app: Any, password: str | None) -> None:
        from waitress import create_server

        if password is not None:
            app = BasicAuth(app, config.username, password)
        try:
            self._server = create_server(
                app,
                host=config.address,
                port=config.port,
                threads=WORKER_THREADS,
                ident="edge-asd",
                channel_timeout=30,
            )
        except OSError as exc:
            raise ConfigError(
                f"web.port: cannot listen on {config.address}:{config.port} "
                f"({exc.strerror or exc}); choose another port or stop what uses it"
            ) from None
        # The port bound (differs when port is 0); a name such as localhost that resolves
        # to several addresses gives a server per address, all on the configured port.
        self.port = getattr(self._server, "effective_port", config.port)
        self._thread = threading.Thread(target=self._serve, name="edge-asd-web", daemon=True)
        self._thread.start()
        where = "" if password is not None else " (no password: loopback only)"
        log.info("page on http://%s:%d/%s", _host(config.address), self.port, where)

    def _serve(self) -> None:
        try:
            self._server.run()
        except Exception:  # the page is not worth the daemon: log, keep scoring
            log.exception("the page's server stopped on an error")

    def close(self) -> None:
        """Stop accepting, close open connections, end the worker threads."""
        from waitress import wasyncore

        self._server.close()
        # the channels still open (browsers): one server's map, or the map of several
        sockets = getattr(self._server, "_map", None) or getattr(self._server, "map", None)
        wasyncore.close_all(sockets or {})
        self._thread.join(CLOSE_TIMEOUT_SECONDS)
        self._server.task_dispatcher.shutdown(timeout=CLOSE_TIMEOUT_SECONDS)


def start_web(loop: Any, password: str | None) -> WebServer:
    """Serve the page of the running daemon `loop` (edge_asd.daemon.loop._Loop).

    Raises ConfigError naming web.port when the address and port cannot be bound.
    """
    from edge_asd.web.app import PageApp
    from edge_asd.web.views import DaemonView

    return WebServer(loop.config.web, PageApp(DaemonView(loop)), password)


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
