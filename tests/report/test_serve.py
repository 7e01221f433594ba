"""The live view's server: what it serves, what it refuses, and that it never writes."""

import hashlib
import json
import socket
import urllib.error
import urllib.request

import pytest

from trainwell.errors import TrainwellError
from trainwell.report.serve import RunsServer, find_runs


def _tree(d):
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def server(runs):
    root = runs["healthy"].parent
    s = RunsServer(root, port=0)
    s.start()
    yield s
    s.shutdown()
    s.server_close()


def _get(server, path, method="GET"):
    request = urllib.request.Request(server.url.rstrip("/") + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


def test_binds_localhost_by_default(server):
    assert server.server_address[0] == "127.0.0.1"


def test_lists_the_runs_and_serves_each(server, runs):
    status, page, headers = _get(server, "/")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    for name in ("healthy", "repaired", "failed", "interrupted"):
        assert f"href='/run/{name}/'" in page
    status, page, _ = _get(server, "/run/healthy/")
    assert status == 200 and "<script src='/live.js'></script>" in page and 'id="findings"' in page
    version = json.loads(_get(server, "/run/healthy/version")[1])
    assert "history.jsonl:" in version and f"data-version='{json.dumps(version)}'".replace('"', "&quot;") in page
    status, text, _ = _get(server, "/run/healthy/file/history.jsonl")
    assert status == 200 and text == (runs["healthy"] / "history.jsonl").read_text()


def test_hostile_run_names_are_escaped_in_the_list(server):
    page = _get(server, "/")[1]
    assert "<script>alert" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("path", ["/run/../healthy/config.yaml", "/run/%2e%2e/etc/passwd", "/run/healthy/file/../../x",
                                  "/run/healthy/file/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/run/healthy/file/model.safetensors",
                                  "/run/healthy/file/checkpoints", "/etc/passwd", "/run/", "/run/nosuch/",
                                  "/run/healthy/nosuch"])
def test_nothing_outside_the_runs_is_served(server, path):
    status, body, _ = _get(server, path)
    assert status == 404 and body.startswith("404 Not Found: ") and body.count("\n") == 1


def test_a_link_out_of_the_directory_is_not_a_run(tmp_path, runs):
    root = tmp_path / "root"
    root.mkdir()
    (root / "elsewhere").symlink_to(runs["healthy"])
    assert find_runs(root) == {}


def test_only_get_and_head(server):
    for method in ("POST", "PUT", "DELETE"):
        status, body, _ = _get(server, "/", method)
        assert status == 501 and body.startswith("501 Not Implemented: ")
    assert _get(server, "/", "HEAD")[:2] == (200, "")


def test_a_malformed_request_is_answered_in_one_line(server):
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1 junk\r\n\r\n")
        chunks = []
        while chunk := s.recv(4096):  # the server closes the connection after a refusal
            chunks.append(chunk)
        reply = b"".join(chunks).decode("latin-1")
    head, body = reply.split("\r\n\r\n", 1)
    assert head.split()[1] == "400" and body.startswith("400 Bad Request: ") and body.count("\n") == 1


def test_serving_writes_nothing(server, runs):
    root = runs["healthy"].parent
    before = _tree(root)
    for path in ("/", "/run/healthy/", "/run/repaired/body", "/run/failed/version", "/run/interrupted/"):
        assert _get(server, path)[0] == 200
    assert _tree(root) == before


def test_bad_arguments_are_one_line(tmp_path):
    with pytest.raises(TrainwellError, match="no such directory"):
        RunsServer(tmp_path / "nope", port=0)
    busy = RunsServer(tmp_path, port=0)
    try:
        with pytest.raises(TrainwellError, match="cannot listen on 127.0.0.1"):
            RunsServer(tmp_path, port=busy.server_address[1])
    finally:
        busy.server_close()


def test_a_file_of_a_run_that_links_out_is_not_served(tmp_path, runs):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(runs["healthy"], root / "r")
    (root / "r" / "metrics.json").unlink()
    (root / "r" / "metrics.json").symlink_to("/etc/passwd")
    s = RunsServer(root, port=0)
    s.start()
    try:
        assert _get(s, "/run/r/file/metrics.json")[0] == 404
        status, page, _ = _get(s, "/run/r/")
        assert status == 200 and "metrics.json is a link: not read" in page and "root:x:" not in page
    finally:
        s.shutdown()
        s.server_close()


def test_another_host_or_origin_is_refused(server):
    for headers in ({"Host": "evil.example:8000"}, {"Origin": "http://evil.example"}):
        request = urllib.request.Request(server.url, headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        assert err.value.code == 403
