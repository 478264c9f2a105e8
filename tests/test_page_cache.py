"""Scan pages are kept until an entry about what they show arrives (site/cache.py).

Nationally the ledger gains entries every second; a page rebuilt on every one of them was
never served from the cache (the fleet benchmark, docs/performance.md). Each test scans,
changes the ledger, and counts what the next scan reads from the database.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from pages import GTIN, link, scan
from sqlalchemy import event, text
from support import BATCH, EVENT, PRODUCER, Api, issue_labels, issued_serials

from ocop_trace.app import create_app
from ocop_trace.scan_facts import Target
from ocop_trace.site import scan as scan_module
from ocop_trace.site.cache import MAX_TOUCHED, REREAD_SECONDS, Claim, Page, ScanPages


@contextmanager
def reads(api: Api) -> Iterator[list[str]]:
    """The SQL statements the public side runs inside the block."""
    seen: list[str] = []
    engine = api.client.app.state.public.store.engine

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def rebuilt(statements: list[str]) -> bool:
    return any("FROM product" in s for s in statements)


def other_batch(api: Api, batch_id: str = "mien-2026-009") -> None:
    answer = api.post("/api/v1/batches", {**BATCH, "id": batch_id, "lot": "L2609"}, "producer")
    assert answer.status_code == 201, answer.text
    event_ = {**EVENT, "batch_id": batch_id}
    assert api.post(f"/api/v1/batches/{batch_id}/events", event_, "producer").status_code == 201


def test_a_page_outlives_entries_about_other_batches(api: Api) -> None:
    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    assert scan(api, path)[1].verdict == "genuine"
    other_batch(api)
    # Buffered scan counts are written by a scan when two seconds pass with no app task
    # to write them (as here): written now, so the scan below is not the one that does.
    api.client.app.state.scans.flush()
    with reads(api) as seen:
        _, page, _ = scan(api, path)
    assert page.verdict == "genuine"
    # The ledger's state and the new entries' subjects, nothing of the page itself.
    assert not rebuilt(seen), seen
    assert len([s for s in seen if s != "BEGIN"]) <= 3, [s[:80] for s in seen]


def test_an_entry_about_the_page_rebuilds_it_at_once(api: Api) -> None:
    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    before = scan(api, path)[1]
    place = "Xưởng đóng gói Tài Hoan, Hà Nội"
    event_ = {**EVENT, "biz_step": "shipping", "place": place}
    assert api.post("/api/v1/batches/mien-2026-001/events", event_, "producer").status_code == 201
    with reads(api) as seen:
        _, after, answer = scan(api, path)
    assert rebuilt(seen)
    assert place in answer.text
    assert place not in str(before.fields)
    assert after.verdict == "genuine"


def test_a_revocation_and_an_upstream_recall_reach_cached_pages(api: Api) -> None:
    issue_labels(api, 1)
    noodles = {**BATCH, "id": "mien-2026-002", "lot": "L2602", "inputs": ["mien-2026-001"]}
    assert api.post("/api/v1/batches", noodles, "producer").status_code == 201
    api.post("/api/v1/batches/mien-2026-002/labels", {"count": 1}, "producer")
    with api.service.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT batch_id, serial FROM label_serial")).all())
    downstream = link(rows["mien-2026-002"], "L2602")
    assert scan(api, downstream)[1].verdict == "genuine"
    # The recall is about the input batch, not this page's: its lineage names it.
    api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "nấm mốc"}, "producer")
    assert scan(api, downstream)[1].verdict == "recalled_upstream"
    rating = api.client.get("/api/v1/products/mien-dong-tai-hoan/ratings").json()["items"][0]
    revoke = {"reason": "không tái đánh giá"}
    assert api.post(f"/api/v1/ratings/{rating['id']}/revoke", revoke, "council").status_code == 201
    page = scan(api, downstream)[1]
    assert page.fields["status"] == "revoked"  # the rating's own subject reached the page


def test_a_key_entry_or_a_flood_of_entries_clears_every_page(api: Api) -> None:
    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    scan(api, path)
    # A new producer comes with its custodial key's registration: an entry with no
    # subject, which may change whose signatures count, so nothing kept is trusted.
    producer = {**PRODUCER, "id": "htx-moi", "name": "HTX Mới"}
    assert api.post("/api/v1/producers", producer, "council").status_code == 201
    with reads(api) as seen:
        scan(api, path)
    assert rebuilt(seen)
    cache: ScanPages = api.client.app.state.pages
    assert len(cache._pages) == 1
    # More new entries than are worth reading one by one: everything goes.
    size = cache.read_generation()[0]
    cache._generation = (size - MAX_TOUCHED - 1, *cache._generation[1:])  # type: ignore[index]
    cache.read_generation()
    assert len(cache._pages) == 0


def test_a_page_names_an_older_checkpoint_for_at_most_the_configured_time(api: Api) -> None:
    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    api.service.store.publish_checkpoint()
    keeping = api.settings.model_copy(update={"page_checkpoint_seconds": 3600})
    patient = Api(TestClient(create_app(keeping)), api.service, api.tokens, keeping)
    named = scan(patient, path)[1].fields["text:checkpoint"]
    other_batch(api)
    api.service.store.publish_checkpoint()
    # Still true of the checkpoint it names; nothing about its product changed.
    assert scan(patient, path)[1].fields["text:checkpoint"] == named
    # With page_checkpoint_seconds=0 (the fixture's) a new checkpoint rebuilds the page.
    assert scan(api, path)[1].fields["text:checkpoint"] != named


def _one_kept_page(api: Api) -> tuple[ScanPages, Any, Page]:
    """A label scanned once: the cache, its one page's key and the page."""
    issue_labels(api, 1)
    scan(api, link(issued_serials(api)[0]))
    cache: ScanPages = api.client.app.state.pages
    (key,) = list(cache._pages._items)
    page = cache.page(key)
    assert page is not None
    return cache, key, page


def test_a_builder_that_read_an_older_snapshot_keeps_nothing_stale(api: Api) -> None:
    # A page built from a snapshot taken before a read of the ledger that dropped its
    # subjects must not be kept: it would show the old facts until the next such entry.
    cache, key, page = _one_kept_page(api)
    built = cache.read_generation()[0]
    other_batch(api)
    cache.read_generation()  # the entries about mien-2026-009 are read and dropped
    cache._pages.clear()
    touched = dataclasses.replace(page, subjects=frozenset({"batch:mien-2026-009"}))
    cache.keep(key, touched, built)
    assert cache.page(key) is None
    cache.keep(key, page, built)  # about mien-2026-001 only: nothing since touched it
    assert cache.page(key) is page
    cache._pages.clear()
    cache.keep(key, page, built - 1)  # older than anything the cache remembers
    assert cache.page(key) is None


def test_one_scan_rebuilds_a_page_for_a_newer_checkpoint_while_the_others_get_it(
    api: Api,
) -> None:
    # Every page built at once (after a deployment, say) came due at once, and every scan
    # of it rebuilt it: the fleet benchmark's scans fell from 2,800/s to 160/s for a round.
    cache, key, page = _one_kept_page(api)
    generation = cache.read_generation()
    assert cache.claim(key, page, generation) is Claim.SERVE  # names the newest checkpoint
    newer = (generation[0], generation[1] + 1, generation[2])
    assert cache.checkpoint_age == 0  # the fixture's: stale at once, so built by the scan
    assert cache.claim(key, page, newer) is Claim.BUILD  # this scan rebuilds it...
    assert cache.claim(key, page, newer) is Claim.SERVE  # ...the next ones are served it
    cache.keep(key, page, generation[0])  # the rebuilt page is kept: the claim ends
    assert cache.claim(key, page, newer) is Claim.BUILD
    cache.keep(key, page, generation[0])
    patient = ScanPages(cache.witnessing, 0, checkpoint_age=60)
    renew_at, stale_at = patient.deadlines()
    now = time.monotonic()
    assert 30 <= renew_at - now <= 45
    # Past its checkpoint age a page is still renewed behind the scan that finds it due
    # (the fleet benchmark's idle fleet came back to pages all past it, and its scans
    # built them); one nobody scanned for ten minutes is built by the scan.
    assert REREAD_SECONDS - 1 <= stale_at - now <= REREAD_SECONDS
    slow = ScanPages(cache.witnessing, 0, checkpoint_age=3600)
    assert 3599 <= slow.deadlines()[1] - time.monotonic() <= 3600
    young = dataclasses.replace(page, renew_at=renew_at, stale_at=stale_at)
    assert patient.claim(("other",), young, newer) is Claim.SERVE
    due = dataclasses.replace(young, renew_at=now - 1)
    assert patient.claim(("other",), due, newer) is Claim.RENEW
    patient.release(("other",))
    assert patient.claim(("other",), dataclasses.replace(due, stale_at=now), newer) is Claim.BUILD


def test_pages_that_came_due_together_are_rebuilt_one_at_a_time(api: Api) -> None:
    # A hundred pages warmed together came due together for a new checkpoint, and their
    # first scans rebuilt them all at once: every thread of a worker building pages, the
    # fleet benchmark's scans down to 90/s for a round. One rebuild at a time per process;
    # the other due pages are served as they were (still true of the checkpoint they name).
    cache, key, page = _one_kept_page(api)
    generation = cache.read_generation()
    newer = (generation[0], generation[1] + 1, generation[2])
    others = [("other", n) for n in range(5)]
    assert cache.claim(key, page, newer) is Claim.BUILD  # claimed
    assert all(cache.claim(other, page, newer) is Claim.SERVE for other in others)  # no claim
    cache.keep(key, page, generation[0])  # that rebuild is done
    assert cache.claim(others[0], page, newer) is Claim.BUILD  # the next one's turn
    assert cache.claim(others[1], page, newer) is Claim.SERVE


@dataclasses.dataclass
class _Due:
    patient: Api  # serves the api's ledger; its pages may name an older checkpoint for 60 s
    cache: ScanPages
    path: str
    named: str  # the checkpoint its kept page names
    key: Any


def _due_page(api: Api, stale: bool) -> _Due:
    """A label's page kept, then a newer checkpoint, and the page made due for renewal
    (`stale`: past its last moment too)."""
    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    api.service.store.publish_checkpoint()
    keeping = api.settings.model_copy(update={"page_checkpoint_seconds": 60})
    patient = Api(TestClient(create_app(keeping)), api.service, api.tokens, keeping)
    cache: ScanPages = patient.client.app.state.pages  # type: ignore[attr-defined]
    named = scan(patient, path)[1].fields["text:checkpoint"]
    other_batch(api)
    api.service.store.publish_checkpoint()
    cache.read_generation(again=True)
    (key,) = list(cache._pages._items)
    page = cache.page(key)
    assert page is not None
    now = time.monotonic()
    due = dataclasses.replace(page, renew_at=now - 1, stale_at=now - 1 if stale else now + 60)
    cache._pages.put(key, due, due.subjects)
    return _Due(patient, cache, path, named, key)


def test_a_page_due_for_a_newer_checkpoint_is_served_at_once_and_renewed_behind(
    api: Api,
) -> None:
    # The scan that found a page due built it itself, a few hundred milliseconds under
    # load: one such scan per page per checkpoint age, and the fleet benchmark's p99 was
    # theirs (0.56-1.3 s, docs/performance.md). It is now served the page as it was.
    due = _due_page(api, stale=False)
    cache = due.cache
    gate = threading.Event()
    cache.renew(("busy",), lambda: gate.wait(30))  # the renewal thread held: queued behind
    with reads(due.patient) as statements:
        status, page, _ = scan(due.patient, due.path)
    assert status == 200
    assert page.fields["text:checkpoint"] == due.named
    assert not rebuilt(statements)  # the scan built nothing itself
    assert cache.page(due.key).named != cache.read_generation()[1:]  # type: ignore[union-attr]
    gate.set()
    cache.close(wait=True)  # the renewal, off the scan's thread, is done
    renewed = cache.page(due.key)
    assert renewed is not None
    assert renewed.named == cache.read_generation()[1:]
    assert scan(due.patient, due.path)[1].fields["text:checkpoint"] != due.named


def _renewed(due: _Due) -> Page:
    """The due page renewed (as the scan that finds it due has it renewed), and kept."""
    cache = due.cache
    page = cache.page(due.key)
    assert page is not None
    assert cache.claim(due.key, page, cache.read_generation()) is Claim.RENEW
    target = Target(serial=issued_serials(due.patient)[0], gtin=GTIN, lot="L2601")  # link()'s
    scan_module._renew(_request(due.patient), target, due.key)
    renewed = cache.page(due.key)
    assert renewed is not None
    return renewed


def test_a_renewal_proves_the_pages_entries_again_and_reads_none_of_its_rows(api: Api) -> None:
    # A renewal read the whole page again, a few hundred milliseconds of PostgreSQL under
    # the fleet benchmark's load (80 % of it waiting on the database): one renewal thread
    # could not reach a worker's pages before they went stale and the scans built them.
    due = _due_page(api, stale=False)
    old = due.cache.page(due.key)
    assert old is not None
    assert old.view is not None
    assert old.view.checkpoint is not None
    with reads(due.patient) as statements:
        renewed = _renewed(due)
    assert not rebuilt(statements)  # no product row, nor any other row of the page
    assert not any("FROM batch" in s or "subject = " in s for s in statements), statements
    assert renewed.named == due.cache.read_generation()[1:]
    assert renewed.read_at == old.read_at  # its rows were not read again
    assert renewed.view is not None
    newer = renewed.view.checkpoint
    assert newer is not None
    assert newer["size"] > old.view.checkpoint["size"]
    proven = [c for c in renewed.view.checks if c.short_hash]
    assert proven
    assert all(c.proof.tree_size == newer["size"] for c in proven)
    assert [c.part for c in renewed.view.checks] == [c.part for c in old.view.checks]
    page = scan(due.patient, due.path)[1]
    assert page.fields["text:checkpoint"] != due.named
    assert page.verdict == "genuine"


def test_rows_changed_without_an_entry_show_once_a_renewal_reads_them_again(api: Api) -> None:
    # No entry announces rows rewritten under a running server: a renewal that only proves
    # the entries again would show the old rows for as long as the page is kept.
    due = _due_page(api, stale=False)
    with api.service.engine.begin() as conn:
        conn.execute(text("UPDATE batch SET quantity = quantity + 1 WHERE id = 'mien-2026-001'"))
    assert _renewed(due).view.mismatch == []  # type: ignore[union-attr]
    page = due.cache.page(due.key)
    assert page is not None
    due.cache._pages.put(
        due.key,
        # ten minutes after its rows were read, and due for a newer checkpoint again
        dataclasses.replace(
            page, read_at=time.monotonic() - REREAD_SECONDS - 1, named=(-1, 0), renew_at=0
        ),
        page.subjects,
    )
    due.cache.release(due.key)
    assert due.cache.rereads(due.cache.page(due.key))  # type: ignore[arg-type]
    assert "batch.quantity" in _renewed(due).view.mismatch  # type: ignore[union-attr]


def test_a_page_past_its_last_moment_is_built_by_the_scan(api: Api) -> None:
    # Built the way a renewal is (its entries proven again, see below): the rows the scan
    # needs (the product, the batch, the serial) are read, the page's entries are not.
    due = _due_page(api, stale=True)
    with reads(due.patient) as statements:
        assert scan(due.patient, due.path)[1].fields["text:checkpoint"] != due.named
    assert rebuilt(statements)
    about = [s for s in statements if "subject = " in s]
    assert len(about) == 1, about  # its label set is not voided; the whole page asks more
    page = due.cache.page(due.key)
    assert page is not None
    assert page.named == due.cache.read_generation()[1:]


def test_a_renewal_that_fails_leaves_the_page_and_lets_a_later_scan_try(
    api: Api, caplog: Any
) -> None:
    due = _due_page(api, stale=False)
    cache, key = due.cache, due.key
    page = cache.page(key)
    assert page is not None
    generation = cache.read_generation()
    assert cache.claim(key, page, generation) is Claim.RENEW

    def failing() -> None:
        raise RuntimeError("the database went away")

    cache.renew(key, failing)
    cache.close(wait=True)
    assert cache.page(key) is page  # still served as it was
    assert cache.claim(key, page, generation) is Claim.RENEW  # the claim ended: tried again
    cache.release(key)
    # What the site's renewal does when its build fails: logs it, keeps nothing (a page
    # due to have its rows read again, for a batch that is not there).
    stale_rows = dataclasses.replace(page, read_at=time.monotonic() - REREAD_SECONDS - 1)
    cache._pages.put(key, stale_rows, page.subjects)
    page = stale_rows
    with caplog.at_level("ERROR", logger="ocop_trace"):
        scan_module._renew(_request(due.patient), Target(batch_id="no-such-batch"), key)
    assert "renewing the scan page" in caplog.text
    assert cache.page(key) is page


def _request(api: Api) -> Any:
    """A request to the api's app, as a scan's would be after its answer was sent."""
    from starlette.requests import Request

    app = api.client.app
    scope = {"type": "http", "app": app, "query_string": b"", "headers": [], "method": "GET"}
    return Request(scope)


def test_the_ledgers_state_is_read_ahead_so_kept_pages_need_no_thread(api: Api) -> None:
    # Once a lag's worth of time had passed, the next scan of a kept page read the ledger's
    # state in a thread, behind whatever builds and appends held the threads.
    # A lag of 1 s, read ahead every 0.5 s: half a second of slack for a loaded machine.
    lagging = api.settings.model_copy(update={"page_cache_seconds": 1.0})
    with TestClient(create_app(lagging)) as client:
        cache: ScanPages = client.app.state.pages  # type: ignore[attr-defined]
        cache.read_generation()
        for _ in range(3):
            time.sleep(1.2)  # longer than the lag each time: only the app's task renews it
            assert cache.generation() is not None
    unread = ScanPages(cache.witnessing, 1.0)
    unread.read_generation()
    time.sleep(1.2)
    assert unread.generation() is None  # what the scans found before
