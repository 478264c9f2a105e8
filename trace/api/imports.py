"""Councils' spreadsheets in: the template, a dry run, then an all-or-none import (council)."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ocop_trace.api.deps import PrincipalDep, ServiceDep
from ocop_trace.api.examples import binary
from ocop_trace.catalogue_import import COLUMNS, apply_import, plan_import, template_sheets
from ocop_trace.errors import PayloadTooLarge
from ocop_trace.service import require_role
from ocop_trace.sheets import MAX_BYTES, write_csv, write_xlsx

router = APIRouter(prefix="/api/v1", tags=["spreadsheets"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Each row checked: what it would append, or the fix a cell needs ("appended" once applied).
_PLAN = {"type": "object", "title": "ImportPlan"}


@router.get(
    "/imports/template",
    summary="The spreadsheet template for producers, products, ratings",
    response_class=Response,
    responses=binary(XLSX, "text/csv", description="The template: XLSX, or one sheet as CSV"),
)
def template(
    format: Annotated[Literal["xlsx", "csv"], Query()] = "xlsx",
    sheet: Annotated[Literal["producers", "products", "ratings"], Query()] = "producers",
) -> Response:
    if format == "csv":
        text = io.StringIO()
        write_csv(COLUMNS[sheet], [], text)
        headers = {"Content-Disposition": f'attachment; filename="ocop-{sheet}.csv"'}
        return Response(text.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    data = io.BytesIO()
    write_xlsx(template_sheets(), data)
    headers = {"Content-Disposition": 'attachment; filename="ocop-import.xlsx"'}
    return Response(data.getvalue(), media_type=XLSX, headers=headers)


@router.post(
    "/imports",
    summary="Import a council's spreadsheet (.xlsx or .csv): a dry run, or apply=true (council)",
    responses={
        200: {"content": {"application/json": {"schema": _PLAN}}, "description": "The dry run"},
        201: {"content": {"application/json": {"schema": _PLAN}}, "description": "Appended"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    },
                    "example": {"file": "ocop-import.xlsx (the template, filled in)"},
                }
            },
            "required": True,
        }
    },
)
async def import_sheet(
    file: UploadFile,
    service: ServiceDep,
    principal: PrincipalDep,
    apply: Annotated[bool, Query(description="Append the statements (all or none)")] = False,
) -> JSONResponse:
    require_role(principal, "council")
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"a spreadsheet may be at most {MAX_BYTES} bytes", field="file")
    plan = await run_in_threadpool(plan_import, service, file.filename or "", data)
    if not apply or not plan.ok:
        return JSONResponse(plan.as_json(), status_code=200 if plan.ok else 422)
    receipts = await run_in_threadpool(apply_import, service, principal, plan)
    return JSONResponse(
        {**plan.as_json(), "appended": sum(1 for r in receipts if not r.duplicate)},
        status_code=201,
    )
