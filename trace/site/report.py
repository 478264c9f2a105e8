"""'Report a suspected fake': the scan page's form, CSRF-protected and limited per network.

Every outcome is a page in the sender's language: a problem shows the form again with what
was typed and the message beside the field; success redirects to a thank-you page (so its
language switch and a reload are plain GETs).
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from ocop_trace import csrf, i18n, photos, reports
from ocop_trace.errors import InvalidInput, NotFound, PayloadTooLarge, TooManyRequests
from ocop_trace.site.pages import finish, language, render

router = APIRouter(tags=["reports"])
FIELDS = {"note": reports.MAX_NOTE_CHARS, "where_bought": reports.MAX_WHERE_CHARS}


@router.post(
    "/report", summary="Report a suspected fake (the scan page's form)", include_in_schema=False
)
async def report_fake(request: Request) -> Response:
    lang = language(request)
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=64 * 1024)
    except MultiPartException:
        return _again(request, lang, {}, "", {"note": i18n.t(lang, "report.unreadable")}, 400)
    serial = str(form.get("serial") or "")[:32]
    values = {name: str(form.get(name) or "") for name in FIELDS}
    errors = {
        name: i18n.t(lang, "report.too_long", limit=i18n.number(limit, lang))
        for name, limit in FIELDS.items()
        if len(values[name]) > limit
    }
    secret = request.app.state.settings.secret_key.get_secret_value()
    if not csrf.valid(secret, request.cookies.get(csrf.COOKIE), str(form.get("csrf") or "")):
        errors["note"] = i18n.t(lang, "report.expired")
    photo = form.get("photo")
    cleaned = None
    if not errors and isinstance(photo, UploadFile) and photo.filename:
        data = await photo.read(photos.MAX_BYTES + 1)
        try:
            cleaned = await run_in_threadpool(photos.clean, data)
        except photos.PhotoError as exc:
            errors["photo"] = i18n.t(lang, exc.key)
        except PayloadTooLarge:
            errors["photo"] = i18n.t(lang, "photo.too_large", mb=photos.MAX_BYTES // 2**20)
    if errors:
        return _again(request, lang, values, serial, errors, 422)
    host = request.client.host if request.client else None
    try:
        if not request.app.state.report_limiter.allow(reports.network_key(secret, host)):
            raise TooManyRequests("too many reports from this network", retry_after=3600)
        # Off the event loop: the write waits for the disk, and scans must not wait with it.
        await run_in_threadpool(
            partial(
                reports.submit,
                request.app.state.service.engine,
                secret,
                serial=serial,
                host=host,
                **values,
                photo=cleaned.data if cleaned else b"",
                photo_type=cleaned.media_type if cleaned else "",
                bytes_per_day=request.app.state.settings.report_bytes_per_day,
            )
        )
    except reports.ReportBudgetExceeded:
        return _again(request, lang, values, serial, {"note": i18n.t(lang, "report.budget")}, 429)
    except TooManyRequests:
        errors = {"note": i18n.t(lang, "report.too_many", limit=reports.REPORTS_PER_HOUR)}
        return _again(request, lang, values, serial, errors, 429)
    except (NotFound, InvalidInput):  # a code the service never issued
        errors = {"note": i18n.t(lang, "report.unknown_serial")}
        return _again(request, lang, values, serial, errors, 422)
    return RedirectResponse(f"/report/thanks?lang={lang}&serial={serial}", status_code=303)


@router.get("/report/thanks", summary="After a report is sent", include_in_schema=False)
def thanks(request: Request) -> Response:
    lang = language(request)
    page = render(request, lang, "site/reported.html", back_url=_back(request))
    return finish(request, page, None, {})


def _again(
    request: Request,
    lang: str,
    values: dict[str, str],
    serial: str,
    errors: dict[str, str],
    status: int,
) -> Response:
    """The form again, with what was typed, each problem beside its field, a fresh token."""
    report = {"values": {name: values.get(name, "") for name in FIELDS}, "errors": errors}
    page = render(
        request, lang, "site/report_page.html", report=report, back_url=_back(request, serial)
    )
    return finish(request, page, serial or "-", {}, status)


def _back(request: Request, serial: str | None = None) -> str:
    """Back to the label's page (its short link), or the home page."""
    code = serial or request.query_params.get("serial", "")
    if len(code) == 16 and code.isalnum():
        return f"/l/{code}?lang={language(request)}"
    return "/"
