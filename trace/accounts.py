"""People and scripts: users with Argon2-hashed passwords, API tokens stored only as hashes.

A token expires after `ttl` unused (sliding: each use moves the end, written at most once
an hour); disabling a user revokes every token it has.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlmodel import Field, SQLModel

from ledger.statement import utc_now
from ledger.store import one_read, writing
from ocop_trace.errors import Conflict, InvalidInput, NotAuthenticated, NotFound

ROLES = ("council", "producer", "inspector")
# Also the name of an inspector's signing key, which must be printable ASCII without spaces.
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
TOKEN_PREFIX = "ocop_"  # noqa: S105  (a visible prefix, so leaked tokens are easy to spot)
# argon2id, 64 MiB and 3 passes as RFC 9106's second recommendation, but one lane: with
# four, every sign-in kept every core of a two-core server busy (older hashes are redone
# with these parameters at their next sign-in).
_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=64)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=16)
    producer_id: str = Field(default="", max_length=64)
    disabled: bool = False
    created_at: str = Field(max_length=32)
    # Set for an account the council made or reset: the staff app asks for a new password
    # before anything else, so nobody keeps a password someone else has seen.
    must_change_password: bool = False


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: str = Field(max_length=32)
    revoked_at: str | None = Field(default=None, max_length=32)
    last_used_at: str | None = Field(default=None, max_length=32)


class UserPublic(SQLModel):
    id: int
    username: str
    role: str
    producer_id: str


class TokenPublic(SQLModel):
    id: int
    name: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None = None
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


@dataclass(frozen=True)
class NewUser:
    """A user checked and with its password hashed, ready to insert."""

    username: str
    role: str
    producer_id: str
    password_hash: str


def new_user(username: str, password: str, role: str, producer_id: str) -> NewUser:
    """Check a new user and hash its password, before any transaction: the hash takes a
    good fraction of a second, and must not hold the database's write lock meanwhile."""
    if not USERNAME.fullmatch(username):
        raise InvalidInput("username must be 3-64 of a-z, 0-9, '.', '_' and '-'", field="username")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if (role == "producer") != bool(producer_id):
        raise InvalidInput(
            "a producer user needs producer_id, and only a producer user", field="producer_id"
        )
    return NewUser(username, role, producer_id, hash_password(password))


MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    """A password's Argon2 hash, once it is long enough (slow: hash outside transactions)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"password must have at least {MIN_PASSWORD} characters", field="password"
        )
    return _hasher.hash(password)


def set_password(conn: Connection, user_id: int, password_hash: str, must_change: bool) -> None:
    """A new password (hashed already); every token of the user is revoked with the old one."""
    conn.execute(
        update(USER)
        .where(USER.c.id == user_id)
        .values(password_hash=password_hash, must_change_password=must_change)
    )
    revoke_all(conn, user_id)


def must_change_password(conn: Connection, user_id: int) -> bool:
    found = conn.execute(select(USER.c.must_change_password).where(USER.c.id == user_id)).scalar()
    return bool(found)


def create_user(conn: Connection, user: NewUser, now: str, must_change: bool = False) -> int:
    if conn.execute(select(USER.c.id).where(USER.c.username == user.username)).first() is not None:
        raise Conflict(f"user {user.username!r} already exists", field="username")
    result = conn.execute(
        insert(USER).values(
            username=user.username,
            password_hash=user.password_hash,
            role=user.role,
            producer_id=user.producer_id,
            disabled=False,
            created_at=now,
            must_change_password=must_change,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def check_password(engine: Engine, username: str, password: str) -> Principal | None:
    """The user, if the password is theirs and they are not disabled; None otherwise.
    Costs one Argon2 hash either way (see throttle.SignIn, which bounds how many run)."""
    with engine.connect() as conn:
        row = conn.execute(select(USER).where(USER.c.username == username)).first()
    try:
        if row is None or row.disabled:
            # Hash anyway, so a missing user takes as long as a wrong password.
            _hasher.verify(_DUMMY_HASH, password)
            return None
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        rehashed = _hasher.hash(password)
        with writing(engine) as conn:
            conn.execute(update(USER).where(USER.c.id == row.id).values(password_hash=rehashed))
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


TOUCH_EVERY = timedelta(hours=1)  # how often a token's last use is written


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def principal_for_token(engine: Engine, token: str, ttl: timedelta) -> Principal:
    """Who the token belongs to, unless it is unknown, revoked, unused for longer than
    `ttl`, or its user is disabled. A use moves its expiry on (written hourly at most)."""
    now = datetime.now(UTC)
    with one_read(engine) as conn:
        row = conn.execute(
            select(
                TOKEN.c.id,
                func.coalesce(TOKEN.c.last_used_at, TOKEN.c.created_at).label("used"),
                USER.c.id.label("user_id"),
                USER.c.username,
                USER.c.role,
                USER.c.producer_id,
                USER.c.disabled,
            )
            .join(TOKEN, TOKEN.c.user_id == USER.c.id)
            .where(TOKEN.c.token_hash == _token_hash(token), TOKEN.c.revoked_at.is_(None))
        ).first()
    if row is None or row.disabled:
        raise NotAuthenticated("the token is unknown or revoked; sign in again")
    if row.used < _stamp(now - ttl):
        raise NotAuthenticated(
            f"the token expired: unused for more than {ttl.days} days; sign in again"
        )
    if row.used < _stamp(now - TOUCH_EVERY):
        with writing(engine) as conn:
            conn.execute(update(TOKEN).where(TOKEN.c.id == row.id).values(last_used_at=_stamp(now)))
    return Principal(int(row.user_id), row.username, row.role, row.producer_id)


def user_id_of(conn: Connection, username: str) -> int:
    found = conn.execute(select(USER.c.id).where(USER.c.username == username)).scalar()
    if found is None:
        raise NotFound(f"no user {username!r}", field="username")
    return int(found)


def set_disabled(conn: Connection, username: str, disabled: bool) -> int:
    """Disable (and revoke every token of) a user, or enable it again; returns its id."""
    user_id = user_id_of(conn, username)
    conn.execute(update(USER).where(USER.c.id == user_id).values(disabled=disabled))
    if disabled:
        revoke_all(conn, user_id)
    return user_id


def tokens_of(conn: Connection, user_id: int, ttl: timedelta) -> list[TokenPublic]:
    """A user's tokens, newest first, with when each expires if left unused."""
    rows = conn.execute(
        select(TOKEN).where(TOKEN.c.user_id == user_id).order_by(TOKEN.c.id.desc())
    ).all()
    tokens = []
    for row in rows:
        used = datetime.strptime((row.last_used_at or row.created_at)[:19], "%Y-%m-%dT%H:%M:%S")
        expires = None if row.revoked_at else _stamp((used + ttl).replace(tzinfo=UTC))
        tokens.append(
            TokenPublic(
                id=row.id,
                name=row.name,
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                expires_at=expires,
                revoked_at=row.revoked_at,
            )
        )
    return tokens


def revoke_all(conn: Connection, user_id: int) -> int:
    """Revoke every live token of a user; returns how many."""
    result = conn.execute(
        update(TOKEN)
        .where(TOKEN.c.user_id == user_id, TOKEN.c.revoked_at.is_(None))
        .values(revoked_at=utc_now())
    )
    return int(result.rowcount)


def revoke_token(conn: Connection, principal: Principal, token_id: int, now: str) -> None:
    row = conn.execute(
        select(TOKEN.c.user_id, TOKEN.c.revoked_at).where(TOKEN.c.id == token_id)
    ).first()
    if row is None or (row.user_id != principal.user_id and principal.role != "council"):
        raise NotFound(f"no token {token_id} of yours")
    conn.execute(update(TOKEN).where(TOKEN.c.id == token_id).values(revoked_at=now))


def revoke_token_value(conn: Connection, token: str, now: str) -> None:
    """Revoke the token itself (signing out of a session), whoever's it is."""
    conn.execute(
        update(TOKEN)
        .where(TOKEN.c.token_hash == _token_hash(token), TOKEN.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
