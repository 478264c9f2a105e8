"""Scan counts at a million a day: batched, no hot row, and the table keeps only the window."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import insert, text
from support import Api, issue_labels, issued_serials

from ocop_trace import ocop
from ocop_trace.scans import NETWORK, ROLLUP, ScanCounter, client_hash


def _days_ago(days: int) -> str:
    return (ocop.today_in_vietnam() - timedelta(days=days)).isoformat()


def _rows(api: Api, serial: str, day: str, networks: range) -> list[dict[str, object]]:
    secret = api.settings.secret_key.get_secret_value()
    return [
        {
            "serial": serial,
            "client": client_hash(secret, serial, f"198.51.{n}.1"),
            "first_day": day,
            "last_day": day,
            "days": 2,
        }
        for n in networks
    ]


def _count(api: Api, table: str) -> int:
    with api.service.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_networks_that_left_the_window_fold_into_one_row_per_serial(api: Api) -> None:
    issue_labels(api, 2)
    first, second = issued_serials(api)
    window = api.settings.copy_days
    old, older, recent = _days_ago(window + 3), _days_ago(window + 40), _days_ago(1)
    with api.service.engine.begin() as conn:
        conn.execute(insert(NETWORK), _rows(api, first, old, range(6)))
        conn.execute(insert(NETWORK), _rows(api, first, older, range(6, 10)))
        conn.execute(insert(NETWORK), _rows(api, first, recent, range(10, 12)))
        conn.execute(insert(NETWORK), _rows(api, second, old, range(3)))
    counter = ScanCounter(api.service.engine, api.settings.secret_key.get_secret_value())
    before = counter.stats(first)
    assert before.scans == 24  # 12 networks, 2 days each
    assert before.networks == 2  # only the recent ones are in the window
    assert before.first_day == older

    assert counter.roll_up() == 13  # 10 rows of the first serial, 3 of the second
    assert _count(api, "scan_network") == 2  # only the window's rows are left
    assert _count(api, "scan_rollup") == 2  # one row per serial
    with api.service.engine.connect() as conn:
        rolled = conn.execute(
            text("SELECT scans, first_day FROM scan_rollup WHERE serial = :s"), {"s": first}
        ).one()
    assert (rolled.scans, rolled.first_day) == (20, older)
    # The page's counts are the same read from a fresh process (no memory of them).
    fresh = ScanCounter(api.service.engine, api.settings.secret_key.get_secret_value())
    stats = fresh.stats(first)
    assert (stats.scans, stats.networks, stats.first_day) == (24, 2, older)

    # A second roll-up adds to the serial's row rather than making another.
    with api.service.engine.begin() as conn:
        conn.execute(insert(NETWORK), _rows(api, first, old, range(20, 21)))
    assert counter.roll_up() == 1
    assert _count(api, "scan_rollup") == 2
    stats = ScanCounter(api.service.engine, "x" * 32).stats(first)
    assert stats.scans == 26
    assert counter.roll_up() == 0  # nothing left to fold


def test_a_network_scanning_again_the_same_day_writes_nothing(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    counter = ScanCounter(api.service.engine, api.settings.secret_key.get_secret_value())
    counter.record(serial, "203.0.113.9")
    counter.flush()
    version = _row_version(api)
    for _ in range(50):  # reloads from one network, flushed between
        counter.record(serial, "203.0.113.77")
        counter.flush()
    with api.service.engine.connect() as conn:
        row = conn.execute(text("SELECT days, first_day, last_day FROM scan_network")).one()
    assert row.days == 1
    assert row.first_day == row.last_day == ocop.today_in_vietnam().isoformat()
    # PostgreSQL: the row was never rewritten (no dead versions piling up on a busy serial).
    assert _row_version(api) == version


def _row_version(api: Api) -> str:
    with api.service.engine.connect() as conn:
        column = "xmin::text" if conn.dialect.name == "postgresql" else "rowid"
        return str(conn.execute(text(f"SELECT {column} FROM scan_network")).scalar_one())


def test_a_flush_writes_tens_of_thousands_of_scans_in_one_batch(api: Api) -> None:
    """A million scans a day is about 12 a second; one flush here takes 20,000 at once."""
    counter = ScanCounter(api.service.engine, api.settings.secret_key.get_secret_value())
    for n in range(20_000):
        counter.record(f"{n:016d}", f"10.{n % 200}.{n // 200}.1")
    started = time.monotonic()
    counter.flush()
    took = time.monotonic() - started
    assert _count(api, "scan_network") == 20_000
    assert took < 20, f"one flush of 20,000 scans took {took:.1f} s"


def test_a_network_scanning_again_the_same_day_is_not_even_sent(api: Api) -> None:
    # A reload or a shelf scanned over and over writes nothing, so a flush does not send it:
    # the benchmark's flushes once sent every serial every second, holding the GIL.
    from sqlalchemy import event

    issue_labels(api, 1)
    (serial,) = issued_serials(api)
    counter = ScanCounter(api.service.engine, api.settings.secret_key.get_secret_value())
    written: list[int] = []

    def count(_conn: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        if "scan_network" in statement and statement.lstrip().upper().startswith("INSERT"):
            written.append(len(params) if isinstance(params, list) else 1)

    event.listen(api.service.engine, "before_cursor_execute", count)
    try:
        counter.record(serial, "203.0.113.7")
        counter.flush()
        for _ in range(5):
            counter.record(serial, "203.0.113.9")  # the same /24 network, same day
            counter.flush()
        counter.record(serial, "198.51.100.1")  # a new network is sent
        counter.flush()
    finally:
        event.remove(api.service.engine, "before_cursor_execute", count)
    assert written == [1, 1]
    stats = ScanCounter(api.service.engine, api.settings.secret_key.get_secret_value()).stats(
        serial
    )
    assert (stats.networks, stats.scans) == (2, 2)


def test_stale_counts_are_answered_while_the_task_reads_them_again(api: Api) -> None:
    # Under a steady write load a scan that waited to re-read its counts queued behind the
    # appends for the process's few threads (the fleet benchmark's 1.3 s p99): while the
    # app's task refreshes them, a scan is answered from memory and the task reads them.
    issue_labels(api, 1)
    (serial,) = issued_serials(api)
    secret = api.settings.secret_key.get_secret_value()
    here = ScanCounter(api.service.engine, secret, known_for=0.001)
    there = ScanCounter(api.service.engine, secret)  # another server process
    assert here.stats(serial).networks == 0
    for n in range(3):
        there.record(serial, f"198.51.{n}.1")
    there.flush()
    time.sleep(0.01)  # `here`'s counts are now past their time
    assert here.cached_stats(serial) is None  # no task refreshing: the scan reads itself
    assert here.stats(serial).networks == 3
    here.refresh()  # the task has run once: stale counts are now answered from memory
    for n in range(3, 5):
        there.record(serial, f"198.51.{n}.1")
    there.flush()
    time.sleep(0.01)
    stale = here.cached_stats(serial)
    assert stale is not None
    assert stale.networks == 3
    here.refresh()  # ...and read again by the task
    assert here._known[serial].networks == 5


def test_counts_read_again_in_bulk_cost_three_queries_per_five_hundred_serials(
    api: Api,
) -> None:
    # The task re-reads every serial scanned since its counts went stale; one by one,
    # thousands of them held the GIL for seconds in every worker at once.
    from sqlalchemy import event

    issue_labels(api, 2)
    first, second = issued_serials(api)
    secret = api.settings.secret_key.get_secret_value()
    other = ScanCounter(api.service.engine, secret)
    for n in range(3):
        other.record(first, f"198.51.{n}.1")
    other.record(second, "203.0.113.1")
    other.flush()
    with api.service.engine.begin() as conn:  # a rolled-up past for the first serial
        conn.execute(insert(ROLLUP), [{"serial": first, "scans": 7, "first_day": "2025-01-02"}])
    counter = ScanCounter(api.service.engine, secret)
    counter._stale = {first, second} | {f"UNSEEN{n:010d}" for n in range(1198)}
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(api.service.engine, "before_cursor_execute", count)
    try:
        counter.refresh()
    finally:
        event.remove(api.service.engine, "before_cursor_execute", count)
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 9, seen
    one, two = counter._known[first], counter._known[second]
    assert (one.networks, one.scans, one.first_day) == (3, 10, "2025-01-02")
    assert (two.networks, two.scans) == (1, 1)
    assert len(one.clients) == 3
    assert counter._known["UNSEEN0000000001"].networks == 0
