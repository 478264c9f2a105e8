"""The staff app's front page: each role lands on its own dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ocop_trace.webapp import council, inspector, producer
from ocop_trace.webapp.session import go, staff

router = APIRouter(prefix="/app", include_in_schema=False)


@router.get("")
async def bare() -> Response:
    return go("/app/")


@router.get("/")
async def home(request: Request) -> Response:
    who = await staff(request)
    if who.role == "producer":
        return await producer.dashboard(request, who)
    if who.role == "council":
        return await council.dashboard(request, who)
    return await inspector.dashboard(request, who)
