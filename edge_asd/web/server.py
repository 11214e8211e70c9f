"""The page's HTTP server: waitress on its own threads inside the daemon, behind HTTP Basic.

waitress (Pylons project) is a pure-Python WSGI server with no C extension and no
dependencies: one thread accepts connections (asyncore-style), a small pool of worker
threads runs requests. The scoring loop shares nothing with it but snapshots taken under
short locks (edge_asd.web.views), and the pool is bounded, so a slow browser cannot take
more than WORKER_THREADS threads.

waitress reads a request's headers and body before the application (and so BasicAuth)
sees it, spooling a large body to a temporary file: the limits below refuse, before anyone
has logged in, anything bigger than the page's own GETs, and bound the open connections.

With a password (web.password_env / _file / _credential) every request needs it, compared
in constant time (hmac.compare_digest); without one, the config allows only a loopback
address (edge_asd.config.schema.WebConfig) and LoopbackHostOnly refuses requests for
another host name.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import socket
import threading
from collections.abc import Iterable
from typing import Any

from edge_asd.config.outputs import WebConfig
from edge_asd.errors import ConfigError
from edge_asd.logs import RepeatedWarning

log = logging.getLogger(__name__)

WORKER_THREADS = 4  # requests served at once; the page makes at most three at a time
CLOSE_TIMEOUT_SECONDS = 5.0  # at stop, how long the server's thread gets to end
REALM = "edge-asd"
# waitress' limits (its defaults: 1 GiB bodies, 256 KiB headers, 100 connections). The page
# only GETs: a body is never needed; a browser sends a few hundred bytes of headers.
MAX_REQUEST_BODY_BYTES = 1024
MAX_REQUEST_HEADER_BYTES = 16 * 1024
CONNECTION_LIMIT = 16  # a few browsers, each with ~6 connections at most
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


class BasicAuth:
    """WSGI middleware: 401 unless the request carries `username` and `password`.

    Failed logins are logged as a warning at a bounded rate (edge_asd.logs.RepeatedWarning),
    with the client's address, never what it sent.
    """

    def __init__(self, app: Any, username: str, password: str) -> None:
        if not password:
            raise ValueError("BasicAuth needs a non-empty password")
        self.app = app
        self._expected = (username.encode(), password.encode())
        self.failures = RepeatedWarning(log, "the page refused a wrong or missing password")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if self._allowed(header):
            return self.app(environ, start_response)
        if header:  # a browser first asks without one: that is no failed login
            self.failures.occurred(f"from {environ.get('REMOTE_ADDR', '?')}")
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


class LoopbackHostOnly:
    """WSGI middleware for the page without a password: 403 unless the request's Host is
    localhost, 127.0.0.1, [::1] or the configured address (with any port, or none).

    Why: a page on 127.0.0.1 without a password is still reachable from any web site the
    engineer's browser opens, by DNS rebinding (evil.example first resolves to the site,
    then to 127.0.0.1; the browser then sends the page's answers to evil.example's script,
    with `Host: evil.example`). Checking the name the browser asked for defeats that. A
    request without a Host header (HTTP/1.0 tools; browsers always send one) passes.
    """

    def __init__(self, app: Any, address: str) -> None:
        self.app = app
        self.allowed = {*LOOPBACK_NAMES, _host(address).lower()}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")
        if host is None or _hostname(host) in self.allowed:
            return self.app(environ, start_response)
        body = b"this page answers only to localhost (set a password to serve other names)\n"
        start_response(
            "403 Forbidden",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]


class WebServer:
    """The page being served on web.address:web.port; `close()` stops it."""

    def __init__(self, config: WebConfig, app: Any, password: str | None) -> None:
        from waitress import create_server

        self._auth = None if password is None else BasicAuth(app, config.username, password)
        app = self._auth or LoopbackHostOnly(app, config.address)
        self._map: dict[int, Any] = {}  # waitress' socket map: listeners, channels, trigger
        self._closing = threading.Event()
        try:
            self._server = create_server(
                app,
                map=self._map,
                host=config.address,
                port=config.port,
                threads=WORKER_THREADS,
                ident="edge-asd",
                channel_timeout=30,
                max_request_body_size=MAX_REQUEST_BODY_BYTES,
                max_request_header_size=MAX_REQUEST_HEADER_BYTES,
                connection_limit=CONNECTION_LIMIT,
            )
        except ValueError as exc:  # waitress' for a name getaddrinfo cannot resolve
            cause = exc.__context__ if isinstance(exc.__context__, socket.gaierror) else exc
            raise ConfigError(
                f"web.address: cannot resolve {config.address!r} "
                f"({getattr(cause, 'strerror', None) or cause})"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"web.port: cannot listen on {config.address}:{config.port} "
                f"({exc.strerror or exc}); choose another port or stop what uses it"
            ) from None
        # The port bound (differs when port is 0; waitress gives it as a str); a name such as
        # localhost that resolves to several addresses gives a server per address, all on it.
        self.port = int(getattr(self._server, "effective_port", config.port))
        self._thread = threading.Thread(target=self._serve, name="edge-asd-web", daemon=True)
        self._thread.start()
        where = "" if password is not None else " (no password: loopback only)"
        log.info("page on http://%s:%d/%s", _host(config.address), self.port, where)

    def _serve(self) -> None:
        try:
            self._server.run()
        except Exception:  # the page is not worth the daemon: log, keep scoring
            if not self._closing.is_set():  # closing sockets under select() is no error
                log.exception("the page's server stopped on an error")

    def close(self) -> None:
        """Stop accepting, close open connections, end the worker threads.

        The sockets are closed by the server's own thread (a thunk through waitress'
        trigger), never under its select(): that raced ("Bad file descriptor") and waited
        for select's 1 s timeout.
        """
        from waitress import wasyncore
        from waitress.trigger import trigger as Trigger

        self._closing.set()
        # Requests in progress finish first: a socket closed under a worker is an error.
        self._server.task_dispatcher.shutdown(timeout=CLOSE_TIMEOUT_SECONDS)
        trigger = next((s for s in list(self._map.values()) if isinstance(s, Trigger)), None)
        if trigger is not None and self._thread.is_alive():
            trigger.pull_trigger(lambda: wasyncore.close_all(self._map, ignore_all=True))
            self._thread.join(CLOSE_TIMEOUT_SECONDS)
        if self._map:  # the thread had ended (an error) or did not answer in time
            wasyncore.close_all(self._map, ignore_all=True)
            self._thread.join(CLOSE_TIMEOUT_SECONDS)
        if self._auth is not None:
            self._auth.failures.close()  # the failed logins still counted, and the total


def start_web(loop: Any, password: str | None) -> WebServer | None:
    """Serve the page of the running daemon `loop` (edge_asd.daemon.loop._Loop); None when
    web.enabled is false. `password` is resolved at start (edge_asd.commands.run).

    Raises ConfigError naming web.port (or web.address) when it cannot listen.
    """
    if not loop.config.web.enabled:
        return None
    from edge_asd.web.app import PageApp
    from edge_asd.web.views import DaemonView

    return WebServer(loop.config.web, PageApp(DaemonView(loop)), password)


def close_web(server: WebServer | None) -> None:
    """Close the page if it is served; an error is logged, never raised, so that the
    daemon's stop (publisher, outbox, `stopped`) goes on."""
    if server is None:
        return
    try:
        server.close()
    except Exception:
        log.exception("closing the page failed (the daemon stops anyway)")


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _hostname(host: str) -> str:
    """The name of a Host header without its port, lower case ('[::1]:8080' -> '[::1]')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host
