"""Body size limits enforced while streaming (a real server, raw sockets), security headers."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from servers import seed, serving
from support import Api

from ocop_trace.app import create_app
from ocop_trace.limits import JSON_BYTES, UPLOAD_BYTES


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    folder = tmp_path_factory.mktemp("limits")
    settings = seed(f"sqlite:///{folder / 'trace.db'}", folder / "keys", producer=False)
    with serving(settings, workers=1) as base:
        parts = urlsplit(base)
        yield str(parts.hostname), int(parts.port or 80)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    sock.settimeout(30)
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _request(server: tuple[str, int], head: str) -> socket.socket:
    sock = socket.create_connection(server, timeout=30)
    sock.sendall(head.encode("latin-1"))
    return sock


def test_a_declared_oversize_body_is_refused_before_it_is_sent(server: tuple[str, int]) -> None:
    sock = _request(
        server,
        "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n",
    )
    started = time.monotonic()
    status, headers, body = _answer(sock)  # not one byte of the 200 MB was sent
    sock.close()
    assert status == 413
    assert time.monotonic() - started < 10
    error = json.loads(body)["error"]
    assert error["code"] == "too_large"
    assert error["details"]["limit_bytes"] == JSON_BYTES
    assert headers["x-content-type-options"] == "nosniff"  # every answer has the headers


def test_a_chunked_body_is_cut_off_at_the_limit(server: tuple[str, int]) -> None:
    sock = _request(
        server,
        "POST /api/v1/producers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
    )
    chunk = b"[" + b" " * (64 * 1024 - 1)
    sent = 0
    try:
        while sent < 50 * 1024 * 1024:  # the server answers long before this
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            sock.setblocking(False)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, _, body = _answer(sock)
    sock.close()
    assert status == 413, body
    assert sent < 8 * 1024 * 1024, f"{sent} bytes were sent before the answer"


def test_a_multipart_upload_may_be_larger_but_not_unbounded(server: tuple[str, int]) -> None:
    boundary = "b0undary"
    for size, oversize in ((5 * 1024 * 1024, False), (UPLOAD_BYTES + 1, True)):
        body = (
            (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="photo"; filename="p.png"\r\n'
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            + b"x" * size
            + f"\r\n--{boundary}--\r\n".encode()
        )
        sock = _request(
            server,
            f"POST /report HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n",
        )
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(body)
        status, _, _ = _answer(sock)
        sock.close()
        assert (status == 413) is oversize, (size, status)


def test_security_headers_on_pages_api_and_errors(api: Api) -> None:
    for path in ("/api/v1/producers", "/no/such/page", "/healthz", "/docs"):
        headers = api.client.get(path).headers
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in headers  # http://127.0.0.1: no HSTS


def test_hsts_when_the_public_url_is_https(tmp_path: Path) -> None:
    settings = seed(f"sqlite:///{tmp_path / 'trace.db'}", tmp_path / "keys", producer=False)
    secure = settings.model_copy(update={"public_url": "https://trace.example.vn"})
    with TestClient(create_app(secure)) as client:
        assert client.get("/healthz").headers["strict-transport-security"].startswith("max-age=")
