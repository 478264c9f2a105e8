"""Shared pieces of the command line: consoles, the --db option, errors that exit 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from ledger.errors import LedgerError
from ledger.verifier import Report
from ocop_trace.errors import ServiceError
from ocop_trace.settings import Settings

out = Console(soft_wrap=True)  # long hashes and keys stay on one line, copyable
err = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL. Default: $TRACE_DATABASE_URL or sqlite:///trace.db."),
]


def fail(message: str) -> NoReturn:
    """A usage or input problem: say what to fix and exit with status 2."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into a message and exit status 2, never a traceback."""
    try:
        yield
    except LedgerError as exc:
        fail(str(exc))
    except ServiceError as exc:
        fail(exc.message)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid setting: {problems}")
    except OSError as exc:
        fail(f"{exc.filename or 'file'}: {exc.strerror or exc}")
    except Exception as exc:
        # Only commands that opened a database can meet its errors, and only they have
        # imported SQLAlchemy: the others must not pay for importing it here.
        database = sys.modules.get("sqlalchemy.exc")
        if database is None or not isinstance(exc, database.SQLAlchemyError):
            raise
        # The driver's own first line says what went wrong (refused, no such database...).
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        fail(f"database error: {reason}")


def settings_with(db: str | None) -> Settings:
    with user_errors():
        settings = Settings()
    return settings.model_copy(update={"database_url": db}) if db else settings


def passphrase_from(env_name: str | None) -> bytes | None:
    if env_name is None:
        return None
    value = os.environ.get(env_name)
    if not value:
        fail(f"--passphrase-env {env_name}: that environment variable is empty or unset")
    return value.encode("utf-8")


def print_report(report: Report) -> None:
    if report.ok:
        out.print(
            f"[bold green]VALID[/] {report.entries:,} entries, "
            f"{report.checkpoints} checkpoints verified, {report.keys} keys "
            f"({report.revoked_keys} revoked), {report.seconds:.2f}s"
        )
        out.print(f"root {report.root}")
        if report.witnessed_by is not None:
            out.print(f"latest checkpoint cosigned by {', '.join(report.witnessed_by)}")
        for kind, count in report.kinds.items():
            out.print(f"  {kind}: {count:,}")
        return
    out.print(f"[bold red]INVALID[/] after {report.entries:,} good entries", highlight=False)
    out.print(str(report.failure), highlight=False, markup=False)
