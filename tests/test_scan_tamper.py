"""A database edited behind the ledger's back: the page names what differs, never says genuine.

Each edit below is one that `verify --db` reports (checked here too); the page must not
show it as truth. Pages are cached per state of the ledger, so each test moves the ledger
on (issues a label set) after editing, as any real use soon would.
"""

from __future__ import annotations

import pytest
from pages import facts, link, scan
from sqlalchemy import text
from support import BATCH, Api, issue_labels, issued_serials

from ocop_trace.rebuild import check_projection


def _edit(api: Api, *sql: str) -> None:
    with api.service.engine.begin() as conn:
        for statement in sql:
            conn.execute(text(statement))
    # Move the ledger on: a new state, so the page is built afresh.
    assert (
        api.post(f"/api/v1/batches/{BATCH['id']}/labels", {"count": 1}, "producer").status_code
        == 201
    )
    api.service.store.publish_checkpoint()


def _page(api: Api, path: str) -> tuple[str, list[str]]:
    _, page, _ = scan(api, path)
    found = facts(api, path)
    assert found["verdict"] == page.verdict
    mismatch = page.fields.get("verdict-mismatch", "")
    assert mismatch.split(",") == found["checks"]["mismatch"] or not mismatch
    return page.verdict, mismatch.split(",") if mismatch else []


def _caught_by_verify(api: Api) -> None:
    failure = check_projection(api.service.store)
    assert failure is not None
    assert failure.reason in ("projection", "label_serials")


@pytest.fixture
def labelled(api: Api) -> str:
    issue_labels(api, 1)
    api.service.store.publish_checkpoint()
    path = link(issued_serials(api)[0])
    verdict, mismatch = _page(api, path)
    assert (verdict, mismatch) == ("genuine", [])
    return path


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            "UPDATE product SET name_vi = 'Miến giả' WHERE id = 'mien-dong-tai-hoan'",
            "product.name_vi",
        ),
        ("UPDATE producer SET name = 'HTX khác' WHERE id = 'htx-tai-hoan'", "producer.name"),
        (
            "UPDATE producer SET current_commune = 'xã khác' WHERE id = 'htx-tai-hoan'",
            "producer.address_current",
        ),
        ("UPDATE rating SET stars = 5, score_hundredths = 9900", "rating.score_hundredths"),
        ("UPDATE rating SET certificate_no = 'FAKE-1'", "rating.certificate_no"),
        ("UPDATE batch SET quantity = 999 WHERE id = 'mien-2026-001'", "batch.quantity"),
        ("UPDATE batch SET lot = 'L2601' WHERE id = 'mien-2026-001'", None),  # unchanged
    ],
)
def test_an_edited_row_is_named_and_the_verdict_is_not_genuine(
    api: Api, labelled: str, edit: str, named: str | None
) -> None:
    _edit(api, edit)
    verdict, mismatch = _page(api, labelled)
    if named is None:  # a no-op edit changes nothing: the check has no false alarms
        assert (verdict, mismatch) == ("genuine", [])
        return
    assert named in mismatch
    assert verdict == "unverified"
    _caught_by_verify(api)


def test_an_un_recalled_batch_still_says_recalled(api: Api, labelled: str) -> None:
    api.post(f"/api/v1/batches/{BATCH['id']}/recall", {"reason": "nấm mốc"}, "producer")
    _edit(
        api,
        "UPDATE batch SET recalled_index = NULL, recall_reason = '', recall_source = ''",
    )
    verdict, mismatch = _page(api, labelled)
    assert verdict == "recalled"  # the ledger's recall entry decides
    assert "recall.hidden" in mismatch
    _caught_by_verify(api)


def test_a_recall_the_rows_invent_is_flagged(api: Api, labelled: str) -> None:
    _edit(
        api,
        "UPDATE batch SET recalled_index = 3, recall_reason = 'giả', "
        "recall_source = 'mien-2026-001'",
    )
    verdict, mismatch = _page(api, labelled)
    assert "recall.invented" in mismatch
    assert verdict == "unverified"
    _caught_by_verify(api)


def test_an_un_revoked_rating_still_says_revoked(api: Api, labelled: str) -> None:
    rating = api.client.get("/api/v1/products/mien-dong-tai-hoan/ratings").json()["items"][0]
    api.post(f"/api/v1/ratings/{rating['id']}/revoke", {"reason": "gian lận"}, "council")
    _edit(api, "UPDATE rating SET revoked_index = NULL, revoked_reason = ''")
    verdict, mismatch = _page(api, labelled)
    assert verdict == "rating_revoked"
    assert "rating_revocation.hidden" in mismatch
    _caught_by_verify(api)


def test_deleted_events_are_missed(api: Api, labelled: str) -> None:
    event = {"biz_step": "packing", "at": "2026-02-01T08:00:00Z", "place": "Bắc Kạn"}
    assert api.post(f"/api/v1/batches/{BATCH['id']}/events", event, "producer").status_code == 201
    _edit(api, "DELETE FROM batchevent")
    verdict, mismatch = _page(api, labelled)
    assert "event.missing" in mismatch
    assert verdict == "unverified"
    _caught_by_verify(api)


def test_an_event_edited_or_added_is_named(api: Api, labelled: str) -> None:
    event = {"biz_step": "packing", "at": "2026-02-01T08:00:00Z", "place": "Bắc Kạn"}
    api.post(f"/api/v1/batches/{BATCH['id']}/events", event, "producer")
    _edit(api, "UPDATE batchevent SET place = 'nơi khác'")
    assert "event.place" in _page(api, labelled)[1]


def test_a_planted_serial_is_not_genuine_nor_are_its_set_s_real_ones(
    api: Api, labelled: str
) -> None:
    fake = "ZZZZZZZZZZZZZZZZ"
    with api.service.engine.connect() as conn:
        set_id = conn.execute(text("SELECT label_set_id FROM label_serial")).scalar()
    _edit(
        api,
        "INSERT INTO label_serial (serial, batch_id, label_set_id) "
        f"VALUES ('{fake}', '{BATCH['id']}', {set_id})",
    )
    verdict, _ = _page(api, link(fake))
    assert verdict == "unverified"
    assert facts(api, link(fake))["serial"]["proven"] is False
    _caught_by_verify(api)
    # A process that never saw the set before it was changed cannot prove any of its
    # serials: what it stores no longer hashes to the signed root.
    from fastapi.testclient import TestClient

    from ocop_trace.app import create_app

    fresh = Api(TestClient(create_app(api.settings)), api.service, api.tokens, api.settings)
    verdict, _ = _page(fresh, labelled)
    assert verdict == "unverified"
    assert "serials" in facts(fresh, labelled)["serial"]["problems"]


def test_lineage_and_upstream_recall_are_read_from_the_entries(api: Api) -> None:
    issue_labels(api, 1)
    noodles = {**BATCH, "id": "mien-2026-002", "lot": "L2602", "inputs": ["mien-2026-001"]}
    api.post("/api/v1/batches", noodles, "producer")
    api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "nấm mốc"}, "producer")
    api.service.store.publish_checkpoint()
    assert _page(api, "/b/mien-2026-002") == ("recalled_upstream", [])
    # The rows forget the recall and the lineage: the ledger still knows both.
    _edit(
        api,
        "UPDATE batch SET recalled_index = NULL, recall_reason = '', recall_source = ''",
        "DELETE FROM batchinput",
    )
    verdict, mismatch = _page(api, "/b/mien-2026-002")
    assert verdict == "recalled_upstream"
    assert {"batch.inputs", "recall.hidden"} <= set(mismatch)


def test_a_product_edited_and_a_rating_added_behind_the_ledger(api: Api, labelled: str) -> None:
    _edit(
        api,
        "INSERT INTO rating (id, product_id, score_hundredths, level, criteria, issuing_body, "
        "decision_no, decision_date, certificate_no, issued_on, evaluation_year, stars, "
        "potential_five, expires_on, revoked_index, revoked_reason) VALUES (2, "
        "'mien-dong-tai-hoan', 9500, 'national', '148/QĐ-TTg', 'Bộ X', 'X-1', '2026-01-01', "
        "'FAKE', '2026-01-01', 2026, 5, false, '2029-01-01', NULL, '')",
    )
    assert "rating.invented" in _page(api, labelled)[1]
