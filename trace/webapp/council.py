"""The council's screens: ratings (record, revoke), producers and products, and users."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import func, select

from ocop_trace import i18n, ocop, photo_store, photos, text
from ocop_trace.accounts import USER
from ocop_trace.errors import NotFound, ServiceError
from ocop_trace.models import (
    PRODUCER,
    PRODUCT,
    RATING,
    ProducerChanges,
    ProducerCreate,
    ProductChanges,
    ProductCreate,
    RatingCreate,
)
from ocop_trace.reads import current_rating, history
from ocop_trace.text import slug
from ocop_trace.webapp import charts
from ocop_trace.webapp.forms import (
    FORM,
    LEVEL_WORDS,
    FormError,
    clean_photo,
    parse_day,
    parse_int,
    parse_points,
    photo_upload,
    service_errors,
    validation_errors,
)
from ocop_trace.webapp.session import Form, Staff, go, new_key, once, read_form, render, staff

router = APIRouter(prefix="/app", include_in_schema=False)
EXPIRING_DAYS = 90
DONE = {
    "rating": i18n.N_("app.done.rating"),
    "revoked": i18n.N_("app.done.revoked"),
    "corrected": i18n.N_("app.done.corrected"),
    "producer": i18n.N_("app.done.producer"),
    "product": i18n.N_("app.done.product"),
    "updated": i18n.N_("app.done.updated"),
    "disabled": i18n.N_("app.done.disabled"),
    "key": i18n.N_("app.done.key"),
}
ROLE_WORDS = (i18n.N_("app.role.council"),)  # the users table names each role


# -- dashboard ----------------------------------------------------------------------------
def _dashboard_facts(engine: Any) -> dict[str, Any]:
    today = ocop.today_in_vietnam()
    soon = (today + timedelta(days=EXPIRING_DAYS)).isoformat()
    with engine.connect() as conn:
        products = conn.execute(
            select(PRODUCT.c.id, PRODUCT.c.sector, PRODUCER.c.current_commune).join(
                PRODUCER, PRODUCER.c.id == PRODUCT.c.producer_id
            )
        ).all()
        communes: dict[str, int] = {}
        bands: dict[int, int] = dict.fromkeys(range(0, 6), 0)
        sectors: dict[str, int] = {}
        for product in products:
            rating = current_rating(conn, product.id, today)
            stars = rating.stars if rating is not None and rating.current else 0
            bands[stars] += 1
            sectors[product.sector] = sectors.get(product.sector, 0) + 1
            commune = product.current_commune or "–"
            communes[commune] = communes.get(commune, 0) + 1
        expiring = conn.execute(
            select(RATING, PRODUCT.c.name_vi)
            .join(PRODUCT, PRODUCT.c.id == RATING.c.product_id)
            .where(
                RATING.c.revoked_index.is_(None),
                RATING.c.expires_on >= today.isoformat(),
                RATING.c.expires_on <= soon,
            )
            .order_by(RATING.c.expires_on)
        ).all()
        ratings = conn.execute(
            select(RATING, PRODUCT.c.name_vi)
            .join(PRODUCT, PRODUCT.c.id == RATING.c.product_id)
            .order_by(RATING.c.id.desc())
            .limit(20)
        ).all()
    return {
        "bands": bands,
        "sectors": sectors,
        "communes": communes,
        "expiring": expiring,
        "ratings": ratings,
    }


async def dashboard(request: Request, who: Staff) -> Response:
    facts = await run_in_threadpool(_dashboard_facts, request.app.state.service.engine)
    band_points = [(f"{s}★" if s else "–", n) for s, n in facts["bands"].items()]
    chart = charts.bars(band_points, who.lang, "app.chart.bands")
    sector_points = [
        (i18n.t(who.lang, f"sector.{k}"), n) for k, n in sorted(facts["sectors"].items())
    ]
    sector_chart = charts.bars(sector_points, who.lang, "app.council.sectors")
    commune_points = sorted(facts["communes"].items(), key=lambda kv: -kv[1])[:12]
    commune_chart = charts.bars(commune_points, who.lang, "app.council.communes")
    return render(
        request,
        who.lang,
        "app/council_home.html",
        who,
        chart=chart,
        sector_chart=sector_chart,
        commune_chart=commune_chart,
        done=DONE.get(request.query_params.get("done", ""), ""),
        **facts,
    )


# -- ratings ------------------------------------------------------------------------------
_RATING_FIELDS = (
    "product_id",
    "score",
    "level",
    "issuing_body",
    "decision_no",
    "decision_date",
    "certificate_no",
    "issued_on",
    "evaluation_year",
    "replaces",
    "reason",
)


def _products(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(PRODUCT.c.id, PRODUCT.c.name_vi, PRODUCER.c.name.label("producer"))
                .join(PRODUCER, PRODUCER.c.id == PRODUCT.c.producer_id)
                .order_by(PRODUCT.c.name_vi)
            ).all()
        )


def _rating_form(
    request: Request,
    who: Staff,
    values: dict[str, str],
    errors: dict[str, str],
    key: str,
    derived: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        who.lang,
        "app/rating_form.html",
        who,
        status,
        values=values,
        errors=errors,
        idem=key,
        products=_products(request.app.state.service.engine),
        levels=LEVEL_WORDS,
        derived=derived,
    )


@router.get("/ratings/new")
async def new_rating(request: Request) -> Response:
    who = await staff(request, "council")
    today = ocop.today_in_vietnam()
    values = {
        "product_id": request.query_params.get("product", "")[:64],
        "level": "provincial",
        "decision_date": today.isoformat(),
        "issued_on": today.isoformat(),
        "evaluation_year": str(today.year),
        "replaces": request.query_params.get("replaces", "")[:20],
        "reason": "",
    }
    return await run_in_threadpool(_rating_form, request, who, values, {}, new_key())


@router.post("/ratings/new")
async def record_rating(request: Request) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    return await run_in_threadpool(_record_rating, request, who, form)


def _record_rating(request: Request, who: Staff, form: Form) -> Response:
    """First the computed stars and validity to confirm; then, confirmed, the rating."""
    lang, service = who.lang, request.app.state.service
    values = {n: form.get(n) for n in _RATING_FIELDS}
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if values["level"] not in LEVEL_WORDS:
        errors["level"] = i18n.t(lang, "app.error.choice")
    parsed: dict[str, Any] = {}
    for name, parse in (
        ("score", lambda v: parse_points(v, lang, "score")),
        ("decision_date", lambda v: parse_day(v, lang, "decision_date")),
        ("issued_on", lambda v: parse_day(v, lang, "issued_on")),
        ("evaluation_year", lambda v: parse_int(v, lang, "evaluation_year")),
    ):
        try:
            parsed[name] = parse(values[name])
        except FormError as exc:
            errors.update(exc.errors)
    wrong = None
    if values["replaces"]:  # a correction: the wrong rating is revoked with this one
        try:
            wrong = parse_int(values["replaces"], lang, "reason")
        except FormError as exc:
            errors.update(exc.errors)
        if not 3 <= len(values["reason"]) <= 500:
            errors["reason"] = i18n.t(lang, "app.error.length", min=3, max=500)
    data = None
    if not errors:
        try:
            data = RatingCreate(
                product_id=values["product_id"],
                score_hundredths=parsed["score"],
                level=values["level"],
                issuing_body=values["issuing_body"],
                decision_no=values["decision_no"],
                decision_date=parsed["decision_date"],
                certificate_no=values["certificate_no"],
                issued_on=parsed["issued_on"],
                evaluation_year=parsed["evaluation_year"],
            )
        except ValidationError as exc:
            errors.update(validation_errors(lang, exc, {"score_hundredths": "score"}))
    if data is None or errors:
        return _rating_form(request, who, values, errors, form.key or new_key(), status=422)
    if form.get("confirm") != "yes":
        return _rating_form(request, who, values, {}, form.key or new_key(), data.derived())
    made = data

    def run() -> str:
        if wrong is not None:
            service.correct_rating(who.principal, made, wrong, values["reason"])
            return "/app/?done=corrected"
        service.record_rating(who.principal, made)
        return "/app/?done=rating"

    try:
        return go(once(request, who, form, run))
    except ServiceError as exc:
        errors = service_errors(lang, exc, {n: n for n in _RATING_FIELDS})
    return _rating_form(request, who, values, errors, new_key(), status=422)


@router.get("/ratings/{rating_id}/revoke")
async def revoke_page(request: Request, rating_id: int) -> Response:
    who = await staff(request, "council")
    return await run_in_threadpool(_revoke, request, who, rating_id, None)


@router.post("/ratings/{rating_id}/revoke")
async def revoke(request: Request, rating_id: int) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    return await run_in_threadpool(_revoke, request, who, rating_id, form)


def _revoke(request: Request, who: Staff, rating_id: int, form: Form | None) -> Response:
    lang, service = who.lang, request.app.state.service
    with service.engine.connect() as conn:
        rating = conn.execute(
            select(RATING, PRODUCT.c.name_vi)
            .join(PRODUCT, PRODUCT.c.id == RATING.c.product_id)
            .where(RATING.c.id == rating_id)
        ).first()
    if rating is None:
        raise NotFound(f"no rating {rating_id}")
    errors: dict[str, str] = {}
    reason = form.get("reason") if form else ""
    if form is not None:
        if not form.fresh:
            errors[FORM] = i18n.t(lang, "app.error.expired")
        if not 3 <= len(reason) <= 500:
            errors["reason"] = i18n.t(lang, "app.error.length", min=3, max=500)
        if not errors:

            def run() -> str:
                service.revoke_rating(who.principal, rating_id, reason)
                return "/app/?done=revoked"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                errors = service_errors(lang, exc, {"reason": "reason"})
    return render(
        request,
        lang,
        "app/revoke.html",
        who,
        422 if errors else 200,
        rating=rating,
        values={"reason": reason},
        errors=errors,
        idem=form.key if form and form.key else new_key(),
    )


# -- photos: cleaned on arrival, kept only with the statement that signs them ------------
_IMAGE_FIELDS = {"image_url": "photo", "image_sha256": "photo"}


def _photo_fields(
    request: Request, lang: str, upload: bytes | None, errors: dict[str, str], https: bool
) -> tuple[photos.Photo | None, dict[str, str]]:
    """A chosen photo, cleaned but not yet kept, and the image fields a statement signs
    for it: this service's own address of it and its SHA-256. ({} when none was chosen.)
    `https`: the link must be https (a product's, as its model says; a producer's may not)."""
    if upload is None:
        return None, {}
    try:
        photo = clean_photo(lang, upload)
        address = photo_store.url(request.app.state.settings.public_url, photo.sha256)
        if https:
            text.https_url(address)
    except FormError as exc:
        errors.update(exc.errors)
        return None, {}
    except ValueError:
        errors["photo"] = i18n.t(lang, "app.photo.needs_https")
        return None, {}
    return photo, {"image_url": address, "image_sha256": photo.sha256}


def _signing_photo(form: Form, photo: photos.Photo | None) -> None:
    """The photo's hash joins what the idempotency key guards (a file is not a text field),
    so the same key sent again with another photo is refused, not replayed."""
    if photo is not None:
        form.lists["photo"] = [photo.sha256]


def _keep(request: Request, photo: photos.Photo | None) -> None:
    if photo is not None:
        photo_store.keep(request.app.state.service.engine, photo)


def _photo_change(
    row: Any, form: Form, photo: photos.Photo | None, image: dict[str, str]
) -> dict[str, str]:
    """What an edit changes of the photo: a new one, none (removed), or nothing."""
    if photo is not None:
        return image if photo.sha256 != row.image_sha256 else {}
    if form.get("remove_photo") == "yes" and row.image_url:
        return {"image_url": "", "image_sha256": ""}
    return {}


# -- producers and products ---------------------------------------------------------------
_PRODUCER_FIELDS = ("name", "type", "registration_no", "contact", "province", "commune", "line")
_PRODUCT_FIELDS = ("name_vi", "name_en", "product_set", "gtin", "description")


def _producers_page(
    request: Request,
    who: Staff,
    values: dict[str, str],
    errors: dict[str, str],
    key: str,
    status: int = 200,
) -> Response:
    with request.app.state.service.engine.connect() as conn:
        producers = conn.execute(select(PRODUCER).order_by(PRODUCER.c.name)).all()
        counts = dict(
            conn.execute(
                select(PRODUCT.c.producer_id, func.count()).group_by(PRODUCT.c.producer_id)
            ).all()
        )
    return render(
        request,
        who.lang,
        "app/producers.html",
        who,
        status,
        producers=producers,
        counts=counts,
        values=values,
        errors=errors,
        idem=key,
        types=[t.value for t in ocop.ProducerType],
        photo_mb=photos.MAX_BYTES // 2**20,
        photo_side=photos.MAX_SIDE,
        done=DONE.get(request.query_params.get("done", ""), ""),
    )


@router.get("/producers")
async def producers(request: Request) -> Response:
    who = await staff(request, "council")
    values = {"type": "cooperative"}
    return await run_in_threadpool(_producers_page, request, who, values, {}, new_key())


@router.post("/producers")
async def register_producer(request: Request) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    upload = await photo_upload(form.files)
    return await run_in_threadpool(_register_producer, request, who, form, upload)


def _address(values: dict[str, str]) -> dict[str, str]:
    return {"province": values["province"], "commune": values["commune"], "line": values["line"]}


def _register_producer(request: Request, who: Staff, form: Form, upload: bytes | None) -> Response:
    lang, service = who.lang, request.app.state.service
    values = {n: form.get(n) for n in _PRODUCER_FIELDS}
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    photo, image = _photo_fields(request, lang, upload, errors, https=False)
    producer_id = slug(values["name"])[:50]
    if len(producer_id) < 3:
        errors["name"] = i18n.t(lang, "app.error.too_short", min=3, max="", rule="")
    if not errors:
        try:
            data = ProducerCreate.model_validate(
                {
                    "id": producer_id,
                    "name": values["name"],
                    "type": values["type"],
                    "registration_no": values["registration_no"],
                    "contact": values["contact"],
                    "address_certified": _address(values),
                    "address_current": _address(values),
                    **image,
                }
            )
        except ValidationError as exc:
            fields = {"address_certified": "province", "address_current": "province"}
            errors.update(validation_errors(lang, exc, fields | _IMAGE_FIELDS))
        else:
            _signing_photo(form, photo)

            def run() -> str:
                _keep(request, photo)
                service.register_producer(who.principal, data)
                return f"/app/producers/{producer_id}?done=producer"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                fields = {"id": "name", "name": "name"} | _IMAGE_FIELDS
                errors.update(service_errors(lang, exc, fields))
    return _producers_page(request, who, values, errors, form.key or new_key(), 422)


def _producer_page(
    request: Request,
    who: Staff,
    producer_id: str,
    errors: dict[str, str],
    values: dict[str, str] | None = None,
    status: int = 200,
    typed: dict[str, dict[str, str]] | None = None,
) -> Response:
    """`typed`: what was typed in a product's edit form (by product id), shown again."""
    with request.app.state.service.engine.connect() as conn:
        producer = conn.execute(select(PRODUCER).where(PRODUCER.c.id == producer_id)).first()
        if producer is None:
            raise NotFound(f"no producer {producer_id!r}")
        products = conn.execute(
            select(PRODUCT).where(PRODUCT.c.producer_id == producer_id).order_by(PRODUCT.c.name_vi)
        ).all()
        changes = history(conn, "producer", producer_id)
        product_changes = {p.id: history(conn, "product", p.id) for p in products}
    # One form's typed values over the others' own: a refused product keeps the producer's.
    shown = {
        "name": producer.name,
        "contact": producer.contact,
        "product_set": "food.processed_cereals",
        **(values or {}),
    }
    return render(
        request,
        who.lang,
        "app/producer.html",
        who,
        status,
        producer=producer,
        products=products,
        history=changes,
        product_history=product_changes,
        typed=typed or {},
        photo_mb=photos.MAX_BYTES // 2**20,
        photo_side=photos.MAX_SIDE,
        values=shown,
        errors=errors,
        edit_key=new_key(),
        product_key=new_key(),
        product_sets=list(ocop.PRODUCT_SETS),
        done=DONE.get(request.query_params.get("done", ""), ""),
    )


@router.get("/producers/{producer_id}")
async def producer_page(request: Request, producer_id: str) -> Response:
    who = await staff(request, "council")
    return await run_in_threadpool(_producer_page, request, who, producer_id[:64], {})


@router.post("/producers/{producer_id}")
async def edit_producer(request: Request, producer_id: str) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    upload = await photo_upload(form.files)
    return await run_in_threadpool(_edit_producer, request, who, producer_id[:64], form, upload)


def _edit_producer(
    request: Request, who: Staff, producer_id: str, form: Form, upload: bytes | None
) -> Response:
    """An edit is a producer.updated statement of the fields (or photo) that changed."""
    lang, service = who.lang, request.app.state.service
    with service.engine.connect() as conn:
        row = conn.execute(select(PRODUCER).where(PRODUCER.c.id == producer_id)).first()
    if row is None:
        raise NotFound(f"no producer {producer_id!r}")
    values = {"name": form.get("name"), "contact": form.get("contact")}
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    changed = {k: v for k, v in values.items() if v != getattr(row, k)}
    photo, image = _photo_fields(request, lang, upload, errors, https=False)
    changed |= _photo_change(row, form, photo, image)
    if not changed and not errors:
        errors[FORM] = i18n.t(lang, "app.error.no_change")
    if not errors:
        try:
            data = ProducerChanges.model_validate(changed)
        except ValidationError as exc:
            errors.update(validation_errors(lang, exc, _IMAGE_FIELDS))
        else:
            _signing_photo(form, photo)

            def run() -> str:
                _keep(request, photo if "image_sha256" in changed else None)
                service.update_producer(who.principal, producer_id, data)
                return f"/app/producers/{producer_id}?done=updated"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                fields = {"name": "name", "contact": "contact"} | _IMAGE_FIELDS
                errors.update(service_errors(lang, exc, fields))
    return _producer_page(request, who, producer_id, errors, values, 422)


@router.post("/producers/{producer_id}/products")
async def register_product(request: Request, producer_id: str) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    upload = await photo_upload(form.files)
    return await run_in_threadpool(_register_product, request, who, producer_id[:64], form, upload)


def _register_product(
    request: Request, who: Staff, producer_id: str, form: Form, upload: bytes | None
) -> Response:
    """A product.registered statement, with the photo if one was chosen; the photo is kept
    only once every field passed."""
    lang, service = who.lang, request.app.state.service
    values = {n: form.get(n) for n in _PRODUCT_FIELDS}
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    photo, image = _photo_fields(request, lang, upload, errors, https=True)
    product_id = slug(values["name_vi"])[:40]
    if len(product_id) < 3:
        errors["name_vi"] = i18n.t(lang, "app.error.too_short", min=3, max="", rule="")
    if values["gtin"] and not values["gtin"].isdigit():
        errors["gtin"] = i18n.t(lang, "app.error.gtin")
    if not errors:
        try:
            data = ProductCreate(id=product_id, producer_id=producer_id, **values, **image)
        except ValidationError as exc:
            found = validation_errors(lang, exc, _IMAGE_FIELDS)
            if "gtin" in found:
                found["gtin"] = i18n.t(lang, "app.error.gtin")
            errors.update(found)
        else:
            _signing_photo(form, photo)

            def run() -> str:
                _keep(request, photo)
                service.register_product(who.principal, data)
                return f"/app/producers/{producer_id}?done=product"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                fields = {n: n for n in _PRODUCT_FIELDS} | {"id": "name_vi"} | _IMAGE_FIELDS
                errors.update(service_errors(lang, exc, fields))
    return _producer_page(
        request, who, producer_id, {f"p_{k}": v for k, v in errors.items()}, values, 422
    )


@router.post("/products/{product_id}")
async def edit_product(request: Request, product_id: str) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    upload = await photo_upload(form.files)
    return await run_in_threadpool(_edit_product, request, who, product_id[:64], form, upload)


def _edit_product(
    request: Request, who: Staff, product_id: str, form: Form, upload: bytes | None
) -> Response:
    """A product.updated statement of the names, GTIN or photo that changed (no file
    chosen: the photo stays)."""
    lang, service = who.lang, request.app.state.service
    with service.engine.connect() as conn:
        row = conn.execute(select(PRODUCT).where(PRODUCT.c.id == product_id)).first()
    if row is None:
        raise NotFound(f"no product {product_id!r}")
    values = {n: form.get(n) for n in ("name_vi", "name_en", "gtin")}
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    current = {"name_vi": row.name_vi, "name_en": row.name_en, "gtin": row.gtin.lstrip("0")}
    changed = {k: v for k, v in values.items() if v.lstrip("0") != current[k]}
    photo, image = _photo_fields(request, lang, upload, errors, https=True)
    changed |= _photo_change(row, form, photo, image)
    if not changed and not errors:
        errors[FORM] = i18n.t(lang, "app.error.no_change")
    if not errors:
        try:
            data = ProductChanges(**changed)
        except ValidationError as exc:
            found = validation_errors(lang, exc, _IMAGE_FIELDS)
            if "gtin" in found:
                found["gtin"] = i18n.t(lang, "app.error.gtin")
            errors.update(found)
        else:
            _signing_photo(form, photo)

            def run() -> str:
                _keep(request, photo if "image_sha256" in changed else None)
                service.update_product(who.principal, product_id, data)
                return f"/app/producers/{row.producer_id}?done=updated"

            try:
                return go(once(request, who, form, run))
            except ServiceError as exc:
                errors.update(service_errors(lang, exc, {n: n for n in values} | _IMAGE_FIELDS))
    errors = {f"e_{product_id}_{k}": v for k, v in errors.items()}
    return _producer_page(request, who, row.producer_id, errors, None, 422, {product_id: values})


# -- users --------------------------------------------------------------------------------
def _users_page(
    request: Request,
    who: Staff,
    values: dict[str, str],
    errors: dict[str, str],
    key: str,
    status: int = 200,
    code: dict[str, str] | None = None,
) -> Response:
    with request.app.state.service.engine.connect() as conn:
        users = conn.execute(select(USER).order_by(USER.c.username)).all()
        producers = conn.execute(
            select(PRODUCER.c.id, PRODUCER.c.name).order_by(PRODUCER.c.name)
        ).all()
    return render(
        request,
        who.lang,
        "app/users.html",
        who,
        status,
        users=users,
        producers=producers,
        values=values,
        errors=errors,
        idem=key,
        code=code,
        done=DONE.get(request.query_params.get("done", ""), ""),
    )


@router.get("/users")
async def users(request: Request) -> Response:
    who = await staff(request, "council")
    return await run_in_threadpool(_users_page, request, who, {"role": "producer"}, {}, new_key())


@router.post("/users")
async def create_user(request: Request) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    return await run_in_threadpool(_create_user, request, who, form)


def _create_user(request: Request, who: Staff, form: Form) -> Response:
    """A user with a one-time code for a password, shown here once; it sets its own at
    its first sign-in. (Not replayed on a double submit: the code is never stored.)"""
    lang, service = who.lang, request.app.state.service
    values = {n: form.get(n) for n in ("username", "role", "producer_id")}
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if values["role"] not in ("producer", "inspector"):
        errors["role"] = i18n.t(lang, "app.error.choice")
    elif values["role"] == "producer" and not values["producer_id"]:
        errors["producer_id"] = i18n.t(lang, "app.error.required")
    if values["role"] == "inspector":
        values["producer_id"] = ""
    if not errors:
        code = secrets.token_urlsafe(12)
        try:
            service.create_user(
                who.principal, values["username"], code, values["role"], values["producer_id"], True
            )
        except ServiceError as exc:
            if exc.field == "username" and exc.status == 422:
                errors["username"] = i18n.t(lang, "app.error.username")
            else:
                errors.update(service_errors(lang, exc, {n: n for n in values}))
        else:
            shown = {"username": values["username"], "code": code}
            return _users_page(request, who, {"role": "producer"}, {}, new_key(), 200, shown)
    return _users_page(request, who, values, errors, new_key(), 422)


@router.post("/users/{username}/reset")
async def reset_password(request: Request, username: str) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    if not form.fresh:
        errors = {FORM: i18n.t(who.lang, "app.error.expired")}
        return await run_in_threadpool(_users_page, request, who, {}, errors, new_key(), 422)
    code = await run_in_threadpool(
        request.app.state.service.reset_password, who.principal, username[:64]
    )
    shown = {"username": username[:64], "code": code}
    return await run_in_threadpool(_users_page, request, who, {}, {}, new_key(), 200, shown)


@router.post("/users/{username}/disable")
async def disable(request: Request, username: str) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    if not form.fresh:
        errors = {FORM: i18n.t(who.lang, "app.error.expired")}
        return await run_in_threadpool(_users_page, request, who, {}, errors, new_key(), 422)
    disabled = form.get("disabled") != "no"
    await run_in_threadpool(
        request.app.state.service.set_user_disabled, who.principal, username[:64], disabled
    )
    return go("/app/users?done=disabled")


# -- keys ---------------------------------------------------------------------------------
ROLE_KEYS = ("producer", "inspector", "council")


def _keys_page(request: Request, who: Staff, errors: dict[str, str], status: int = 200) -> Response:
    grants = request.app.state.service.store.grants()
    shown = sorted(
        (g for g in grants.values() if g.role in ROLE_KEYS),
        key=lambda g: (g.revoked_index is not None, g.role, g.subject, g.registered_index),
    )
    return render(
        request,
        who.lang,
        "app/keys.html",
        who,
        status,
        keys=shown,
        errors=errors,
        done=DONE.get(request.query_params.get("done", ""), ""),
    )


@router.get("/keys")
async def keys(request: Request) -> Response:
    who = await staff(request, "council")
    return await run_in_threadpool(_keys_page, request, who, {})


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    who = await staff(request, "council")
    form = await read_form(request)
    return await run_in_threadpool(_revoke_key, request, who, key_id[:64], form)


def _revoke_key(request: Request, who: Staff, key_id: str, form: Form) -> Response:
    """A key.revoked statement (the service forgets the key's private half if it held it)."""
    lang, service = who.lang, request.app.state.service
    reason = form.get("reason")
    errors: dict[str, str] = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if not 3 <= len(reason) <= 500:
        errors[f"reason-{key_id[:12]}"] = i18n.t(lang, "app.error.length", min=3, max=500)
    if not errors:

        def run() -> str:
            service.revoke_key(who.principal, key_id, reason)
            return "/app/keys?done=key"

        try:
            return go(once(request, who, form, run))
        except ServiceError as exc:
            errors.update(service_errors(lang, exc, {}))
    return _keys_page(request, who, errors, 422)
