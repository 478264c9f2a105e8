"""The inspector's screens: the reports inbox, checking a label, and the ledger's audit."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.background import BackgroundTask

from ledger.bundle_export import export_bundle
from ocop_trace import i18n, photos, reports
from ocop_trace.errors import NotFound, ServiceError
from ocop_trace.models import BATCH, LABEL_SERIAL, InspectionCreate
from ocop_trace.reports import HANDLED, REPORT
from ocop_trace.scan_facts import batch_of_serial
from ocop_trace.scans import NETWORK
from ocop_trace.serials import SerialError, parse_canonical, parse_human
from ocop_trace.webapp.forms import FORM, service_errors, validation_errors
from ocop_trace.webapp.session import Form, Staff, go, new_key, once, read_form, render, staff

router = APIRouter(prefix="/app", include_in_schema=False)
INBOX = 50


# -- reports ------------------------------------------------------------------------------
def _inbox(engine: Any, handled: bool) -> list[dict[str, Any]]:
    """Reports, newest first, with their serial's batch and how widely it was scanned."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                REPORT.c.id,
                REPORT.c.serial,
                REPORT.c.note,
                REPORT.c.where_bought,
                REPORT.c.created_at,
                REPORT.c.photo_size,
                LABEL_SERIAL.c.batch_id,
                HANDLED.c.note.label("handled_note"),
                HANDLED.c.handled_by,
                HANDLED.c.handled_at,
            )
            .outerjoin(LABEL_SERIAL, LABEL_SERIAL.c.serial == REPORT.c.serial)
            .outerjoin(HANDLED, HANDLED.c.report_id == REPORT.c.id)
            .where(HANDLED.c.report_id.is_not(None) if handled else HANDLED.c.report_id.is_(None))
            .order_by(REPORT.c.id.desc())
            .limit(INBOX)
        ).all()
        serials = {r.serial for r in rows}
        scans = {
            serial: (int(networks), int(days or 0), last)
            for serial, networks, days, last in conn.execute(
                select(
                    NETWORK.c.serial,
                    func.count(),
                    func.sum(NETWORK.c.days),
                    func.max(NETWORK.c.last_day),
                )
                .where(NETWORK.c.serial.in_(serials))
                .group_by(NETWORK.c.serial)
            ).all()
        }
    return [{**r._mapping, "scans": scans.get(r.serial, (0, 0, None))} for r in rows]


async def dashboard(request: Request, who: Staff) -> Response:
    return await reports_page(request)


@router.get("/reports")
async def reports_page(request: Request) -> Response:
    who = await staff(request, "inspector")
    return await run_in_threadpool(_reports_page, request, who, {}, 200)


def _reports_page(request: Request, who: Staff, errors: dict[str, str], status: int) -> Response:
    engine = request.app.state.service.engine
    return render(
        request,
        who.lang,
        "app/reports.html",
        who,
        status,
        open_reports=_inbox(engine, False),
        handled=_inbox(engine, True),
        errors=errors,
        done=request.query_params.get("done") == "handled",
    )


@router.get("/reports/{report_id}/photo")
async def report_photo(request: Request, report_id: int) -> Response:
    await staff(request, "inspector")
    with request.app.state.service.engine.connect() as conn:
        row = conn.execute(
            select(REPORT.c.photo, REPORT.c.photo_type).where(REPORT.c.id == report_id)
        ).first()
    if row is None or not row.photo:
        raise NotFound(f"report {report_id} has no photo")
    return Response(row.photo, media_type=row.photo_type, headers={"Cache-Control": "no-store"})


@router.post("/reports/{report_id}/handled")
async def mark_handled(request: Request, report_id: int) -> Response:
    who = await staff(request, "inspector")
    form = await read_form(request)
    return await run_in_threadpool(_mark_handled, request, who, report_id, form)


def _mark_handled(request: Request, who: Staff, report_id: int, form: Form) -> Response:
    lang = who.lang
    note = form.get("note")
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if not 3 <= len(note) <= 2000:
        errors[f"note-{report_id}"] = i18n.t(lang, "app.error.length", min=3, max=2000)
    if not errors:
        try:
            reports.mark_handled(
                request.app.state.service.engine, report_id, who.principal.username, note
            )
        except ServiceError as exc:
            if exc.status == 409:  # sent twice: the first one did it
                return go("/app/reports?done=handled")
            errors[FORM] = i18n.t(lang, "app.error.not_found")
        else:
            return go("/app/reports?done=handled")
    return _reports_page(request, who, errors, 422)


# -- inspections --------------------------------------------------------------------------
@router.get("/inspections/new")
async def inspection_page(request: Request) -> Response:
    who = await staff(request, "inspector")
    values = {"batch": request.query_params.get("batch", "")[:64], "result": "pass"}
    return _inspection_form(request, who, values, {}, new_key())


def _inspection_form(
    request: Request,
    who: Staff,
    values: dict[str, str],
    errors: dict[str, str],
    key: str,
    status: int = 200,
) -> Response:
    results = [(r, f"inspection.result.{r}") for r in InspectionCreate.RESULTS]
    return render(
        request,
        who.lang,
        "app/inspection.html",
        who,
        status,
        values=values,
        errors=errors,
        idem=key,
        results=results,
    )


@router.post("/inspections/new")
async def record_inspection(request: Request) -> Response:
    who = await staff(request, "inspector")
    form = await read_form(request)
    return await run_in_threadpool(_record_inspection, request, who, form)


def _batch_named(conn: Any, text: str) -> str | None:
    """A batch by its id, or by the code of one of its labels (typed or its link)."""
    found = conn.execute(select(BATCH.c.id).where(BATCH.c.id == text)).scalar()
    if found is not None:
        return str(found)
    path = scan_path(text) or ""
    if path.startswith("/l/"):
        return batch_of_serial(conn, path.removeprefix("/l/"))
    return None


def _record_inspection(request: Request, who: Staff, form: Form) -> Response:
    """An inspection.recorded statement signed with the inspector's own key; the batch's
    scan page shows it."""
    lang, service = who.lang, request.app.state.service
    values = {n: form.get(n) for n in ("batch", "result", "findings")}
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    with service.engine.connect() as conn:
        batch_id = _batch_named(conn, values["batch"][:500]) if values["batch"] else None
    if not values["batch"]:
        errors["batch"] = i18n.t(lang, "app.error.required")
    elif batch_id is None:
        errors["batch"] = i18n.t(lang, "app.inspection.no_batch")
    if values["result"] not in InspectionCreate.RESULTS:
        errors["result"] = i18n.t(lang, "app.error.choice")
    if not errors and batch_id is not None:
        try:
            data = InspectionCreate(
                batch_id=batch_id, result=values["result"], findings=values["findings"]
            )
        except ValidationError as exc:
            errors.update(validation_errors(lang, exc, {"batch_id": "batch"}))
        else:

            def run() -> str:
                service.record_inspection(who.principal, data)
                return f"/b/{batch_id}?lang={lang}"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                errors.update(service_errors(lang, exc, {"batch_id": "batch"}))
    return _inspection_form(request, who, values, errors, form.key or new_key(), 422)


# -- checking a label ---------------------------------------------------------------------
@router.get("/check")
async def check_page(request: Request) -> Response:
    who = await staff(request, "inspector")
    return render(request, who.lang, "app/check.html", who, values={}, errors={})


@router.post("/check")
async def check(request: Request) -> Response:
    """A typed code or a photo of the QR, decoded here, opens the label's own page: the
    verdict and its evidence, as the ledger proves them (site/scan.py)."""
    who = await staff(request, "inspector")
    form = await read_form(request)
    lang, code = who.lang, form.get("code")[:500]
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    photo = form.files.get("photo")
    if not errors and not code and photo is not None and getattr(photo, "filename", None):
        data = await photo.read(photos.MAX_BYTES + 1)
        if len(data) > photos.MAX_BYTES:
            errors["photo"] = i18n.t(lang, "photo.too_large", mb=photos.MAX_BYTES // 2**20)
        else:
            decoded = await run_in_threadpool(decode_qr, data)
            if decoded is None:
                errors["photo"] = i18n.t(lang, "app.check.no_code")
            code = decoded or ""
    if not errors and not code:
        errors["code"] = i18n.t(lang, "app.check.empty")
    if not errors:
        target = scan_path(code)
        if target is not None:
            return go(f"{target}{'&' if '?' in target else '?'}lang={lang}")
        errors["code"] = i18n.t(lang, "app.check.unreadable")
    return render(request, lang, "app/check.html", who, 422, values={"code": code}, errors=errors)


def decode_qr(data: bytes) -> str | None:
    """The text of the first QR code in a photo (zxing-cpp), or None."""
    from io import BytesIO

    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data)) as image:
            image.load()
            found = zxingcpp.read_barcodes(image.convert("L"))
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return next((str(b.text) for b in found if b.text), None)


def scan_path(code: str) -> str | None:
    """Where a printed code or a label's link is checked: its path on this service."""
    code = code.strip()
    if code.startswith(("http://", "https://")):
        parts = urlsplit(code)
        if parts.path.startswith(("/l/", "/01/", "/b/")):
            return parts.path + (f"?{parts.query}" if parts.query else "")
        return None
    compact = code.replace(" ", "").replace("-", "")
    for parse in (parse_canonical, parse_human):
        try:
            return f"/l/{parse(compact).canonical}"
        except SerialError:
            continue
    try:
        return f"/l/{parse_human(code).canonical}"
    except SerialError:
        return None


# -- audit --------------------------------------------------------------------------------
@router.get("/audit")
async def audit(request: Request) -> Response:
    who = await staff(request, "inspector", "council")
    store = request.app.state.service.store
    size = await run_in_threadpool(store.size)
    note = request.app.state.witnessing.served()
    base = request.app.state.settings.public_url.rstrip("/")
    return render(
        request, who.lang, "app/audit.html", who, size=size, checkpoint=note or "", base=base
    )


@router.get("/audit/bundle.jsonl")
async def bundle(request: Request) -> Response:
    await staff(request, "inspector", "council")
    store = request.app.state.service.store
    folder = Path(tempfile.mkdtemp(prefix="ocop-bundle-"))
    path = folder / "ledger-bundle.jsonl"
    await run_in_threadpool(export_bundle, store, path)

    def clean() -> None:
        path.unlink(missing_ok=True)
        folder.rmdir()

    return FileResponse(
        path,
        media_type="application/x-ndjson",
        filename="ledger-bundle.jsonl",
        background=BackgroundTask(clean),
    )


@router.post("/audit/verify")
async def start_verification(request: Request) -> Response:
    who = await staff(request, "inspector", "council")
    form = await read_form(request)
    if form.fresh:
        request.app.state.verifications.start(who.principal.username)
    return go("/app/audit/verify")


@router.get("/audit/verify")
async def verification(request: Request) -> Response:
    who = await staff(request, "inspector", "council")
    run = request.app.state.verifications.latest
    return render(request, who.lang, "app/verification.html", who, run=run)
