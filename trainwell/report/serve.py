"""``trainwell serve``: a read-only local web page that lists runs and follows a running one.

* ``/`` lists the runs in the served directory (the directory itself, if it
  is a run; else the runs directly inside it).
* ``/run/NAME/`` is a run's report, which asks ``/run/NAME/version`` every two
  seconds and, when the run's files have changed, fetches ``/run/NAME/body``
  and redraws itself: curves and findings follow the run while it trains.
* ``/run/NAME/file/FILE`` serves one of the run's own files
  (:data:`~trainwell.report.rundata.RUN_FILES`), as text.

What it serves is found by name among the runs it lists, never by joining a
requested path onto the directory, so no request can reach outside it (a
run that is a link to elsewhere is not listed). It binds 127.0.0.1 unless
told otherwise, answers GET and HEAD only, never writes, and sends a
Content-Security-Policy that lets the page run its own script and nothing else.
"""

from __future__ import annotations

import html
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from trainwell.errors import TrainwellError
from trainwell.report.page import document, render_run
from trainwell.report.rundata import RUN_FILES, is_run, load_run, signature

__all__ = ["CSP", "LIVE_SCRIPT", "RunsServer", "find_runs", "foreign_request", "reply"]

esc = html.escape
LIVE_SCRIPT = """(() => {
  const base = location.pathname.replace(/\\/+$/, "");
  const status = document.getElementById("live");
  let version = document.body.dataset.version;
  async function poll() {
    try {
      const v = await (await fetch(base + "/version", {cache: "no-store"})).text();
      if (v !== version) {
        const body = await fetch(base + "/body", {cache: "no-store"});
        if (!body.ok) throw new Error(body.status);
        document.getElementById("report").innerHTML = await body.text();
        version = v;
      }
      status.textContent = "live: checked " + new Date().toLocaleTimeString();
    } catch (err) {
      status.textContent = "live: the server does not answer (" + err + ")";
    }
  }
  setInterval(poll, 2000);
})();
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'"


def reply(handler: BaseHTTPRequestHandler, status: int, body: str | bytes, kind: str, csp: str = CSP) -> None:
    """Send ``body`` with the headers every page of trainwell's servers carries (no caching, no sniffing, the CSP)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Content-Security-Policy", csp)
    handler.send_header("X-Content-Type-Options", "nosniff")
    handler.send_header("Cache-Control", "no-store")
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)


def foreign_request(handler: BaseHTTPRequestHandler) -> str | None:
    """Why a request to a server bound to this machine comes from elsewhere, or None.

    A web page the user visits can send requests to 127.0.0.1; its browser names
    that page's site in ``Origin``, and a DNS-rebinding page names its own host in
    ``Host``. Both must be this server's own address (``127.0.0.1``, ``localhost``
    or ``[::1]`` with its port) when it listens on loopback.
    """
    host, port = handler.server.server_address[:2]
    if host not in ("127.0.0.1", "::1", "localhost"):
        return None  # bound elsewhere on purpose (--host): the user chose who may reach it
    own = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    if handler.headers.get("Host", "") not in own:
        return f"the Host header {handler.headers.get('Host')!r} is not this server's address"
    origin = handler.headers.get("Origin")
    if origin is not None and origin.removeprefix("http://") not in own:
        return f"requests from {origin!r} are not served (only this server's own pages)"
    return None


def find_runs(root: Path) -> dict[str, Path]:
    """The runs served from ``root``, by name: ``root`` itself if it is a run, else its run subdirectories."""
    root = root.resolve()
    if is_run(root):
        return {root.name or "run": root}
    runs = {}
    try:
        children = sorted(root.iterdir())
    except OSError:
        return {}
    for child in children:
        try:
            inside = child.resolve().is_relative_to(root)  # a link to elsewhere is not served
        except OSError:
            continue
        if inside and is_run(child):
            runs[child.name] = child
    return runs


def _index(root: Path, runs: dict[str, Path]) -> str:
    rows = []
    for name, d in runs.items():
        try:
            run = load_run(d, follow_links=False)
        except Exception as err:  # one run that cannot be read does not take the list down
            rows.append(f"<tr><td>{esc(name)}</td><td colspan='4' class='problem'>{esc(str(err))}</td></tr>")
            continue
        last = run.history[-1] if run.history else {}
        val = last.get("val_accuracy")
        worst = ", ".join(sorted({str(f.get("severity")) for f in run.findings})) or "none"
        called = f" ({esc(run.name)})" if run.name != name else ""
        rows.append(f"<tr><td><a href='/run/{esc(quote(name, safe=''))}/'>{esc(name)}</a>{called}</td>"
                    f"<td><span class='badge {esc(run.status)}'>{esc(run.status)}</span></td>"
                    f"<td class='num'>{len(run.history)}</td>"
                    f"<td class='num'>{f'{val:.4f}' if isinstance(val, float) else '-'}</td><td>{esc(worst)}</td></tr>")
    table = ("<table><tr><th>run</th><th>status</th><th>epochs</th><th>last val accuracy</th><th>findings</th></tr>"
             + "".join(rows) + "</table>") if rows else "<p>No runs here yet.</p>"
    return document(f"trainwell: {root}", f"<h1>Runs in <code>{esc(str(root))}</code></h1>{table}"
                                          "<p>Read-only: nothing here is written.</p>")


class _Handler(BaseHTTPRequestHandler):
    server: RunsServer
    server_version = "trainwell"
    default_request_version = "HTTP/1.0"  # a request too broken to name its version still gets a status line
    timeout = 30  # seconds a connection may stay silent: a stalled client does not hold a thread for ever

    def log_message(self, format: str, *args: object) -> None:  # quiet: one line a request is noise
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: str, kind: str = "text/html; charset=utf-8") -> None:
        reply(self, status, body, kind)

    def _fail(self, status: HTTPStatus, why: str) -> None:
        self._send(status, f"{status.value} {status.phrase}: {why}\n", "text/plain; charset=utf-8")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests and unsupported methods: one plain line, as every other refusal."""
        status = HTTPStatus(code)
        self.close_connection = True
        self._fail(status, message or status.description)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        try:
            foreign = foreign_request(self)
            if foreign is not None:
                return self._fail(HTTPStatus.FORBIDDEN, foreign)
            self._route(urlsplit(self.path).path)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as err:  # the server outlives any one request: one line, never a traceback
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(err).__name__}: {err}")

    def _route(self, path: str) -> None:
        root = self.server.root
        if path in ("", "/"):
            return self._send(200, _index(root, find_runs(root)))
        if path == "/live.js":
            return self._send(200, LIVE_SCRIPT, "text/javascript; charset=utf-8")
        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "run":
            return self._fail(HTTPStatus.NOT_FOUND, "no such page")
        name, rest = unquote(parts[2]), "/".join(parts[3:])
        run_dir = find_runs(root).get(name)
        if run_dir is None:
            return self._fail(HTTPStatus.NOT_FOUND, "no such run")
        if rest.startswith("file/"):
            file = unquote(rest[5:])
            path = run_dir / file
            if file not in RUN_FILES or not path.is_file() or path.is_symlink() \
                    or not path.resolve().is_relative_to(run_dir.resolve()):  # a link out is not the run's
                return self._fail(HTTPStatus.NOT_FOUND, "no such file of the run")
            text = (run_dir / file).read_text(encoding="utf-8", errors="replace")
            return self._send(200, text, "text/plain; charset=utf-8")
        if rest == "version":
            return self._send(200, json.dumps(signature(run_dir)), "application/json")
        if rest not in ("", "body"):
            return self._fail(HTTPStatus.NOT_FOUND, "no such page")
        version = signature(run_dir)
        try:
            body = render_run(load_run(run_dir, follow_links=False))
        except TrainwellError as err:
            return self._fail(HTTPStatus.NOT_FOUND, str(err))
        if rest == "body":
            return self._send(200, body)
        page = document(f"trainwell: {name}",
                        f"<p><a href='/'>all runs</a> &middot; <span id='live'>live</span></p>"
                        f"<div id='report'>{body}</div><script src='/live.js'></script>", csp=None)  # the header's
        # the version the page was drawn at: the script redraws once the files differ from it
        self._send(200, page.replace("<body>", f"<body data-version='{esc(json.dumps(version))}'>", 1))


class RunsServer(ThreadingHTTPServer):
    """The live view's server over ``root`` (``serve_forever`` to run; ``port`` 0 picks a free one)."""

    daemon_threads = True

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise TrainwellError(f"no such directory: {root}")
        self.verbose = verbose
        try:
            super().__init__((host, port), _Handler)
        except OSError as err:
            raise TrainwellError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, notebooks); ``shutdown()`` stops it."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread
