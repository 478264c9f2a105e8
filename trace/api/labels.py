"""Issuing a batch's label serials (a PDF sheet, SVG or PNG), and voiding a misprinted set."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ocop_trace import labels
from ocop_trace.api import examples
from ocop_trace.api.deps import Created, IdPath, PrincipalDep, ServiceDep, SlugPath, created
from ocop_trace.api.examples import body
from ocop_trace.errors import InvalidInput
from ocop_trace.models import LabelIssue, LabelVoid

router = APIRouter(tags=["labels"])
MEDIA_TYPES = {"pdf": "application/pdf", "svg": "image/svg+xml", "png": "image/png"}


@router.post(
    "/api/v1/batches/{batch_id}/labels",
    status_code=201,
    summary="Issue N serialised labels for a batch (its producer): PDF sheet, SVG or PNG",
    response_class=Response,
    responses={
        201: {
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in MEDIA_TYPES.values()
            },
            "description": "The labels; X-Ledger-Index names the labels.issued entry",
        }
    },
)
def issue_labels(
    batch_id: SlugPath,
    data: Annotated[LabelIssue, body(examples.LABELS)],
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> Response:
    if data.format != "pdf" and data.count != 1:
        raise InvalidInput(
            "svg and png hold one label: ask for count 1, or format pdf", field="count"
        )
    public_url = request.app.state.settings.public_url
    issued = service.issue_labels(principal, batch_id, data, public_url)
    headers = {
        "X-Ledger-Index": str(issued.receipt.index),
        "X-Label-Count": str(len(issued.serials)),
    }
    if data.format == "pdf":
        headers["Content-Disposition"] = f'attachment; filename="labels-{batch_id}.pdf"'
    content = labels.render(issued.labels, data.format, data.ec, data.layout())
    return Response(content, 201, media_type=MEDIA_TYPES[data.format], headers=headers)


@router.post(
    "/api/v1/label-sets/{label_set}/void",
    status_code=201,
    summary="Void a misprinted label set: its serials then scan as not registered (its producer)",
    response_model=Created,
)
def void_labels(
    label_set: IdPath,
    data: Annotated[LabelVoid, body(examples.LABEL_VOID)],
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """`label_set` is the index of the set's labels.issued entry (X-Ledger-Index when it
    was issued); the answer's receipt is the labels.voided entry's."""
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.void_labels(principal, label_set, data.reason),
    )
