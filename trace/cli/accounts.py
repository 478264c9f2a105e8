"""Operators' commands for users, tokens, keys and the service secret."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from ocop_trace.cli.common import DbOption, fail, out, settings_with, user_errors

if TYPE_CHECKING:
    from ocop_trace.accounts import Principal
    from ocop_trace.service import TraceService
    from ocop_trace.settings import Settings

UserArg = Annotated[str, typer.Argument(help="The user's login name")]
Reason = Annotated[str, typer.Option(help="Why (kept in the ledger)")]


@contextmanager
def _service(db: str | None) -> Iterator[tuple[TraceService, Settings]]:
    """The use cases, acting as the council (an operator at the console), errors exiting 2."""
    settings = settings_with(db)
    with user_errors():
        from ocop_trace.ledger_setup import open_service

        yield open_service(settings), settings


def _operator() -> Principal:
    from ocop_trace.accounts import Principal

    return Principal(None, "cli", "council")


def user_disable(username: UserArg, db: DbOption = None) -> None:
    """Disable a user: it can no longer sign in and every token it has is revoked."""
    with _service(db) as (service, _):
        service.set_user_disabled(_operator(), username, True)
    out.print(f"user {username} disabled; its tokens are revoked")


def user_enable(username: UserArg, db: DbOption = None) -> None:
    """Enable a disabled user again (it signs in anew: its old tokens stay revoked)."""
    with _service(db) as (service, _):
        service.set_user_disabled(_operator(), username, False)
    out.print(f"user {username} enabled")


def user_tokens(username: UserArg, db: DbOption = None) -> None:
    """List a user's tokens: id, name, created, last used, expires or revoked."""
    with _service(db) as (service, settings):
        ttl = timedelta(days=settings.token_days)
        tokens = service.user_tokens(_operator(), username, ttl)
    for t in tokens:
        state = f"revoked {t.revoked_at}" if t.revoked_at else f"expires {t.expires_at}"
        used = t.last_used_at or "never"
        out.print(f"{t.id}\t{t.name}\tcreated {t.created_at}\tlast used {used}\t{state}")
    if not tokens:
        out.print(f"user {username} has no tokens")


def user_revoke_tokens(username: UserArg, db: DbOption = None) -> None:
    """Revoke every live token of a user."""
    with _service(db) as (service, _):
        count = service.revoke_user_tokens(_operator(), username)
    out.print(f"{count} tokens of {username} revoked")


def key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (64 hex digits)")],
    reason: Reason,
    db: DbOption = None,
) -> None:
    """Revoke a key in the ledger; a custodial key's private half is deleted with it."""
    with _service(db) as (service, _):
        receipt = service.revoke_key(_operator(), key_id, reason)
    out.print(f"key {key_id} revoked (ledger entry {receipt.index})")


def key_rotate(
    producer: Annotated[str, typer.Option("--producer", help="The producer whose key")],
    reason: Reason = "scheduled rotation",
    db: DbOption = None,
) -> None:
    """Give a producer a new custodial key and revoke the old one, in one append."""
    with _service(db) as (service, _):
        receipts, new, old = service.rotate_producer_key(_operator(), producer, reason)
    out.print(f"producer {producer}: new key {new} (entry {receipts[0].index}), {old} revoked")


def rotate_secret(
    new_secret_env: Annotated[
        str, typer.Option(help="Environment variable holding the new secret (never an argument)")
    ] = "TRACE_NEW_SECRET_KEY",  # noqa: S107  (the name of a variable, not a secret)
    db: DbOption = None,
) -> None:
    """Re-encrypt every custodial key from TRACE_SECRET_KEY to a new secret, in one
    transaction; then restart the service with TRACE_SECRET_KEY set to the new one."""
    new_secret = os.environ.get(new_secret_env, "")
    if len(new_secret) < 32:
        fail(f"set {new_secret_env} to the new secret: a random value of at least 32 characters")
    with _service(db) as (service, settings):
        if new_secret == settings.secret_key.get_secret_value():
            fail(f"{new_secret_env} is the secret in use: choose a new one")
        count = service.custody.rotate_secret(new_secret)
    out.print(
        f"{count} custodial keys re-encrypted under the new secret: restart the service "
        f"with TRACE_SECRET_KEY set to the value of {new_secret_env}"
    )
