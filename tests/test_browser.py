"""The scan page in a real browser (headless Chromium) at 360×640, with a screenshot."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import BATCH, CLI, PASSWORD, PRODUCER, PRODUCT, RATING, login

from ocop_trace.app import create_app
from ocop_trace.ledger_setup import init_ledger, open_service
from ocop_trace.settings import Settings

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (.ci/run does) for the browser test")
        pytest.skip("install Debian's chromium to run the browser test")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_scan_page_in_headless_chromium(tmp_path: Path) -> None:
    browser = chromium()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'trace.db'}",
        key_dir=tmp_path / "keys",
        checkpoint_interval=3600,
    )
    init_ledger(settings)
    service = open_service(settings)
    service.create_user(CLI, "council", PASSWORD, "council", "")
    from fastapi.testclient import TestClient

    client = TestClient(create_app(settings))
    council = {"Authorization": f"Bearer {login(client, 'council')}"}
    assert client.post("/api/v1/producers", json=PRODUCER, headers=council).status_code == 201
    client.post(
        "/api/v1/users",
        headers=council,
        json={
            "username": "producer",
            "password": PASSWORD,
            "role": "producer",
            "producer_id": "htx-tai-hoan",
        },
    )
    producer = {"Authorization": f"Bearer {login(client, 'producer')}"}
    client.post("/api/v1/products", json=PRODUCT, headers=council)
    client.post("/api/v1/ratings", json=RATING, headers=council)
    client.post("/api/v1/batches", json=BATCH, headers=producer)
    client.post("/api/v1/batches/mien-2026-001/labels", json={"count": 1}, headers=producer)
    with service.engine.connect() as conn:
        from sqlalchemy import text

        serial = conn.execute(text("SELECT serial FROM label_serial")).scalar_one()
    port = free_port()
    env = {
        **os.environ,
        "TRACE_DATABASE_URL": settings.database_url,
        "TRACE_KEY_DIR": str(settings.key_dir),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "ocop_trace.app:app_from_environment",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/01/08936012345674/10/L2601/21/{serial}?lang=vi"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "scan-page-360x640.png"
        shot.unlink(missing_ok=True)
        profile = tmp_path / "chromium-profile"
        done = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                "--window-size=360,640",
                f"--screenshot={shot}",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shot.exists(), done.stderr[-2000:]
        width, height = struct.unpack(">II", shot.read_bytes()[16:24])
        assert (width, height) == (360, 640)
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
        dom = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                f"--user-data-dir={profile}-dom",
                "--window-size=360,640",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        assert 'data-verdict="registered"' in dom
        assert "Miến dong Tài Hoan" in dom
    finally:
        server.terminate()
        server.wait(timeout=30)
