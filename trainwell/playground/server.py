"""``trainwell playground``: the page, and the JSON endpoints through which it drives one :class:`Session`.

It binds 127.0.0.1 unless told otherwise and answers only its own paths.
A request the server cannot take (unknown path, a body that is not JSON, a
knob out of range, an upload over :data:`MAX_UPLOAD` bytes) gets a JSON
``{"error": "..."}`` with a 4xx status; an unexpected failure gets a 500 of
the same shape, and the server goes on. Nothing is written outside the
session's temporary directory, except by the user's own "export".
"""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from trainwell.config import ConfigError
from trainwell.errors import TrainwellError
from trainwell.playground.knobs import KNOBS, PRESETS, config_of, knob_schema
from trainwell.playground.page import PAGE, SCRIPT
from trainwell.playground.session import Session
from trainwell.report.serve import foreign_request, reply

__all__ = ["MAX_UPLOAD", "PlaygroundServer"]

MAX_UPLOAD = 1_000_000  # bytes of a request body (a CSV of some 30,000 rows of 2 features)


def _defaults() -> dict[str, Any]:
    cfg = config_of({}).model_dump(mode="json")
    out = {}
    for key in KNOBS:
        value: Any = cfg
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = value
    return out


class _Handler(BaseHTTPRequestHandler):
    server: PlaygroundServer
    server_version = "trainwell-playground"
    default_request_version = "HTTP/1.0"
    timeout = 30  # seconds a connection may stay silent (a body shorter than its Content-Length, say)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes | str, kind: str = "application/json") -> None:
        reply(self, status, body, kind if kind.endswith("json") else kind + "; charset=utf-8")

    def _json(self, value: Any, status: int = 200) -> None:
        self._send(status, json.dumps(value))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        self.close_connection = True
        self._json({"error": message or HTTPStatus(code).phrase}, code)

    def _guard(self, route) -> None:
        try:
            foreign = foreign_request(self)
            if foreign is not None:  # another site's page, or a rebinding one: not this server's page
                return self._json({"error": foreign}, 403)
            if self.command == "POST" and self.headers.get_content_type() != "application/json":
                # a form or text/plain POST needs no preflight from another site; application/json does
                return self._json({"error": "POST bodies must be application/json"}, 415)
            route(urlsplit(self.path).path)
        except (ConfigError, TrainwellError) as err:
            self._json({"error": str(err).splitlines()[0]}, 400)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as err:  # the server must outlive any one request
            self._json({"error": f"internal error: {type(err).__name__}: {err}"}, 500)

    def do_GET(self) -> None:
        self._guard(self._get)

    def do_HEAD(self) -> None:
        self._guard(self._get)

    def do_POST(self) -> None:
        self._guard(self._post)

    def _get(self, path: str) -> None:
        session = self.server.session
        if path == "/":
            return self._send(200, PAGE, "text/html")
        if path == "/play.js":
            return self._send(200, SCRIPT, "text/javascript")
        if path == "/api/state":
            return self._send(200, session.snapshot)
        if path == "/api/points":
            return self._send(200, session.points)
        if path == "/api/knobs":
            return self._json({"knobs": knob_schema(), "presets": PRESETS, "defaults": self.server.defaults})
        if path == "/api/export":
            return self._send(200, session.export(), "application/yaml")
        if path.startswith("/lab/"):  # a preset's lab experiment: its claim, criterion and command
            from trainwell.lab import EXPERIMENTS  # imports every experiment: only when a link is followed
            from trainwell.lab.report import render_experiment

            name = path[len("/lab/"):]
            if name in EXPERIMENTS:
                return self._send(200, render_experiment(EXPERIMENTS[name]), "text/html")
            return self._json({"error": f"no such lab experiment: {name}"}, 404)
        self._json({"error": f"no such page: {path}"}, 404)

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise ConfigError("Content-Length is not a number") from None
        if length > MAX_UPLOAD:
            raise _TooLarge(f"the request is {length} bytes; the playground takes at most {MAX_UPLOAD}")
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise ConfigError("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise ConfigError("the request body must be a JSON object")
        return body

    def _post(self, path: str) -> None:
        session = self.server.session
        try:
            body = self._body()
        except _TooLarge as err:
            self.close_connection = True
            return self._json({"error": str(err)}, 413)
        knobs = body.get("knobs", {})
        if not isinstance(knobs, dict):
            raise ConfigError("knobs must be a JSON object of config keys")
        if path == "/api/config":
            session.configure(knobs)
        elif path == "/api/control":
            session.control(str(body.get("action")))
        elif path == "/api/apply":
            index = body.get("index")
            if not isinstance(index, int):
                raise ConfigError("index must be a finding's number")
            return self._json({"changes": session.apply_remedy(index), "knobs": session.knobs})
        elif path == "/api/upload":
            if not isinstance(body.get("csv"), str):
                raise ConfigError("csv must be the file's text")
            session.upload_csv(body["csv"], knobs)
        elif path == "/api/clear-upload":
            session.clear_upload(knobs)
        else:
            return self._json({"error": f"no such endpoint: {path}"}, 404)
        self._json({"ok": True, "knobs": session.knobs})


class _TooLarge(Exception):
    pass


class PlaygroundServer(ThreadingHTTPServer):
    """The playground on ``host:port`` (``port`` 0 picks a free one); ``serve_forever`` or ``start`` to run."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 8001, session: Session | None = None) -> None:
        self.session = session or Session()
        self.defaults = _defaults()
        try:
            super().__init__((host, port), _Handler)
        except OSError as err:
            self.session.close()
            raise TrainwellError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self):
        import threading

        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread

    def server_close(self) -> None:
        super().server_close()
        self.session.close()
