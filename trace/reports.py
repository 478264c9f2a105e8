"""'Report a suspected fake': a form on the scan page, CSRF-protected and rate-limited."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import BigInteger, Column, Engine, Index, LargeBinary, func, insert, select
from sqlmodel import Field, SQLModel

from ledger.statement import utc_now
from ocop_trace import ocop
from ocop_trace.api.deps import ConnDep, PageDep, PrincipalDep
from ocop_trace.errors import Forbidden, InvalidInput, TooManyRequests
from ocop_trace.pages import _common, environment, language
from ocop_trace.scans import client_hash
from ocop_trace.service import require_role

MAX_PHOTO_BYTES = 2 * 1024 * 1024
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}
REPORTS_PER_HOUR = 5
CSRF_COOKIE = "ocop_csrf"


class FakeReport(SQLModel, table=True):
    __tablename__ = "fake_report"
    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(index=True, max_length=200)
    note: str = Field(default="", max_length=2000)
    where_bought: str = Field(default="", max_length=300)
    client: str = Field(max_length=32, description="Salted network hash, never an address")
    created_at: str = Field(max_length=32)
    photo_type: str = Field(default="", max_length=32)
    photo: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    photo_size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


REPORT = FakeReport.__table__  # type: ignore[attr-defined]
# The hourly limit counts one network's recent reports.
Index("ix_fake_report_client_created_at", REPORT.c.client, REPORT.c.created_at)
router = APIRouter(tags=["reports"])


def csrf_token(secret: str) -> str:
    """A random value and its HMAC: the form carries it, and so does a cookie."""
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_mac(secret, nonce)}"


def _mac(secret: str, nonce: str) -> str:
    # hmac.digest: the one-shot form, several times faster than hmac.new (every scan).
    return hmac.digest(secret.encode(), nonce.encode(), "sha256").hex()[:32]


def _csrf_ok(secret: str, cookie: str | None, field: str) -> bool:
    if not cookie or not hmac.compare_digest(cookie, field):
        return False
    nonce, _, mac = field.partition(".")
    return hmac.compare_digest(mac, _mac(secret, nonce))


class RateLimiter:
    """Sliding one-hour window of attempts per client hash, in this process's memory: a
    cheap first gate. The stored reports are counted across processes in the database."""

    def __init__(self, limit: int, window: float = 3600.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] > self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


@router.post(
    "/report", summary="Report a suspected fake (the scan page's form)", response_class=HTMLResponse
)
async def report_fake(
    request: Request,
    serial: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)],
    note: Annotated[str, Form(max_length=2000)] = "",
    where_bought: Annotated[str, Form(max_length=300)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    settings = request.app.state.settings
    secret = settings.secret_key.get_secret_value()
    if not _csrf_ok(secret, request.cookies.get(CSRF_COOKIE), csrf):
        raise Forbidden("the form has expired: open the scan page again and resend it")
    client = client_hash(
        secret,
        request.client.host if request.client else None,
        request.headers.get("user-agent", "")[:200],
        ocop.today_in_vietnam().isoformat(),
    )
    if not request.app.state.report_limiter.allow(client):
        raise TooManyRequests(f"at most {REPORTS_PER_HOUR} reports an hour from one network")
    data, kind = b"", ""
    if photo is not None and photo.filename:
        kind = photo.content_type or ""
        if kind not in PHOTO_TYPES:
            raise InvalidInput("the photo must be a JPEG, PNG or WebP image", field="photo")
        data = await photo.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise InvalidInput("the photo must be at most 2 MB", field="photo")
    report = {
        "serial": serial,
        "note": note,
        "where_bought": where_bought,
        "client": client,
        "photo_type": kind,
        "photo": data or None,
        "photo_size": len(data),
    }
    # Off the event loop: the write waits for the disk, and scans must not wait with it.
    await run_in_threadpool(_store, request.app.state.service.engine, report)
    lang = language(request)
    html = environment().get_template("reported.html").render(**_common(lang))
    return HTMLResponse(html, status_code=201)


def _store(engine: Engine, report: dict[str, Any]) -> None:
    """Store a report unless its network sent the hourly limit already, counted over every
    server process; the check and the insert hold the database's write lock together."""
    now = datetime.now(UTC)
    since = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with engine.connect() as conn, conn.execution_options(ledger_write=True).begin():
        if conn.dialect.name == "postgresql":
            key = int(report["client"][:15], 16)
            conn.execute(select(func.pg_advisory_xact_lock(key)))
        recent = conn.execute(
            select(func.count())
            .select_from(REPORT)
            .where(REPORT.c.client == report["client"], REPORT.c.created_at >= since)
        ).scalar_one()
        if recent >= REPORTS_PER_HOUR:
            raise TooManyRequests(f"at most {REPORTS_PER_HOUR} reports an hour from one network")
        conn.execute(insert(REPORT).values(**report, created_at=utc_now()))


@router.get("/api/v1/reports", summary="Suspected fakes reported by shoppers (inspectors)")
def list_reports(conn: ConnDep, principal: PrincipalDep, page: PageDep) -> dict[str, Any]:
    require_role(principal, "inspector", "council")
    total = conn.execute(select(func.count()).select_from(REPORT)).scalar_one()
    columns = [c for c in REPORT.c if c.name != "photo"]
    rows = conn.execute(
        select(*columns).order_by(REPORT.c.id.desc()).limit(page.limit).offset(page.offset)
    ).all()
    return {
        "items": [dict(r._mapping) for r in rows],
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
    }
