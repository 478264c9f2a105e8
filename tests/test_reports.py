"""Fake reports in the domain: limited per network alone, only issued serials, a daily budget."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from support import Api, issue_labels, issued_serials

from ocop_trace import reports
from ocop_trace.errors import InvalidInput, NotFound, TooManyRequests

SECRET = "a-secret-for-the-tests-0123456789"


def count(api: Api) -> int:
    with api.service.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(reports.REPORT)).scalar_one())


def test_the_network_key_ignores_the_browser_string() -> None:
    key = reports.network_key(SECRET, "203.0.113.7")
    assert key == reports.network_key(SECRET, "203.0.113.200")  # the same /24
    assert key != reports.network_key(SECRET, "198.51.100.7")
    assert key != reports.network_key("another-secret-0123456789abcdefgh", "203.0.113.7")
    assert "203.0.113" not in key


def test_five_reports_an_hour_from_one_network_whatever_the_browser(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    for _ in range(reports.REPORTS_PER_HOUR):
        reports.submit(api.service.engine, SECRET, serial=serial, host="203.0.113.7")
    with pytest.raises(TooManyRequests) as refused:
        reports.submit(api.service.engine, SECRET, serial=serial, host="203.0.113.99")
    assert refused.value.retry_after
    reports.submit(api.service.engine, SECRET, serial=serial, host="198.51.100.7")
    assert count(api) == reports.REPORTS_PER_HOUR + 1


def test_only_serials_the_service_issued_are_accepted(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    with pytest.raises(NotFound) as unknown:
        reports.submit(api.service.engine, SECRET, serial="0000000000000000", host="10.0.0.1")
    assert unknown.value.field == "serial"
    with pytest.raises(InvalidInput):
        reports.submit(api.service.engine, SECRET, serial="<script>", host="10.0.0.1")
    assert count(api) == 0
    assert reports.issued_serial(api.service.engine, serial) == serial
    # The printed form of an issued code finds it too.
    from ocop_trace.serials import parse_canonical

    printed = parse_canonical(serial).human
    reports.submit(api.service.engine, SECRET, serial=printed, host="10.0.0.1")
    with api.service.engine.connect() as conn:
        stored = conn.execute(select(reports.REPORT.c.serial)).scalar_one()
    assert stored == serial


def test_past_the_days_storage_budget_reports_are_refused_clearly(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    photo = b"\x89PNG" + b"x" * (1024 * 1024)
    budget = 2 * len(photo) + 100
    for host in ("10.0.1.1", "10.0.2.1"):
        reports.submit(
            api.service.engine,
            SECRET,
            serial=serial,
            host=host,
            photo=photo,
            photo_type="image/png",
            bytes_per_day=budget,
        )
    with pytest.raises(reports.ReportBudgetExceeded) as full:
        reports.submit(
            api.service.engine,
            SECRET,
            serial=serial,
            host="10.0.3.1",
            photo=photo,
            photo_type="image/png",
            bytes_per_day=budget,
        )
    assert "try again tomorrow" in full.value.message
    assert 0 < (full.value.retry_after or 0) <= 24 * 3600
    assert full.value.status == 429
    assert count(api) == 2
    # A short report without a photo still fits.
    reports.submit(api.service.engine, SECRET, serial=serial, host="10.0.3.1", bytes_per_day=budget)
