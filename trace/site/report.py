"""'Report a suspected fake': the scan page's form, CSRF-protected and rate-limited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from ocop_trace import csrf, ocop, reports
from ocop_trace.errors import Forbidden, InvalidInput, TooManyRequests
from ocop_trace.scans import client_hash
from ocop_trace.site.pages import common, environment, language

router = APIRouter(tags=["reports"])


@router.post(
    "/report", summary="Report a suspected fake (the scan page's form)", response_class=HTMLResponse
)
async def report_fake(
    request: Request,
    serial: Annotated[str, Form(max_length=200)],
    form_token: Annotated[str, Form(alias="csrf", max_length=200)],
    note: Annotated[str, Form(max_length=2000)] = "",
    where_bought: Annotated[str, Form(max_length=300)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    settings = request.app.state.settings
    secret = settings.secret_key.get_secret_value()
    if not csrf.valid(secret, request.cookies.get(csrf.COOKIE), form_token):
        raise Forbidden("the form has expired: open the scan page again and resend it")
    client = client_hash(
        secret,
        request.client.host if request.client else None,
        request.headers.get("user-agent", "")[:200],
        ocop.today_in_vietnam().isoformat(),
    )
    if not request.app.state.report_limiter.allow(client):
        raise TooManyRequests(
            f"at most {reports.REPORTS_PER_HOUR} reports an hour from one network"
        )
    data, kind = b"", ""
    if photo is not None and photo.filename:
        kind = photo.content_type or ""
        if kind not in reports.PHOTO_TYPES:
            raise InvalidInput("the photo must be a JPEG, PNG or WebP image", field="photo")
        data = await photo.read(reports.MAX_PHOTO_BYTES + 1)
        if len(data) > reports.MAX_PHOTO_BYTES:
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
    await run_in_threadpool(reports.store, request.app.state.service.engine, report)
    lang = language(request)
    html = environment().get_template("reported.html").render(**common(lang))
    return HTMLResponse(html, status_code=201)
