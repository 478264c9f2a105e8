"""Files created private, and development mode said out loud (serve's log, a flag for pages)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import free_port

from ocop_trace.app import create_app
from ocop_trace.ledger_setup import init_ledger
from ocop_trace.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_key_files_are_created_for_their_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which made them world-readable
    try:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'trace.db'}", key_dir=tmp_path / "k"
        )
        init_ledger(settings)
    finally:
        os.umask(old)
    assert mode(tmp_path / "trace.db") == 0o600
    for sidecar in ("trace.db-wal", "trace.db-shm"):
        if (tmp_path / sidecar).exists():
            assert mode(tmp_path / sidecar) == 0o600, sidecar
    assert mode(tmp_path / "k") == 0o700
    for private in ("root.pem", "ledger.pem"):
        assert mode(tmp_path / "k" / private) == 0o600, private


def test_settings_say_when_the_server_runs_for_development() -> None:
    assert Settings().is_development
    assert Settings().placeholder_secret
    real = Settings(
        environment="production", secret_key="x" * 40, public_url="https://truyxuat.example.vn"
    )
    assert not real.is_development
    assert not real.placeholder_secret


def test_each_server_process_warns_in_development(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'trace.db'}", key_dir=tmp_path / "k")
    init_ledger(settings)
    with caplog.at_level("WARNING", logger="ocop_trace"):
        app = create_app(settings)
    assert app.state.settings.is_development
    assert "DEVELOPMENT MODE" in caplog.text
    assert "public placeholder" in caplog.text
    caplog.clear()
    production = settings.model_copy(update={"environment": "production"})
    with caplog.at_level("WARNING", logger="ocop_trace"):
        create_app(production)
    assert "DEVELOPMENT MODE" not in caplog.text


def test_serve_warns_in_its_log(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TRACE_DATABASE_URL": f"sqlite:///{tmp_path / 'trace.db'}",
        "TRACE_KEY_DIR": str(tmp_path / "k"),
        "TRACE_ENVIRONMENT": "development",
    }
    env.pop("TRACE_SECRET_KEY", None)
    command = [str(Path(sys.executable).parent / "ocop-trace")]
    subprocess.run([*command, "init"], env=env, check=True, capture_output=True, timeout=120)
    server = subprocess.Popen(
        [*command, "serve", "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        seen = ""
        deadline = time.monotonic() + 60
        while "DEVELOPMENT MODE" not in seen and time.monotonic() < deadline:
            seen += server.stdout.readline()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "DEVELOPMENT MODE" in seen
    assert "decrypt every custodial signing key" in seen
