"""What one scan request adds to a page: its count (and the copy warning), a label's signature."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection

from ocop_trace.offline import LabelSignatureError, verify_label_url
from ocop_trace.scans import ScanCounter


async def copied(request: Request, serial: str | None) -> dict[str, Any] | None:
    """Count this scan and say whether the serial looks copied (memory, or one read)."""
    if serial is None:
        return None
    scans = _record(request, serial)
    if scans.overdue():
        await run_in_threadpool(scans.flush, wait=False)
    stats = scans.cached_stats(serial)
    if stats is None:
        stats = await run_in_threadpool(scans.stats, serial)
    return _copy_view(request, stats.networks, stats.scans, stats.first_day)


def copied_now(request: Request, serial: str | None) -> dict[str, Any] | None:
    """`copied` from a worker thread, before the request opens its connection: a connection
    opened earlier would read the counts as they were before a flush it did not see."""
    if serial is None:
        return None
    scans = _record(request, serial)
    if scans.overdue():
        scans.flush(wait=False)
    stats = scans.stats(serial)
    return _copy_view(request, stats.networks, stats.scans, stats.first_day)


def _record(request: Request, serial: str) -> ScanCounter:
    scans: ScanCounter = request.app.state.scans
    if request.method == "GET":
        scans.record(serial, request.client.host if request.client else None)
    return scans


def _copy_view(request: Request, networks: int, scans: int, first_day: str) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "count": scans,
        "networks": networks,
        "days": settings.copy_days,
        "first_day": first_day,
        "copied": networks >= settings.copy_networks,
    }


def signature(request: Request, conn: Connection, producer_id: str) -> str | None:
    """An offline-signed label's signature, checked against the producer's keys."""
    if "s" not in request.query_params:
        return None
    grants = request.app.state.service.store.grants(conn).values()
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
