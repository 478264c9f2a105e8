"""Suspected fakes reported by shoppers, for inspectors and the council."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from ocop_trace.api.deps import ConnDep, PageDep, PrincipalDep
from ocop_trace.reports import REPORT
from ocop_trace.service import require_role

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.get("/reports", summary="Suspected fakes reported by shoppers (inspectors)")
def list_reports(conn: ConnDep, principal: PrincipalDep, page: PageDep) -> dict[str, Any]:
    require_role(principal, "inspector", "council")
    total = conn.execute(select(func.count()).select_from(REPORT)).scalar_one()
    columns = [c for c in REPORT.c if c.name != "photo"]
    rows = conn.execute(
        select(*columns).order_by(REPORT.c.id.desc()).limit(page.limit).offset(page.offset)
    ).all()
    return {
        "items": [dict(r._mapping) for r in rows],
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
    }
