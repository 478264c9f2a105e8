"""Shared by the server benchmarks: a scratch SQLite file or a fresh PostgreSQL database.

The benchmarks seed and serve it with the test suite's own helpers (tests/servers.py), so
they run with PYTHONPATH=tests, as `make bench` does."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "TRACE_TEST_POSTGRES_URL"


@contextmanager
def database(kind: str) -> Iterator[tuple[str, Path]]:
    """(database URL, a scratch folder for keys) for one benchmark run, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ocop-bench-") as folder:
        if kind == "sqlite":
            yield f"sqlite:///{Path(folder) / 'trace.db'}", Path(folder)
            return
        admin = make_url(os.environ[POSTGRES_ENV]).set(drivername="postgresql+psycopg")
        name = f"ocop_bench_{uuid.uuid4().hex[:10]}"
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.set(database=name).render_as_string(hide_password=False), Path(folder)
        finally:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()


def kinds() -> list[str]:
    """SQLite always; PostgreSQL when TRACE_TEST_POSTGRES_URL names a server."""
    return ["sqlite", "postgres"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def result(ok: bool, text: str) -> bool:
    """Print one benchmark's line, PASS or FAIL, with the machine's load; returns `ok`."""
    print(f"{'PASS' if ok else 'FAIL'}  {text} [{load()}]", flush=True)
    return ok
