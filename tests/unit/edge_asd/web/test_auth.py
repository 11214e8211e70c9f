"""HTTP Basic in front of the page: only the configured user and password get through."""

from __future__ import annotations

import base64

import pytest

from edge_asd.web.server import BasicAuth


def call(app: BasicAuth, header: str | None) -> str:
    statuses = []
    environ = {} if header is None else {"HTTP_AUTHORIZATION": header}
    app(environ, lambda status, headers: statuses.append(status))
    return statuses[0]


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.fixture
def app() -> BasicAuth:
    def page(environ, start_response):
        start_response("200 OK", [])
        return [b"page"]

    return BasicAuth(page, "edge-asd", "s3cret:with colon")


def test_the_right_user_and_password_get_the_page(app):
    assert call(app, basic("edge-asd:s3cret:with colon")) == "200 OK"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        basic("edge-asd:wrong"),
        basic("someone:s3cret:with colon"),
        basic("edge-asd:s3cret:with colo"),
        basic("edge-asd"),
        "Basic not-base64!",
        "Bearer " + base64.b64encode(b"edge-asd:s3cret:with colon").decode(),
    ],
)
def test_anything_else_is_refused(app, header):
    assert call(app, header) == "401 Unauthorized"
