"""The council's spreadsheet upload: a dry run, or an all-or-none import (catalogue_import.py)."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ocop_trace import i18n
from ocop_trace.catalogue_import import Plan, apply_import, plan_import
from ocop_trace.errors import PayloadTooLarge, ServiceError
from ocop_trace.import_messages import message
from ocop_trace.sheets import MAX_BYTES, SheetError
from ocop_trace.webapp.forms import FORM, service_errors
from ocop_trace.webapp.session import Form, Staff, go, new_key, once, read_form, render, staff

router = APIRouter(prefix="/app", include_in_schema=False)
PAGE = "/app/council/import"


def _page(
    request: Request,
    who: Staff,
    errors: dict[str, str],
    key: str,
    plan: Plan | None = None,
    rows: list[dict[str, Any]] | None = None,
    apply: bool = False,
    status: int = 200,
) -> Response:
    appended = request.query_params.get("appended", "")
    return render(
        request,
        who.lang,
        "app/import.html",
        who,
        status,
        errors=errors,
        idem=key,
        plan=plan,
        rows=rows or [],
        apply=apply,
        appended=int(appended) if appended.isdigit() and len(appended) < 7 else None,
    )


@router.get("/council/import")
async def import_page(request: Request) -> Response:
    who = await staff(request, "council")
    return _page(request, who, {}, new_key())


@router.post("/council/import")
async def import_sheet(request: Request) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    errors: dict[str, str] = {}
    data, filename = b"", ""
    upload = form.files.get("file")
    if not form.fresh:
        errors[FORM] = i18n.t(who.lang, "app.error.expired")
    elif upload is None or not getattr(upload, "filename", None):
        errors["file"] = i18n.t(who.lang, "app.import.no_file")
    else:
        filename = str(upload.filename)
        data = await upload.read(MAX_BYTES + 1)
    if errors:
        return _page(request, who, errors, form.key or new_key(), status=422)
    return await run_in_threadpool(_import, request, who, form, filename, data)


def _rows(plan: Plan, lang: str) -> list[dict[str, Any]]:
    """Each error in the user's language."""
    return [
        {"sheet": e.sheet, "row": e.row, "column": e.column, "reason": _words(e, lang)}
        for e in plan.errors
    ]


def _words(error: Any, lang: str) -> str:
    return str(error.vi if lang == "vi" else error.en)


def _import(request: Request, who: Staff, form: Form, filename: str, data: bytes) -> Response:
    lang, service = who.lang, request.app.state.service
    apply = form.get("apply") == "yes"
    try:
        plan = plan_import(service, filename, data)  # the same reading as the API's
    except SheetError as exc:
        return _page(request, who, {"file": exc.text[lang]}, form.key, status=422)
    except PayloadTooLarge:
        words = message("too_large", limit=MAX_BYTES)[lang]
        return _page(request, who, {"file": words}, form.key, status=422)
    if not apply or not plan.ok:
        status = 200 if plan.ok else 422
        return _page(request, who, {}, form.key, plan, _rows(plan, lang), apply, status)
    # The file is part of what the key stands for: another file under it is a conflict.
    form.lists["file_sha256"] = [hashlib.sha256(data).hexdigest()]

    def run() -> str:
        receipts = apply_import(service, who.principal, plan)
        return f"{PAGE}?appended={sum(1 for r in receipts if not r.duplicate)}"

    try:
        return go(once(request, who, form, run))
    except ServiceError as exc:
        rows = [{**e, "reason": e.get(lang, "")} for e in (exc.details or {}).get("errors", [])]
        errors = {} if rows else service_errors(lang, exc, {})
        return _page(request, who, errors, new_key(), plan, rows, apply, 422)
