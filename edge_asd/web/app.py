"""The page's WSGI application: its three static files, the JSON API and evidence files.

Routes (GET or HEAD; everything else is 405):

    /                                   the page (static/index.html)
    /static/page.css, /static/page.js   its style and script
    /api/...                            JSON, see edge_asd/web/__init__.py
    /api/evidence/{machine}/{folder}/{file}
                                        one evidence file (event.json, start.flac,
                                        peak.flac, event.png), via evidence.listing's
                                        checks: nothing else on disk can be named

Authentication (HTTP Basic) wraps the whole application when a password is set
(edge_asd.web.server).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from edge_asd.evidence.listing import DEFAULT_LIMIT, evidence_file
from edge_asd.web.views import DaemonView

STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/page.css": ("page.css", "text/css; charset=utf-8"),
    "/static/page.js": ("page.js", "text/javascript; charset=utf-8"),
}
EVIDENCE_TYPES = {".json": "application/json", ".flac": "audio/flac", ".png": "image/png"}
MAX_EVENTS = 200  # most events one /api/events answer lists
# The page loads nothing from elsewhere and runs no inline script.
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self'; media-src 'self'; frame-ancestors 'none'",
    ),
    ("Referrer-Policy", "no-referrer"),
]

StartResponse = Callable[..., Any]
Route = tuple[re.Pattern[str], Callable[..., tuple[int, Any]]]


class PageApp:
    """The WSGI callable; `view` reads the daemon (edge_asd.web.views.DaemonView)."""

    def __init__(self, view: DaemonView) -> None:
        self.view = view
        package = resources.files("edge_asd.web") / "static"
        self.static = {
            path: ((package / name).read_bytes(), kind)
            for path, (name, kind) in STATIC_FILES.items()
        }
        self.routes: list[Route] = [
            (re.compile(r"/api/status"), lambda q: (200, view.status())),
            (re.compile(r"/api/machines"), self._machines),
            (re.compile(r"/api/machines/(?P<name>[^/]+)"), self._machine),
            (re.compile(r"/api/machines/(?P<name>[^/]+)/spectrogram"), self._spectrogram),
            (re.compile(r"/api/events"), self._events),
        ]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _reply(start_response, 405, b"only GET\n", "text/plain", [("Allow", "GET")])
        if path in self.static:
            body, kind = self.static[path]
            return _reply(start_response, 200, body, kind)
        if path.startswith("/api/evidence/"):
            return self._evidence(path.removeprefix("/api/evidence/"), start_response)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        for pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match:
                try:
                    status, payload = handler(query, **match.groupdict())
                except ValueError as exc:  # a bad query value
                    status, payload = 400, {"error": str(exc)}
                return _json(start_response, status, payload)
        return _json(start_response, 404, {"error": f"no such page: {path}"})

    def _machines(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, {"machines": self.view.machines(_float(query, "since"))}

    def _machine(self, query: dict[str, list[str]], name: str) -> tuple[int, Any]:
        since = _float(query, "since")
        detail = self.view.machine(name, since)
        return (404, {"error": f"no machine {name!r}"}) if detail is None else (200, detail)

    def _spectrogram(self, query: dict[str, list[str]], name: str) -> tuple[int, Any]:
        if name not in self.view.loop.machines:
            return 404, {"error": f"no machine {name!r}"}
        picture = self.view.spectrogram(name)
        return (200, picture) if picture is not None else (404, {"error": "no window yet"})

    def _events(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        machine = (query.get("machine") or [None])[0] or None
        if machine is not None and machine not in self.view.loop.machines:
            return 404, {"error": f"no machine {machine!r}"}
        limit_value = _float(query, "limit")
        limit = DEFAULT_LIMIT if limit_value is None else limit_value
        if limit != int(limit) or not 1 <= limit <= MAX_EVENTS:
            raise ValueError(
                f"limit: expected a whole number from 1 to {MAX_EVENTS}, got {limit:g}"
            )
        limit = int(limit)
        return 200, {"events": self.view.events(machine, limit)}

    def _evidence(self, rest: str, start_response: StartResponse) -> Iterable[bytes]:
        parts = rest.split("/")
        path = None
        if len(parts) == 3 and parts[0] in self.view.loop.machines:
            path = evidence_file(self.view.loop.config.evidence_path, *parts)
        if path is None:
            return _json(start_response, 404, {"error": "no such evidence file"})
        try:
            body = path.read_bytes()
        except OSError:
            return _json(start_response, 404, {"error": "no such evidence file"})
        return _reply(start_response, 200, body, EVIDENCE_TYPES[path.suffix])


def _float(query: dict[str, list[str]], key: str) -> float | None:
    """The query's `key` as a finite number, None when absent; ValueError (a 400) naming
    `key` otherwise ('inf' and 'nan' are no times nor counts)."""
    values = query.get(key)
    if not values or values[0] == "":
        return None
    try:
        value = float(values[0])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{key}: expected a number, got {values[0][:40]!r}")
    return value


def _json(start_response: StartResponse, status: int, payload: Any) -> Iterable[bytes]:
    try:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:  # a NaN or infinity somewhere (a stats ratio): JSON has none
        body = json.dumps(_finite(payload), separators=(",", ":"), allow_nan=False).encode()
    return _reply(start_response, status, body, "application/json")


def _finite(value: Any) -> Any:
    """`value` with every NaN and infinity, at any depth, as None (JSON's null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _reply(
    start_response: StartResponse,
    status: int,
    body: bytes,
    kind: str,
    extra: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
    headers = [
        ("Content-Type", kind),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *SECURITY_HEADERS,
        *(extra or []),
    ]
    start_response(f"{status} {reasons[status]}", headers)
    return [body]
