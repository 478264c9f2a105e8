"""Labels: issuing serials with their QR codes, and resolving the links printed on packages."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import Connection, select

from ocop_trace import labels, ocop
from ocop_trace.api.batches import _batch_row, batch_public
from ocop_trace.api.catalog import producer_public, rating_public
from ocop_trace.api.deps import ConnDep, PrincipalDep, ServiceDep
from ocop_trace.digital_link import DigitalLinkError, build_digital_link, parse_digital_link
from ocop_trace.errors import InvalidInput, NotFound, error_body
from ocop_trace.models import LabelIssue
from ocop_trace.offline import LabelSignatureError, sign_label_url, verify_label_url
from ocop_trace.pages import error_page, scan_page, wants_html
from ocop_trace.projection import PRODUCER, PRODUCT, RATING
from ocop_trace.serials import SerialError, parse_canonical
from ocop_trace.service import LABEL_SERIAL, require_role

router = APIRouter(tags=["labels"])
LINK_TYPES = {
    "gs1:pip": "pip",
    "gs1:certificationInfo": "certificationInfo",
    "gs1:traceability": "traceability",
}
LINKSET = "application/linkset+json"


def label_url(base: str, gtin: str, lot: str, serial: str) -> str:
    """A GS1 Digital Link when the product has a GTIN, the service's own short link if not."""
    if gtin:
        return build_digital_link(base, gtin, lot=lot, serial=serial)
    return f"{base.rstrip('/')}/l/{serial}"


@router.post(
    "/api/v1/batches/{batch_id}/labels",
    status_code=201,
    summary="Issue N serialised labels for a batch (its producer): PDF sheet, SVG or PNG",
    response_class=Response,
    responses={201: {"content": {"application/pdf": {}, "image/svg+xml": {}, "image/png": {}}}},
)
def issue_labels(
    batch_id: str,
    data: LabelIssue,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    conn: ConnDep,
) -> Response:
    require_role(principal, "producer")
    if data.format != "pdf" and data.count != 1:
        raise InvalidInput(
            "svg and png hold one label: ask for count 1, or format pdf", field="count"
        )
    layout: dict[str, Any] = {
        "label_mm": (data.label_width_mm, data.label_height_mm),
        "grid": (data.columns, data.rows),
        "qr_mm": data.qr_mm,
    }
    try:
        labels.check_sheet(**layout)  # before any serial is issued
    except labels.LabelError as exc:
        raise InvalidInput(str(exc)) from None
    batch = _batch_row(conn, batch_id)
    product = conn.execute(select(PRODUCT).where(PRODUCT.c.id == batch.product_id)).one()
    rating = _current_rating(conn, product.id)
    receipt, serials = service.issue_labels(principal, batch_id, batch.producer_id, data.count)
    base = request.app.state.settings.public_url
    urls = [label_url(base, product.gtin, batch.lot, s.canonical) for s in serials]
    if data.offline:
        key = service.producer_key(batch.producer_id)
        urls = [sign_label_url(url, key) for url in urls]
    stars = rating.stars if rating is not None else 0
    sheet = [
        labels.Label(url, product.name_vi, stars, batch.lot, serial.human)
        for url, serial in zip(urls, serials, strict=True)
    ]
    headers = {"X-Ledger-Index": str(receipt.index), "X-Label-Count": str(len(serials))}
    if data.format == "svg":
        return Response(
            labels.render_svg(sheet[0].url, data.ec),
            201,
            media_type="image/svg+xml",
            headers=headers,
        )
    if data.format == "png":
        return Response(
            labels.render_png(sheet[0].url, data.ec), 201, media_type="image/png", headers=headers
        )
    out = io.BytesIO()
    labels.render_pdf_sheet(sheet, out, ec=data.ec, **layout)
    return Response(
        out.getvalue(),
        201,
        media_type="application/pdf",
        headers={**headers, "Content-Disposition": f'attachment; filename="labels-{batch_id}.pdf"'},
    )


def _current_rating(conn: Connection, product_id: str) -> Any:
    return conn.execute(
        select(RATING)
        .where(RATING.c.product_id == product_id)
        .order_by(RATING.c.id.desc())
        .limit(1)
    ).first()


@router.get("/.well-known/gs1resolver", summary="What this GS1 Digital Link resolver serves")
def well_known(request: Request) -> dict[str, Any]:
    base = request.app.state.settings.public_url.rstrip("/")
    return {
        "name": "OCOP trace",
        "resolverRoot": base,
        "supportedPrimaryKeys": ["gtin"],
        "supportedLinkType": [
            {"namespace": "https://gs1.org/voc/", "prefix": "gs1:", "types": sorted(LINK_TYPES)}
        ],
        "linkTypeDefaultCanBeLinkset": True,
        "shortLinks": f"{base}/l/{{serial}} for products without a GTIN",
    }


def _resolve(
    request: Request,
    conn: ConnDep,
    link_serial: str | None,
    gtin: str | None,
    lot: str | None,
    batch_id: str | None = None,
) -> Response:
    facts = _facts(conn, link_serial, gtin, lot, batch_id)
    if link_serial is not None:
        facts["serial"] = link_serial
        facts["scans"] = _count_scan(request, link_serial)
    if "s" in request.query_params:
        facts["label_signature"] = _label_signature(request, facts["producer"]["id"])
    if wants_html(request) and "linkType" not in request.query_params:
        return scan_page(request, conn, request.app.state.service.store, facts)
    url = str(request.url.remove_query_params("linkType"))
    links = _links(request.app.state.settings.public_url, facts)
    link_header = f'<{url}?linkType=linkset>; rel="linkset"; type="{LINKSET}"'
    link_type = request.query_params.get("linkType")
    if link_type == "linkset" or LINKSET in request.headers.get("accept", ""):
        body = {
            "linkset": [
                {
                    "anchor": url,
                    **{f"https://gs1.org/voc/{k}": [{"href": v}] for k, v in links.items()},
                }
            ]
        }
        return JSONResponse(body, media_type=LINKSET, headers={"Link": link_header})
    if link_type is not None:
        target = links.get(LINK_TYPES.get(link_type, ""))
        if target is None:
            raise InvalidInput(
                f"linkType must be linkset or one of {', '.join(LINK_TYPES)}", field="linkType"
            )
        return RedirectResponse(target, status_code=307, headers={"Link": link_header})
    return JSONResponse(facts, headers={"Link": link_header})


def _facts(
    conn: Connection,
    serial: str | None,
    gtin: str | None,
    lot: str | None,
    batch_id: str | None = None,
) -> Any:
    if batch_id is not None:
        batch = _batch_row(conn, batch_id)
    elif serial is not None:
        row = conn.execute(select(LABEL_SERIAL).where(LABEL_SERIAL.c.serial == serial)).first()
        if row is None:
            raise NotFound(
                "this code is not registered: the product may be counterfeit. "
                "Report it to the seller or the provincial OCOP council."
            )
        batch = _batch_row(conn, row.batch_id)
    else:
        batch = None
    product_row = conn.execute(
        select(PRODUCT).where(
            PRODUCT.c.id == batch.product_id if batch is not None else PRODUCT.c.gtin == gtin
        )
    ).first()
    if (
        product_row is None
        or (gtin is not None and product_row.gtin != gtin)
        or (batch is not None and lot is not None and batch.lot != lot)
    ):
        raise NotFound("no registered product matches this code: it may be counterfeit")
    producer = conn.execute(select(PRODUCER).where(PRODUCER.c.id == product_row.producer_id)).one()
    rating = _current_rating(conn, product_row.id)
    facts: dict[str, Any] = {
        "verdict": "registered" if batch is None or batch.recalled_index is None else "recalled",
        "product": {
            "id": product_row.id,
            "name_vi": product_row.name_vi,
            "name_en": product_row.name_en,
            "gtin": product_row.gtin,
            "image_url": product_row.image_url,
        },
        "product_entry_index": product_row.entry_index,
        "producer": producer_public(producer).model_dump(),
        "rating": rating_public(rating, ocop.today_in_vietnam()).model_dump() if rating else None,
        "batch": batch_public(conn, batch).model_dump() if batch is not None else None,
    }
    return facts


def _count_scan(request: Request, serial: str) -> dict[str, Any]:
    scans = request.app.state.scans
    if request.method == "GET":
        scans.record(
            serial,
            request.client.host if request.client else None,
            request.headers.get("user-agent", ""),
        )
    stats = scans.stats(serial)
    settings = request.app.state.settings
    copied = (
        stats.scans > settings.copy_scan_threshold
        or stats.networks > settings.copy_network_threshold
    )
    return {
        "count": stats.scans,
        "networks": stats.networks,
        "first_seen": stats.first_seen,
        "may_be_copied": copied,
    }


def _label_signature(request: Request, producer_id: str) -> str:
    grants = request.app.state.service.store.grants().values()
    producer_keys = {
        g.key_id: bytes.fromhex(g.key_id)
        for g in grants
        if g.role == "producer" and g.subject == producer_id and g.revoked_index is None
    }
    try:
        check = verify_label_url(str(request.url), producer_keys)
    except LabelSignatureError:
        return "unreadable"
    return "valid" if check.valid else "invalid"


def _links(base: str, facts: dict[str, Any]) -> dict[str, str]:
    root = base.rstrip("/")
    product = quote(facts["product"]["id"])
    links = {
        "pip": f"{root}/api/v1/products/{product}",
        "certificationInfo": f"{root}/api/v1/products/{product}/ratings",
    }
    if facts["batch"] is not None:
        links["traceability"] = f"{root}/api/v1/batches/{quote(facts['batch']['id'])}/events"
    return links


@router.api_route("/l/{serial}", methods=["GET", "HEAD"], summary="Resolve a short label link")
def resolve_short(serial: str, request: Request, conn: ConnDep) -> Response:
    try:
        canonical = parse_canonical(serial).canonical
    except SerialError as exc:
        return _bad_link(request, str(exc))
    return _answer(request, conn, canonical, None, None)


@router.api_route(
    "/01/{rest:path}",
    methods=["GET", "HEAD"],
    summary="Resolve a GS1 Digital Link printed on a label",
)
def resolve_digital_link(rest: str, request: Request, conn: ConnDep) -> Response:
    try:
        link = parse_digital_link(str(request.url))
    except DigitalLinkError as exc:
        return _bad_link(request, f"not a GS1 Digital Link we can read: {exc}")
    return _answer(request, conn, link.serial, link.gtin, link.lot)


def _bad_link(request: Request, message: str) -> Response:
    if wants_html(request):
        return error_page(request, 400, "bad_link", message)
    return JSONResponse(error_body("bad_link", message), status_code=400)


def _answer(
    request: Request,
    conn: ConnDep,
    serial: str | None,
    gtin: str | None,
    lot: str | None,
    batch_id: str | None = None,
) -> Response:
    try:
        return _resolve(request, conn, serial, gtin, lot, batch_id)
    except NotFound as exc:
        if wants_html(request):
            return error_page(request, 404, "unknown", exc.message, serial)
        raise


@router.get("/b/{batch_id}", summary="A batch's page, with no label (lineage links open it)")
def batch_page(batch_id: str, request: Request, conn: ConnDep) -> Response:
    return _answer(request, conn, None, None, None, batch_id)


@router.options("/01/{rest:path}", include_in_schema=False)
@router.options("/l/{serial}", include_in_schema=False)
def resolver_options() -> Response:
    return Response(
        status_code=204,
        headers={
            "Allow": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        },
    )
