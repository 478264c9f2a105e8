"""Real server processes for the concurrency tests: a seeded ledger served by uvicorn workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from support import CLI, PASSWORD, PRODUCER, PRODUCT

from ocop_trace.ledger_setup import init_ledger, open_service
from ocop_trace.models import ProducerCreate, ProductCreate
from ocop_trace.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(db_url: str, key_dir: Path, *, producer: bool = True) -> Settings:
    """A ledger with a council user, and (by default) a producer, its product and its user."""
    settings = Settings(database_url=db_url, key_dir=key_dir, checkpoint_interval=3600)
    init_ledger(settings)
    service = open_service(settings)
    service.create_user(CLI, "council", PASSWORD, "council", "")
    if producer:
        service.register_producer(CLI, ProducerCreate.model_validate(PRODUCER))
        service.register_product(CLI, ProductCreate.model_validate(PRODUCT))
        service.create_user(CLI, "producer", PASSWORD, "producer", PRODUCER["id"])
    service.engine.dispose()
    return settings


@contextmanager
def serving(settings: Settings, workers: int = 2, **env: str) -> Iterator[str]:
    """`ocop-trace serve`'s app in `workers` uvicorn processes; yields the base URL."""
    port = free_port()
    environment = {
        **os.environ,
        "TRACE_DATABASE_URL": settings.database_url,
        "TRACE_KEY_DIR": str(settings.key_dir),
        "TRACE_CHECKPOINT_INTERVAL": "3600",
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "ocop_trace.app:app_from_environment",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--timeout-worker-healthcheck",  # as `ocop-trace serve`: a loaded machine is slow
        "30",
    ]
    server = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {server.stderr.read()}")  # type: ignore[union-attr]
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def token(base: str, username: str) -> str:
    answer = httpx.post(
        base + "/api/v1/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=120,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])
