"""A real browser for page tests: Debian's chromium driven by Playwright, never a download.

`served_demo` seeds the demo (every verdict has a link in it) and serves it with a real
server process; `chromium` launches the system binary. Screenshots go to artifacts/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 640}
DESKTOP = {"width": 1280, "height": 800}


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (.ci/run does) for the browser tests")
        pytest.skip("install Debian's chromium to run the browser tests")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    base: str
    links: dict[str, str]  # the demo's link per verdict, on this server
    directory: Path
    credentials: dict[str, str]  # username -> password


@pytest.fixture(scope="session")
def served_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from ocop_trace.demo import run_demo
    from ocop_trace.settings import Settings

    folder = tmp_path_factory.mktemp("demo")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=f"sqlite:///{folder / 'trace.db'}",
        key_dir=folder / "keys",
        public_url=base,
        checkpoint_interval=3600,
    )
    result = run_demo(settings)
    credentials = {
        line.split("\t")[0]: line.split("\t")[2]
        for line in result.credentials.read_text("utf-8").splitlines()[1:]
        if line.strip()
    }
    env = {
        **os.environ,
        "TRACE_DATABASE_URL": settings.database_url,
        "TRACE_KEY_DIR": str(settings.key_dir),
        "TRACE_PUBLIC_URL": base,
        "TRACE_WITNESS_POLICY": str(result.witness_policy),
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
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield Served(base, result.links, folder, credentials)
    finally:
        server.terminate()
        server.wait(timeout=30)


# Module scope: Playwright's sync API keeps its event loop marked as running
# on the main thread while it is open, so later tests calling asyncio.run fail.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    binary = chromium_binary()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=FLAGS)
        yield browser
        browser.close()


def axe_problems(page: Any) -> list[str]:
    """Serious and critical WCAG problems axe-core finds on the page."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, options={"runOnly": ["wcag2a", "wcag2aa", "wcag21aa"]})
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])})"
        for v in found.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
