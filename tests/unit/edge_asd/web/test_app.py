"""The page's WSGI routing, called directly: methods, unknown paths and bad query values
are one-line JSON errors with their status, never a 500."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from edge_asd.web.app import PageApp
from edge_asd.web.views import DaemonView, health


@pytest.fixture
def app(tmp_path) -> PageApp:
    # The routes below fail before reading the daemon: a loop with no machines will do.
    loop = SimpleNamespace(machines={}, config=SimpleNamespace(evidence_path=tmp_path))
    return PageApp(DaemonView(loop))


def call(app: PageApp, path: str, method: str = "GET") -> tuple[int, dict | bytes]:
    path, _, query = path.partition("?")
    replies = []
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    body = b"".join(app(environ, lambda status, headers: replies.append(status)))
    status = int(replies[0].split()[0])
    return status, json.loads(body) if body.startswith(b"{") else body


def test_only_get_and_head_are_answered(app):
    assert call(app, "/api/status", "POST")[0] == 405
    assert call(app, "/", "DELETE")[0] == 405
    assert call(app, "/", "HEAD")[0] == 200


def test_an_unknown_path_is_404(app):
    status, body = call(app, "/api/nothing")
    assert status == 404 and body == {"error": "no such page: /api/nothing"}


@pytest.mark.parametrize(
    "path, key",
    [
        ("/api/events?limit=inf", "limit"),
        ("/api/events?limit=nan", "limit"),
        ("/api/events?limit=0", "limit"),
        ("/api/events?limit=2.5", "limit"),
        ("/api/events?limit=ten", "limit"),
        ("/api/machines?since=inf", "since"),
        ("/api/machines?since=nan", "since"),
        ("/api/machines?since=yesterday", "since"),
    ],
)
def test_a_bad_query_value_is_400_with_a_one_line_reason(app, path, key):
    status, body = call(app, path)
    assert status == 400, body
    assert body["error"].startswith(f"{key}: expected") and "\n" not in body["error"]


def test_evidence_that_could_not_be_written_makes_the_device_degraded():
    snapshot = {"mqtt_connected": True, "inputs": {}, "evidence_error": "disk full",
                "evidence_failures": 3}  # fmt: skip
    healthy, problems = health(snapshot)
    assert not healthy
    assert problems == ["evidence not written: disk full (3 failures)"]
    assert health({"mqtt_connected": True, "evidence_failures": 3}) == (True, [])
