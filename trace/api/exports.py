"""Spreadsheets out: every batch, its events and the portal's consumer fields (XLSX, CSV)."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ocop_trace.api.deps import ConnDep
from ocop_trace.api.examples import binary
from ocop_trace.api.imports import XLSX
from ocop_trace.sheets_out import write_sheet_csv, write_workbook

router = APIRouter(prefix="/api/v1", tags=["spreadsheets"])


@router.get(
    "/exports/batches.xlsx",
    summary="Every batch, every event and the portal's consumer fields: one sortable XLSX",
    response_class=Response,
    responses=binary(XLSX, description="The workbook"),
)
def batches_xlsx(request: Request, conn: ConnDep) -> Response:
    data = io.BytesIO()
    write_workbook(conn, request.app.state.settings.public_url, data)
    headers = {"Content-Disposition": 'attachment; filename="ocop-batches.xlsx"'}
    return Response(data.getvalue(), media_type=XLSX, headers=headers)


@router.get(
    "/exports/batches.csv",
    summary="One of those lists as CSV: batches, events or portal",
    response_class=Response,
    responses=binary("text/csv", description="One sheet as CSV (UTF-8)"),
)
def batches_csv(
    request: Request,
    conn: ConnDep,
    sheet: Annotated[Literal["batches", "events", "portal"], Query()] = "batches",
) -> Response:
    text = io.StringIO()
    write_sheet_csv(conn, sheet, request.app.state.settings.public_url, text)
    headers = {"Content-Disposition": f'attachment; filename="ocop-{sheet}.csv"'}
    return Response(text.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
