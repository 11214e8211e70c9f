"""The page's server (waitress) on a real socket: what it logs, what it refuses before the
page runs, and that it closes cleanly, every time."""

from __future__ import annotations

import base64
import http.client
import logging
import socket

import pytest

from edge_asd.config.outputs import WebConfig
from edge_asd.errors import ConfigError
from edge_asd.mosquitto import free_port
from edge_asd.web.server import WebServer, close_web

PASSWORD = "s3cret"


class Page:
    """A WSGI app that answers 200 and counts the requests that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"page"]


@pytest.fixture
def page() -> Page:
    return Page()


def serve(page: Page, password: str | None = None, **web) -> WebServer:
    if password is not None:  # named in the config as a daemon's is; handed over resolved
        web["password_env"] = "PAGE_PW"
    return WebServer(WebConfig(enabled=True, port=free_port(), **web), page, password)


def request(port: int, method: str = "GET", path: str = "/", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> int:  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_start_logs_the_pages_url_without_a_logging_error(page, caplog):
    caplog.set_level(logging.INFO, logger="edge_asd.web.server")
    server = serve(page)
    try:
        # getMessage formats as a handler would: '%d' of waitress' str port raised here
        messages = [record.getMessage() for record in caplog.records]
        assert f"page on http://127.0.0.1:{server.port}/ (no password: loopback only)" in messages
        assert request(server.port) == 200
    finally:
        server.close()


def test_a_large_request_body_is_refused_before_the_page_runs(page):
    server = serve(page, password=PASSWORD)
    try:
        body = b"x" * (8 * 1024 * 1024)
        try:
            status = request(server.port, "POST", "/api/status", body=body)
        except (ConnectionError, http.client.HTTPException):
            status = None  # closed while the body was still being sent: refused too
        assert status in (413, None)
        assert page.calls == 0
    finally:
        server.close()


def test_without_a_password_only_loopback_host_names_are_served(page):
    """DNS rebinding: a foreign name that resolves to 127.0.0.1 must not read the page."""
    server = serve(page)
    port = server.port
    try:
        assert request(port, headers={"Host": "evil.example"}) == 403
        assert request(port, headers={"Host": f"evil.example:{port}"}) == 403
        assert request(port, headers={"Host": "127.0.0.1.evil.example"}) == 403
        assert page.calls == 0
        for host in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", "[::1]:80"):
            assert request(port, headers={"Host": host}) == 200, host
    finally:
        server.close()


def test_with_a_password_any_host_name_is_served_to_the_right_user(page):
    server = serve(page, password=PASSWORD)
    token = base64.b64encode(f"edge-asd:{PASSWORD}".encode()).decode()
    try:
        headers = {"Host": "edge-box.factory.lan", "Authorization": f"Basic {token}"}
        assert request(server.port, headers=headers) == 200
    finally:
        server.close()


def test_failed_logins_are_logged_without_the_password(page, caplog):
    caplog.set_level(logging.WARNING, logger="edge_asd.web.server")
    server = serve(page, password=PASSWORD)
    wrong = base64.b64encode(b"edge-asd:guess-1").decode()
    try:
        for _ in range(3):
            assert request(server.port, headers={"Authorization": f"Basic {wrong}"}) == 401
    finally:
        server.close()
    ours = [r for r in caplog.records if r.name == "edge_asd.web.server"]
    lines = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert lines[0] == "the page refused a wrong or missing password: from 127.0.0.1"
    assert len(lines) == 2 and "3 times in all" in lines[1]  # the rest counted, not each logged
    assert not any("guess" in line for line in lines)


def test_starting_and_closing_the_server_twenty_times_logs_no_error(page, caplog):
    caplog.set_level(logging.INFO, logger="edge_asd.web.server")
    for _ in range(20):
        server = serve(page)
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)  # a browser's
        assert request(server.port) == 200
        server.close()
        idle.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_a_closed_server_no_longer_listens(page):
    server = serve(page)
    server.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_an_error_closing_the_page_is_logged_not_raised(page, caplog, monkeypatch):
    """The daemon's stop calls close_web before the publisher and outbox: it must go on."""
    server = serve(page)

    def broken_close() -> None:
        WebServer.close(server)
        raise OSError("closing failed")

    monkeypatch.setattr(server, "close", broken_close)
    close_web(server)  # no exception
    assert "closing the page failed" in caplog.text


def test_an_unresolvable_address_is_one_error_naming_web_address(page):
    with pytest.raises(ConfigError, match=r"^web\.address: cannot resolve 'no-such-host\.invalid'"):
        serve(page, password=PASSWORD, address="no-such-host.invalid")
