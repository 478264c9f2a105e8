"""A product's and a producer's public pages: what was signed, each fact checked like a scan.

/p/{product_id}          name, group, description, photo, rating and its history, the
                         producer, recent batches, what it is made from
/producers/{producer_id} the producer, its addresses before and after the 2025 reform,
                         its products
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection, select

from ocop_trace import ocop, photo_store, search
from ocop_trace.errors import NotFound
from ocop_trace.models import BATCH, BATCH_INPUT, PRODUCER, PRODUCT, SLUG_RE
from ocop_trace.scan_facts import producer_view, rating_history, view
from ocop_trace.site.pages import error_page, finish, language, render
from ocop_trace.site.scan import checks_summary, mismatch_words

router = APIRouter(include_in_schema=False)
RECENT_BATCHES = 10
MAP_URL = "https://www.openstreetmap.org/search?query="  # a link, never a map script


@router.get("/p/{product_id}")
def product_page(product_id: str, request: Request) -> Response:
    lang = language(request)
    evidence = request.app.state.evidence
    today = ocop.today_in_vietnam()
    with request.app.state.service.engine.connect() as conn:
        product = (
            conn.execute(select(PRODUCT).where(PRODUCT.c.id == product_id)).first()
            if SLUG_RE.match(product_id)  # anything else is no id (and PostgreSQL refuses NUL)
            else None
        )
        if product is None:
            return error_page(request, 404, NotFound(f"no product {product_id!r}"))
        scan = view(conn, evidence, product, None, today)
        history = rating_history(conn, evidence, product.id)
        batches = _batches(conn, product.id)
        made_from = _made_from(conn, product.id)
        sha = scan.product["image_sha256"]
        photo_state = photo_store.state(conn, sha) if sha else ""
    shown, producer, rating = scan.product, scan.producer, scan.rating
    name = shown["name_en"] if lang == "en" and shown["name_en"] else shown["name_vi"]
    rating_current = rating is not None and rating["status"] in ("valid", "expiring")
    # A photo held here is served from here (sized for the page); else from its link.
    photo = f"/photos/{sha}-page.jpg" if photo_state == "signed" else shown["image_url"]
    stars = "★" * rating["stars"] + " · " if rating is not None and rating_current else ""
    page = render(
        request,
        lang,
        "site/product.html",
        product=shown,
        product_name=name,
        sector=ocop.sector_of(shown["product_set"]),
        service=ocop.PRODUCT_SETS[shown["product_set"]].sector.is_service,
        producer=producer,
        rating=rating,
        rating_current=rating_current,
        photo=photo,
        photo_state=photo_state,
        history=history,
        batches=batches,
        made_from=made_from,
        checks=scan.checks,
        checkpoint=scan.checkpoint,
        summary=checks_summary(lang, scan.checks, scan.checkpoint),
        mismatch=scan.mismatch,
        mismatch_words=[mismatch_words(lang, m) for m in scan.mismatch],
        **_addresses(producer),
        canonical=f"/p/{product.id}",
        share={
            "title": name,
            "description": f"{stars}{producer['name']} · {shown['description']}",
            "image": _absolute(request, photo),
            "type": "product",
        },
    )
    return finish(request, page, None, {})


@router.get("/producers/{producer_id}")
def producer_page(producer_id: str, request: Request) -> Response:
    lang = language(request)
    with request.app.state.service.engine.connect() as conn:
        row = (
            conn.execute(select(PRODUCER).where(PRODUCER.c.id == producer_id)).first()
            if SLUG_RE.match(producer_id)
            else None
        )
        if row is None:
            return error_page(request, 404, NotFound(f"no producer {producer_id!r}"))
        checked = producer_view(conn, request.app.state.evidence, row)
        stars = search.stars_now(ocop.today_in_vietnam()).label("stars")
        products = [
            dict(r)
            for r in conn.execute(
                select(PRODUCT.c.id, PRODUCT.c.name_vi, PRODUCT.c.name_en, stars)
                .where(PRODUCT.c.producer_id == row.id)
                .order_by(PRODUCT.c.name_vi)
            ).mappings()
        ]
    producer = checked.producer
    page = render(
        request,
        lang,
        "site/producer.html",
        producer=producer,
        products=products,
        checks=checked.checks,
        checkpoint=checked.checkpoint,
        summary=checks_summary(lang, checked.checks, checked.checkpoint),
        mismatch=checked.mismatch,
        mismatch_words=[mismatch_words(lang, m) for m in checked.mismatch],
        **_addresses(producer),
        canonical=f"/producers/{row.id}",
        share={"title": producer["name"], "description": producer["description"], "image": ""},
    )
    return finish(request, page, None, {})


def _absolute(request: Request, url: str) -> str:
    """Shared links need whole addresses: a photo served here gets the site's own."""
    if url.startswith("/"):
        return str(request.app.state.settings.public_url).rstrip("/") + url
    return url


def _addresses(producer: dict[str, Any]) -> dict[str, Any]:
    """The current address, the one before the 2025 reform (when it differs), a map link."""
    certified, current = producer["address_certified"], producer["address_current"]
    before = ocop.address_before_reform(
        ocop.CertifiedAddress(**{**certified, "district": certified["district"] or None}),
        ocop.CurrentAddress(**{k: current[k] for k in ("province", "commune", "line")}),
    )
    now = ", ".join(p for p in (current["line"], current["commune"], current["province"]) if p)
    where = ", ".join(p for p in (current["commune"], current["province"], "Việt Nam") if p)
    return {
        "current_address": now,
        "before_reform": before,
        "reform_day": ocop.REFORM_DATE.isoformat(),
        "map_url": MAP_URL + quote(where),
    }


def _batches(conn: Connection, product_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(BATCH.c.id, BATCH.c.lot, BATCH.c.produced_on, BATCH.c.recalled_index)
        .where(BATCH.c.product_id == product_id)
        .order_by(BATCH.c.entry_index.desc())
        .limit(RECENT_BATCHES)
    ).mappings()
    return [dict(r) for r in rows]


def _made_from(conn: Connection, product_id: str) -> list[dict[str, Any]]:
    """The products whose batches went into this product's batches (one level of lineage;
    each batch page walks the rest)."""
    own = select(BATCH.c.id).where(BATCH.c.product_id == product_id)
    inputs = select(BATCH_INPUT.c.input_id).where(BATCH_INPUT.c.batch_id.in_(own))
    rows = conn.execute(
        select(PRODUCT.c.id, PRODUCT.c.name_vi, PRODUCT.c.name_en)
        .where(
            PRODUCT.c.id.in_(select(BATCH.c.product_id).where(BATCH.c.id.in_(inputs))),
            PRODUCT.c.id != product_id,
        )
        .order_by(PRODUCT.c.name_vi)
    ).mappings()
    return [dict(r) for r in rows]
