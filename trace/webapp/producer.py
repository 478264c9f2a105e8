"""The producer's screens: its dashboard, batches (register, events, recall) and labels
(issue, reprint, void a misprinted set)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from io import BytesIO
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import Connection, func, select

from ocop_trace import i18n, labels
from ocop_trace.errors import NotFound, ServiceError
from ocop_trace.models import (
    BATCH,
    BATCH_INPUT,
    EVENT,
    LABEL_SERIAL,
    LABEL_SET,
    MAX_RECALL_REASON,
    MAX_VOID_REASON,
    PRODUCT,
    BatchCreate,
    EventCreate,
    LabelIssue,
)
from ocop_trace.ocop import today_in_vietnam
from ocop_trace.reads import current_rating
from ocop_trace.reports import HANDLED, REPORT
from ocop_trace.scans import NETWORK
from ocop_trace.webapp import charts
from ocop_trace.webapp.forms import (
    FORM,
    STEP_WORDS,
    UNIT_WORDS,
    FormError,
    local_input,
    parse_day,
    parse_int,
    parse_local_time,
    service_errors,
    validation_errors,
)
from ocop_trace.webapp.session import Form, Staff, go, new_key, once, read_form, render, staff

router = APIRouter(prefix="/app", include_in_schema=False)
RECENT = 10
MAX_INPUT_CHOICES = 50
# Label stocks: the sheet each one is, as LabelIssue and labels.render_pdf_sheet take it.
STOCKS: dict[str, dict[str, Any]] = {
    "a4-3x7": {"label_width_mm": 63.5, "label_height_mm": 38.1, "columns": 3, "rows": 7},
    "a4-2x5": {
        "label_width_mm": 97.0,
        "label_height_mm": 57.0,
        "columns": 2,
        "rows": 5,
        "qr_mm": 40.0,
    },
    "roll-50x30": {
        "label_width_mm": 50.0,
        "label_height_mm": 30.0,
        "columns": 1,
        "rows": 1,
        "qr_mm": 21.0,
    },
}
STOCK_WORDS = {
    "a4-3x7": i18n.N_("app.stock.a4-3x7"),
    "a4-2x5": i18n.N_("app.stock.a4-2x5"),
    "roll-50x30": i18n.N_("app.stock.roll-50x30"),
}
ROLL_PAGES = {"roll-50x30": (50.0, 30.0)}
# What the batch page says after a form, by the `done` it is sent with.
DONE = {
    "registered": i18n.N_("app.done.registered"),
    "event": i18n.N_("app.done.event"),
    "recalled": i18n.N_("app.done.recalled"),
}


def _own_batch(conn: Connection, who: Staff, batch_id: str) -> Any:
    """The batch, if it is this producer's: another's is not found (not even its name)."""
    row = conn.execute(
        select(BATCH).where(
            BATCH.c.id == batch_id, BATCH.c.producer_id == who.principal.producer_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no batch {batch_id!r} of yours")
    return row


# -- dashboard ----------------------------------------------------------------------------
def dashboard_facts(engine: Any, producer_id: str) -> dict[str, Any]:
    """Its products with their rating, recent batches, open reports and 30 days of scans."""
    today = today_in_vietnam()
    with engine.connect() as conn:
        products = conn.execute(
            select(PRODUCT).where(PRODUCT.c.producer_id == producer_id).order_by(PRODUCT.c.name_vi)
        ).all()
        rated = [(p, current_rating(conn, p.id, today)) for p in products]
        batches = conn.execute(
            select(BATCH, PRODUCT.c.name_vi)
            .join(PRODUCT, PRODUCT.c.id == BATCH.c.product_id)
            .where(BATCH.c.producer_id == producer_id)
            .order_by(BATCH.c.entry_index.desc())
            .limit(RECENT)
        ).all()
        # From the open reports (a few) to their batches, never from a big producer's
        # batches to their serials: MATERIALIZED keeps the planner to that order.
        open_reports = (
            select(REPORT.c.id, REPORT.c.serial, REPORT.c.created_at)
            .outerjoin(HANDLED, HANDLED.c.report_id == REPORT.c.id)
            .where(HANDLED.c.report_id.is_(None))
            .cte("open_reports")
            .prefix_with("MATERIALIZED")
        )
        reports = conn.execute(
            select(
                open_reports.c.id,
                open_reports.c.serial,
                open_reports.c.created_at,
                BATCH.c.id.label("batch"),
            )
            .join(LABEL_SERIAL, LABEL_SERIAL.c.serial == open_reports.c.serial)
            .join(BATCH, BATCH.c.id == LABEL_SERIAL.c.batch_id)
            .where(BATCH.c.producer_id == producer_id)
            .order_by(open_reports.c.id.desc())
            .limit(RECENT)
        ).all()
        since = (today - timedelta(days=29)).isoformat()
        per_day = conn.execute(
            select(NETWORK.c.first_day, func.count())
            .join(LABEL_SERIAL, LABEL_SERIAL.c.serial == NETWORK.c.serial)
            .join(BATCH, BATCH.c.id == LABEL_SERIAL.c.batch_id)
            # last_day is indexed, and a network first seen since then was last seen since.
            .where(
                BATCH.c.producer_id == producer_id,
                NETWORK.c.last_day >= since,
                NETWORK.c.first_day >= since,
            )
            .group_by(NETWORK.c.first_day)
        ).all()
    counts = {day: int(n) for day, n in per_day}
    days = [(today - timedelta(days=29 - i)).isoformat() for i in range(30)]
    return {
        "products": rated,
        "batches": batches,
        "reports": reports,
        "scans": [(d, counts.get(d, 0)) for d in days],
    }


async def dashboard(request: Request, who: Staff) -> Response:
    engine = request.app.state.service.engine
    facts = await run_in_threadpool(dashboard_facts, engine, who.principal.producer_id)
    chart = charts.bars(facts["scans"], who.lang)
    return render(request, who.lang, "app/producer_home.html", who, chart=chart, **facts)


# -- batches ------------------------------------------------------------------------------
PAGE = 50


@router.get("/batches")
async def batches(request: Request) -> Response:
    who = await staff(request, "producer")
    page = request.query_params.get("page", "1")
    number = int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1
    return await run_in_threadpool(_batches, request, who, number)


def _batches(request: Request, who: Staff, number: int) -> Response:
    """All its batches, newest first, a page at a time."""
    producer_id = who.principal.producer_id
    with request.app.state.service.engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(BATCH).where(BATCH.c.producer_id == producer_id)
        ).scalar_one()
        rows = conn.execute(
            select(BATCH, PRODUCT.c.name_vi)
            .join(PRODUCT, PRODUCT.c.id == BATCH.c.product_id)
            .where(BATCH.c.producer_id == producer_id)
            .order_by(BATCH.c.entry_index.desc())
            .limit(PAGE)
            .offset((number - 1) * PAGE)
        ).all()
    return render(
        request,
        who.lang,
        "app/batches.html",
        who,
        batches=rows,
        page=number,
        more=number * PAGE < total,
        total=total,
    )


def _batch_choices(engine: Any, producer_id: str) -> tuple[list[Any], list[Any]]:
    """Its products, and the batches it may name as inputs (its own, not recalled)."""
    with engine.connect() as conn:
        products = conn.execute(
            select(PRODUCT.c.id, PRODUCT.c.name_vi)
            .where(PRODUCT.c.producer_id == producer_id)
            .order_by(PRODUCT.c.name_vi)
        ).all()
        inputs = conn.execute(
            select(BATCH.c.id, BATCH.c.lot, PRODUCT.c.name_vi)
            .join(PRODUCT, PRODUCT.c.id == BATCH.c.product_id)
            .where(BATCH.c.producer_id == producer_id, BATCH.c.recalled_index.is_(None))
            .order_by(BATCH.c.entry_index.desc())
            .limit(MAX_INPUT_CHOICES)
        ).all()
    return list(products), list(inputs)


def _batch_form(
    request: Request,
    who: Staff,
    values: dict[str, Any],
    errors: dict[str, str],
    key: str,
    status: int = 200,
) -> Response:
    products, inputs = _batch_choices(request.app.state.service.engine, who.principal.producer_id)
    return render(
        request,
        who.lang,
        "app/batch_form.html",
        who,
        status,
        values=values,
        errors=errors,
        idem=key,
        products=products,
        inputs=inputs,
        units=UNIT_WORDS,
    )


@router.get("/batches/new")
async def new_batch(request: Request) -> Response:
    who = await staff(request, "producer")
    values = {"produced_on": today_in_vietnam().isoformat(), "unit": "kg", "inputs": []}
    return await run_in_threadpool(_batch_form, request, who, values, {}, new_key())


@router.post("/batches/new")
async def register_batch(request: Request) -> Response:
    who = await staff(request, "producer")
    form = await read_form(request)
    return await run_in_threadpool(_register_batch, request, who, form)


def _register_batch(request: Request, who: Staff, form: Form) -> Response:
    lang, service = who.lang, request.app.state.service
    values: dict[str, Any] = {n: form.get(n) for n in _BATCH_FIELDS}
    values["inputs"] = form.lists.get("inputs", [])
    errors: dict[str, str] = {}
    products, choices = _batch_choices(service.engine, who.principal.producer_id)
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if values["product_id"] not in {p.id for p in products}:
        errors["product_id"] = i18n.t(lang, "app.error.choice")
    if values["unit"] not in UNIT_WORDS:
        errors["unit"] = i18n.t(lang, "app.error.choice")
    if not set(values["inputs"]) <= {c.id for c in choices}:
        errors["inputs"] = i18n.t(lang, "app.error.choice")
    parsed: dict[str, Any] = {}
    for name, parse in (
        ("produced_on", lambda v: parse_day(v, lang, "produced_on")),
        ("expires_on", lambda v: parse_day(v, lang, "expires_on", required=False)),
        ("quantity", lambda v: parse_int(v, lang, "quantity")),
    ):
        try:
            parsed[name] = parse(values[name])
        except FormError as exc:
            errors.update(exc.errors)
    late = not errors and parsed["expires_on"] and parsed["expires_on"] < parsed["produced_on"]
    if late:
        errors["expires_on"] = i18n.t(lang, "app.batch.expires_before")
    data = None
    if not errors:
        batch_id = f"{who.principal.producer_id[:30]}-{secrets.token_hex(4)}"
        try:
            data = BatchCreate(
                id=batch_id,
                product_id=values["product_id"],
                lot=values["lot"],
                produced_on=parsed["produced_on"],
                expires_on=parsed["expires_on"],
                quantity=parsed["quantity"],
                unit=values["unit"],
                origin=values["origin"],
                notes=values["notes"],
                inputs=values["inputs"],
            )
        except ValidationError as exc:
            errors.update(validation_errors(lang, exc))
    if data is not None and not errors:
        made = data

        def run() -> str:
            service.register_batch(who.principal, made)
            return f"/app/batches/{made.id}?done=registered"

        try:
            return go(once(request, who, form, run))
        except ServiceError as exc:
            errors.update(service_errors(lang, exc, {n: n for n in _BATCH_FIELDS}))
    return _batch_form(request, who, values, errors, form.key or new_key(), 422)


_BATCH_FIELDS = (
    "product_id",
    "lot",
    "produced_on",
    "expires_on",
    "quantity",
    "unit",
    "origin",
    "notes",
    "inputs",
)


def _downstream(conn: Connection, batch_id: str, limit: int = 200) -> list[str]:
    """Every batch made from this one, however indirectly (what its recall flags)."""
    found: list[str] = []
    frontier = [batch_id]
    while frontier and len(found) < limit:
        made = conn.execute(
            select(BATCH_INPUT.c.batch_id).where(BATCH_INPUT.c.input_id.in_(frontier))
        ).scalars()
        frontier = [b for b in made if b not in found and b != batch_id]
        found.extend(frontier)
    return found


def _batch_page(
    request: Request, who: Staff, batch_id: str, errors: dict[str, str], status: int = 200
) -> Response:
    with request.app.state.service.engine.connect() as conn:
        batch = _own_batch(conn, who, batch_id)
        product = conn.execute(select(PRODUCT).where(PRODUCT.c.id == batch.product_id)).one()
        events = conn.execute(
            select(EVENT).where(EVENT.c.batch_id == batch_id).order_by(EVENT.c.at, EVENT.c.id)
        ).all()
        sets = conn.execute(
            select(LABEL_SET).where(LABEL_SET.c.batch_id == batch_id).order_by(LABEL_SET.c.id)
        ).all()
        inputs = conn.execute(
            select(BATCH_INPUT.c.input_id).where(BATCH_INPUT.c.batch_id == batch_id)
        ).scalars()
        inputs = list(inputs)
    values = {
        "at": local_input(_now()),
        "biz_step": "packing",
        "count": "21",
        "stock": "a4-3x7",
        "unit": "",
    }
    return render(
        request,
        who.lang,
        "app/batch.html",
        who,
        status,
        batch=batch,
        product=product,
        events=events,
        sets=sets,
        inputs=inputs,
        steps=STEP_WORDS,
        units=UNIT_WORDS,
        stocks=STOCK_WORDS,
        values={**values, **request.query_params},
        errors=errors,
        event_key=new_key(),
        labels_key=new_key(),
        done=DONE.get(request.query_params.get("done", ""), ""),
    )


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@router.get("/batches/{batch_id}")
async def batch_page(request: Request, batch_id: str) -> Response:
    who = await staff(request, "producer")
    return await run_in_threadpool(_batch_page, request, who, batch_id[:64], {})


@router.post("/batches/{batch_id}/events")
async def add_event(request: Request, batch_id: str) -> Response:
    who = await staff(request, "producer")
    form = await read_form(request)
    return await run_in_threadpool(_add_event, request, who, batch_id[:64], form)


def _add_event(request: Request, who: Staff, batch_id: str, form: Form) -> Response:
    lang, service = who.lang, request.app.state.service
    with service.engine.connect() as conn:
        _own_batch(conn, who, batch_id)
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if form.get("biz_step") not in STEP_WORDS:
        errors["biz_step"] = i18n.t(lang, "app.error.choice")
    at = ""
    try:
        at = parse_local_time(form.get("at"), lang, "at")
    except FormError as exc:
        errors.update(exc.errors)
    if not errors and at > _now().strftime("%Y-%m-%dT%H:%M:%SZ"):
        errors["at"] = i18n.t(lang, "app.event.future")
    if not errors:
        try:
            data = EventCreate(
                biz_step=form.get("biz_step"), at=at, place=form.get("place"), note=form.get("note")
            )
        except ValidationError as exc:
            errors.update(validation_errors(lang, exc))
        else:

            def run() -> str:
                service.add_event(who.principal, batch_id, data)
                return f"/app/batches/{batch_id}?done=event"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                errors.update(service_errors(lang, exc, {"at": "at", "biz_step": "biz_step"}))
    page = _batch_page(request, who, batch_id, {f"event_{k}": v for k, v in errors.items()}, 422)
    return page


@router.get("/batches/{batch_id}/recall")
async def recall_page(request: Request, batch_id: str) -> Response:
    who = await staff(request, "producer")
    return await run_in_threadpool(_recall, request, who, batch_id[:64], None)


@router.post("/batches/{batch_id}/recall")
async def recall(request: Request, batch_id: str) -> Response:
    who = await staff(request, "producer")
    form = await read_form(request)
    return await run_in_threadpool(_recall, request, who, batch_id[:64], form)


def _recall(request: Request, who: Staff, batch_id: str, form: Form | None) -> Response:
    """Reason first; then a confirmation listing what the recall flags; then the recall."""
    lang, service = who.lang, request.app.state.service
    with service.engine.connect() as conn:
        batch = _own_batch(conn, who, batch_id)
        downstream = _downstream(conn, batch_id)
    reason = form.get("reason") if form else ""
    errors = _reason_errors(lang, form, reason, MAX_RECALL_REASON) if form is not None else {}
    confirming = False
    if form is not None:
        if not errors and form.get("confirm") == "yes":

            def run() -> str:
                service.recall(who.principal, batch_id, reason)
                return f"/app/batches/{batch_id}?done=recalled"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                errors.update(service_errors(lang, exc, {"reason": "reason"}))
        confirming = not errors
    return render(
        request,
        lang,
        "app/recall.html",
        who,
        422 if errors else 200,
        batch=batch,
        downstream=downstream,
        values={"reason": reason},
        errors=errors,
        confirming=confirming,
        idem=(form.key if form and form.key else new_key()),
    )


# -- labels -------------------------------------------------------------------------------
@router.post("/batches/{batch_id}/labels")
async def issue_labels(request: Request, batch_id: str) -> Response:
    who = await staff(request, "producer")
    form = await read_form(request)
    return await run_in_threadpool(_issue_labels, request, who, batch_id[:64], form)


def _issue_labels(request: Request, who: Staff, batch_id: str, form: Form) -> Response:
    lang, service = who.lang, request.app.state.service
    with service.engine.connect() as conn:
        _own_batch(conn, who, batch_id)
    errors: dict[str, str] = {}
    stock = form.get("stock")
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if stock not in STOCKS:
        errors["stock"] = i18n.t(lang, "app.error.choice")
    count = 0
    try:
        count = parse_int(form.get("count"), lang, "count")
    except FormError as exc:
        errors.update(exc.errors)
    if not errors:
        try:
            request_ = LabelIssue(count=count, **STOCKS[stock])
        except ValidationError as exc:
            errors.update(validation_errors(lang, exc))
        else:
            public_url = request.app.state.settings.public_url

            def run() -> str:
                issued = service.issue_labels(who.principal, batch_id, request_, public_url)
                return f"/app/labels/{issued.receipt.index}?stock={stock}"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                errors.update(service_errors(lang, exc, {"count": "count"}))
    page = _batch_page(request, who, batch_id, {f"labels_{k}": v for k, v in errors.items()}, 422)
    return page


def _stock(request: Request) -> str:
    stock = request.query_params.get("stock", "a4-3x7")
    return stock if stock in STOCKS else "a4-3x7"


@router.get("/labels/{set_id}")
async def label_set(request: Request, set_id: int) -> Response:
    who = await staff(request, "producer")
    return await run_in_threadpool(_label_set, request, who, set_id)


def _own_set(conn: Connection, who: Staff, set_id: int) -> Any:
    """The label set, if its batch is this producer's: another's is not found."""
    row = conn.execute(
        select(LABEL_SET)
        .join(BATCH, BATCH.c.id == LABEL_SET.c.batch_id)
        .where(LABEL_SET.c.id == set_id, BATCH.c.producer_id == who.principal.producer_id)
    ).first()
    if row is None:
        raise NotFound(f"no label set {set_id} of yours")
    return row


def _label_set(request: Request, who: Staff, set_id: int) -> Response:
    service = request.app.state.service
    with service.engine.connect() as conn:
        found = _own_set(conn, who, set_id)
    shown: dict[str, Any] = {"first": None, "preview": ""}
    if found.voided_index is None:  # a voided set's codes are not offered for printing
        sheet = service.reprint_labels(who.principal, set_id, request.app.state.settings.public_url)
        shown["first"] = sheet[0]
        shown["preview"] = Markup(labels.render_svg(sheet[0].url))  # noqa: S704  (our own SVG)
    return render(
        request,
        who.lang,
        "app/label_set.html",
        who,
        set_id=set_id,
        batch_id=found.batch_id,
        count=found.count,
        label_set=found,
        voided_at=i18n.moment(found.voided_at, who.lang) if found.voided_at else "",
        stock=_stock(request),
        stocks=STOCK_WORDS,
        values={"reason": ""},
        errors={},
        void_key=new_key(),
        done=request.query_params.get("done") == "voided",
        **shown,
    )


@router.get("/labels/{set_id}/void")
async def void_page(request: Request, set_id: int) -> Response:
    who = await staff(request, "producer")
    return await run_in_threadpool(_void, request, who, set_id, None)


@router.post("/labels/{set_id}/void")
async def void_labels(request: Request, set_id: int) -> Response:
    who = await staff(request, "producer")
    form = await read_form(request)
    return await run_in_threadpool(_void, request, who, set_id, form)


def _reason_errors(lang: str, form: Form, reason: str, longest: int) -> dict[str, str]:
    """A recall's or a void's form: still fresh, and a reason of 3 to `longest` characters."""
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if len(reason) < 3:
        errors["reason"] = i18n.t(lang, "app.error.too_short", min=3, max="", rule="")
    elif len(reason) > longest:
        errors["reason"] = i18n.t(lang, "app.error.too_long", min="", max=longest, rule="")
    return errors


def _void(request: Request, who: Staff, set_id: int, form: Form | None) -> Response:
    """Reason first; then a confirmation that the set's N codes stop being valid; then the
    labels.voided entry (the same use case as the API's)."""
    lang, service = who.lang, request.app.state.service
    with service.engine.connect() as conn:
        found = _own_set(conn, who, set_id)
    reason = form.get("reason") if form else ""
    errors = _reason_errors(lang, form, reason, MAX_VOID_REASON) if form is not None else {}
    confirming = False
    if form is not None:
        if not errors and form.get("confirm") == "yes":

            def run() -> str:
                service.void_labels(who.principal, set_id, reason)
                return f"/app/labels/{set_id}?done=voided"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                errors.update(service_errors(lang, exc, {"reason": "reason"}))
        elif not errors and form.get("step") == "confirm":  # the confirmation, not ticked
            errors["confirm"] = i18n.t(lang, "app.void.confirm_required")
        confirming = not errors or list(errors) == ["confirm"]
    return render(
        request,
        lang,
        "app/label_void.html",
        who,
        422 if errors else 200,
        label_set=found,
        values={"reason": reason},
        errors=errors,
        confirming=confirming,
        idem=(form.key if form and form.key else new_key()),
    )


@router.get("/labels/{set_id}/labels.pdf")
async def label_pdf(request: Request, set_id: int) -> Response:
    who = await staff(request, "producer")
    return await run_in_threadpool(_label_pdf, request, who, set_id)


def _label_pdf(request: Request, who: Staff, set_id: int) -> Response:
    """The set's labels again, on the chosen stock: the same serials, nothing issued."""
    service, stock = request.app.state.service, _stock(request)
    sheet = service.reprint_labels(who.principal, set_id, request.app.state.settings.public_url)
    layout = LabelIssue(count=len(sheet), **STOCKS[stock]).layout()
    out = BytesIO()
    labels.render_pdf_sheet(sheet, out, **layout, page_mm=ROLL_PAGES.get(stock))
    headers = {"Content-Disposition": f'attachment; filename="labels-{set_id}-{stock}.pdf"'}
    return Response(out.getvalue(), media_type="application/pdf", headers=headers)
