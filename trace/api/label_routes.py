"""Issuing a batch's label serials, as a printable sheet (PDF), SVG or PNG."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from ocop_trace import labels
from ocop_trace.api.batches import _batch_row
from ocop_trace.api.catalog import current_rating
from ocop_trace.api.deps import ConnDep, PrincipalDep, ServiceDep
from ocop_trace.digital_link import build_digital_link
from ocop_trace.errors import InvalidInput
from ocop_trace.models import LabelIssue
from ocop_trace.offline import sign_label_url
from ocop_trace.projection import PRODUCT
from ocop_trace.service import require_role

router = APIRouter(tags=["labels"])


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
    rating = current_rating(conn, product.id)
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
