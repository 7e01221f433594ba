"""The playground's server: its endpoints, its refusals, and that it survives what a page or a person sends."""

import html
import json
import socket
import urllib.error
import urllib.request

import pytest

from trainwell.playground.knobs import PRESETS
from trainwell.playground.server import MAX_UPLOAD


def call(server, path, body=None, method=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(server.url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_binds_localhost_and_serves_its_page(server):
    assert server.server_address[0] == "127.0.0.1"
    status, page = call(server, "/")
    assert status == 200 and "<script src=\"/play.js\"></script>" in page
    status, knobs = call(server, "/api/knobs")
    knobs = json.loads(knobs)
    assert {k["key"] for k in knobs["knobs"]} >= {"model.init", "model.norm", "optim.name", "reg.l1", "clip.max_norm"}
    assert knobs["defaults"]["model.width"] == 8 and len(knobs["presets"]) >= 4


def test_knobs_control_and_export(server):
    assert call(server, "/api/config", {"knobs": {"model.width": 4, "data.n_samples": 200}})[0] == 200
    assert call(server, "/api/control", {"action": "step"})[0] == 200
    status, text = call(server, "/api/export")
    assert status == 200 and "width: 4" in text and "n_samples: 200" in text


@pytest.mark.parametrize("path, body, raw, code, words", [
    ("/api/config", None, b"not json", 400, "not JSON"),
    ("/api/config", None, b"[1, 2]", 400, "JSON object"),
    ("/api/config", {"knobs": {"model.width": 500}}, None, 400, "allows 1 to 64"),
    ("/api/config", {"knobs": {"model.width": "60000"}}, None, 400, "allows 1 to 64"),
    ("/api/config", {"knobs": {"data.path": "/etc/passwd"}}, None, 400, "not a playground knob"),
    ("/api/config", {"knobs": "x"}, None, 400, "JSON object"),
    ("/api/control", {"action": "explode"}, None, 400, "unknown action"),
    ("/api/apply", {"index": 99}, None, 400, "no finding 99"),
    ("/api/upload", {"csv": 3}, None, 400, "the file's text"),
    ("/api/nope", {}, None, 404, "no such endpoint"),
])
def test_bad_requests_get_one_line_errors(server, path, body, raw, code, words):
    status, text = call(server, path, body, raw=raw, method="POST")
    assert status == code and words in json.loads(text)["error"]


def test_too_large_an_upload_is_refused_before_it_is_read(server):
    # the headers announce more than the cap and no body follows: the answer comes from the headers alone
    # (sending the whole body instead races the server's refusal: the client may get a broken pipe)
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(f"POST /api/upload HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {MAX_UPLOAD + 1}\r\n\r\n".encode())
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split()[1] == b"413" and "at most" in json.loads(body)["error"]


def test_unknown_pages_methods_and_broken_requests(server):
    assert call(server, "/etc/passwd")[0] == 404
    assert call(server, "/../../etc/passwd")[0] == 404
    assert call(server, "/lab/../../etc/passwd")[0] == 404 and call(server, "/lab/nosuch")[0] == 404
    assert call(server, "/", method="PUT")[0] == 501
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1 junk\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.split()[1] == b"400"


def test_every_presets_lab_link_is_its_experiments_page_escaped(server):
    from trainwell.lab import EXPERIMENTS

    for preset in PRESETS:
        status, text = call(server, "/lab/" + preset["lab"])
        experiment = EXPERIMENTS[preset["lab"]]
        assert status == 200 and html.escape(experiment.claim) in text and html.escape(experiment.criterion) in text
        assert f"trainwell lab run {experiment.name}" in text


def test_an_internal_error_is_a_500_and_the_server_goes_on(server, monkeypatch):
    monkeypatch.setattr(server.session, "control", lambda action: 1 / 0)
    status, text = call(server, "/api/control", {"action": "play"})
    assert status == 500 and "ZeroDivisionError" in json.loads(text)["error"]
    assert call(server, "/api/state")[0] == 200


def test_another_sites_page_cannot_drive_it(server):
    """A page elsewhere can POST to 127.0.0.1 without a preflight only as a form or text/plain: refused;
    a rebinding page names its own host: refused."""
    status, text = call(server, "/api/control", raw=b'{"action": "play"}', method="POST")  # json: the page's own way
    assert status == 200
    request = urllib.request.Request(server.url + "api/control", data=b'{"action": "play"}', method="POST",
                                     headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 415
    for headers in ({"Origin": "http://evil.example"}, {"Host": "evil.example:80"}):
        request = urllib.request.Request(server.url + "api/state", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        assert err.value.code == 403


def test_an_upload_too_many_rows_or_classes_is_refused(server):
    rows = "\n".join(f"{i % 13},{i % 7},{i % 2}" for i in range(6000))
    status, text = call(server, "/api/upload", {"csv": rows, "knobs": {}})
    assert status == 400 and "at most 5000 rows" in json.loads(text)["error"]
    rows = "\n".join(f"{i % 13},{i % 7},{i % 12}" for i in range(600))
    status, text = call(server, "/api/upload", {"csv": rows, "knobs": {}})
    assert status == 400 and "12 classes" in json.loads(text)["error"]
