"""People and scripts: users with Argon2-hashed passwords, API tokens stored only as hashes."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update
from sqlmodel import Field, SQLModel

from ocop_trace.errors import Conflict, InvalidInput, NotAuthenticated, NotFound

ROLES = ("council", "producer", "inspector")
# Also the name of an inspector's signing key, which must be printable ASCII without spaces.
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
TOKEN_PREFIX = "ocop_"  # noqa: S105  (a visible prefix, so leaked tokens are easy to spot)
_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106) default parameters


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=64)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=16)
    producer_id: str = Field(default="", max_length=64)
    disabled: bool = False
    created_at: str = Field(max_length=32)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: str = Field(max_length=32)
    revoked_at: str | None = Field(default=None, max_length=32)


class UserPublic(SQLModel):
    id: int
    username: str
    role: str
    producer_id: str


class TokenPublic(SQLModel):
    id: int
    name: str
    created_at: str
    revoked_at: str | None


USER = User.__table__  # type: ignore[attr-defined]
TOKEN = ApiToken.__table__  # type: ignore[attr-defined]
ACCOUNT_TABLES = [USER, TOKEN]


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user, or the public (user_id None)."""

    user_id: int | None
    username: str
    role: str
    producer_id: str = ""


PUBLIC = Principal(None, "", "public")


def _token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough; no need for Argon2 per request.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(
    conn: Connection, username: str, password: str, role: str, producer_id: str, now: str
) -> int:
    if not USERNAME.fullmatch(username):
        raise InvalidInput("username must be 3-64 of a-z, 0-9, '.', '_' and '-'", field="username")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if (role == "producer") != bool(producer_id):
        raise InvalidInput(
            "a producer user needs producer_id, and only a producer user", field="producer_id"
        )
    if len(password) < 12:
        raise InvalidInput("password must have at least 12 characters", field="password")
    if conn.execute(select(USER.c.id).where(USER.c.username == username)).first() is not None:
        raise Conflict(f"user {username!r} already exists", field="username")
    result = conn.execute(
        insert(USER).values(
            username=username,
            password_hash=_hasher.hash(password),
            role=role,
            producer_id=producer_id,
            disabled=False,
            created_at=now,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def authenticate(conn: Connection, username: str, password: str) -> Principal:
    row = conn.execute(select(USER).where(USER.c.username == username)).first()
    try:
        if row is None or row.disabled:
            # Hash anyway, so a missing user takes as long as a wrong password.
            _hasher.verify(_DUMMY_HASH, password)
            raise VerificationError("unknown user")
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise NotAuthenticated("wrong username or password") from None
    return Principal(int(row.id), row.username, row.role, row.producer_id)


_DUMMY_HASH = _hasher.hash("not a password anyone has")


def issue_token(conn: Connection, user_id: int, name: str, now: str) -> tuple[int, str]:
    """A new token; the caller shows it once, the database keeps only its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    result = conn.execute(
        insert(TOKEN).values(
            user_id=user_id, name=name, token_hash=_token_hash(token), created_at=now
        )
    )
    return int(result.inserted_primary_key[0]), token  # type: ignore[index]


def principal_for_token(conn: Connection, token: str) -> Principal:
    row = conn.execute(
        select(USER.c.id, USER.c.username, USER.c.role, USER.c.producer_id, USER.c.disabled)
        .join(TOKEN, TOKEN.c.user_id == USER.c.id)
        .where(TOKEN.c.token_hash == _token_hash(token), TOKEN.c.revoked_at.is_(None))
    ).first()
    if row is None or row.disabled:
        raise NotAuthenticated("the token is unknown or revoked; sign in again")
    return Principal(int(row.id), row.username, row.role, row.producer_id)


def revoke_token(conn: Connection, principal: Principal, token_id: int, now: str) -> None:
    row = conn.execute(
        select(TOKEN.c.user_id, TOKEN.c.revoked_at).where(TOKEN.c.id == token_id)
    ).first()
    if row is None or (row.user_id != principal.user_id and principal.role != "council"):
        raise NotFound(f"no token {token_id} of yours")
    conn.execute(update(TOKEN).where(TOKEN.c.id == token_id).values(revoked_at=now))
