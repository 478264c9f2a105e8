"""Edits as statements: producer.updated and product.updated, their history and the checks."""

from __future__ import annotations

from typing import Any

import pytest
from pages import link, scan
from sqlalchemy import text
from support import BATCH, PRODUCER, PRODUCT, RATING, Api, issue_labels, issued_serials

from ledger import keys
from ledger.errors import LedgerError
from ledger.statement import sign_statement
from ocop_trace.accounts import Principal
from ocop_trace.kinds import KINDS
from ocop_trace.ledger_setup import ROOT_KEY_FILE, init_ledger, load_key, open_service
from ocop_trace.models import ProducerChanges, ProducerCreate
from ocop_trace.reads import field_entries
from ocop_trace.rebuild import check_projection, rebuild
from ocop_trace.settings import Settings

REFORM = {
    "address_current": {"province": "Thái Nguyên", "commune": "xã Côn Minh", "line": "Chè Cọ"}
}


def updates(api: Api, subject: str, subject_id: str, body: dict[str, Any], role: str) -> Any:
    return api.post(f"/api/v1/{subject}s/{subject_id}/updates", body, role)


def test_a_producer_moves_and_its_history_says_when_and_what(api: Api) -> None:
    answer = updates(api, "producer", "htx-tai-hoan", REFORM, "council")
    assert answer.status_code == 201, answer.text
    index = answer.json()["id"]
    producer = api.client.get("/api/v1/producers/htx-tai-hoan").json()
    assert producer["address_current"] == {**REFORM["address_current"], "district": ""}
    assert producer["address_certified"]["district"] == "Na Rì"  # kept as certified
    assert producer["entry_index"] < index  # the registration stays the producer's entry
    items = api.client.get("/api/v1/producers/htx-tai-hoan/history").json()["items"]
    assert [i["entry_index"] for i in items] == [index]
    assert set(items[0]["changes"]) == {"address_current"}
    assert items[0]["previous"]["address_current"]["commune"] == "Côn Minh"
    assert items[0]["issued_at"].endswith("Z")
    entry = api.client.get(f"/api/v1/entries/{index}").json()["entry"]["statement"]
    assert entry["kind"] == "producer.updated"
    assert check_projection(api.service.store) is None


def test_only_the_council_updates_and_bad_updates_are_refused(api: Api) -> None:
    assert updates(api, "producer", "htx-tai-hoan", REFORM, "producer").status_code == 403
    assert updates(api, "producer", "htx-tai-hoan", REFORM, None).status_code == 401
    assert updates(api, "producer", "no-such-one", REFORM, "council").status_code == 404
    assert updates(api, "producer", "htx-tai-hoan", {}, "council").status_code == 422
    half_photo = {"image_url": "https://example.invalid/a.jpg"}
    assert updates(api, "producer", "htx-tai-hoan", half_photo, "council").status_code == 422
    same = {"name": "HTX Tài Hoan"}  # what it already says: no history entry for nothing
    refused = updates(api, "producer", "htx-tai-hoan", same, "council")
    assert refused.status_code == 422
    assert "changes nothing" in refused.json()["error"]["message"]
    assert api.client.get("/api/v1/producers/htx-tai-hoan/history").json()["items"] == []
    assert api.client.get("/api/v1/products/nothing-here/history").status_code == 404


def test_a_gtin_changes_only_while_no_label_carries_it(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/batches", BATCH, "producer")
    first = updates(api, "product", PRODUCT["id"], {"gtin": "8936012345681"}, "council")
    assert first.status_code == 201, first.text
    assert api.client.get(f"/api/v1/products/{PRODUCT['id']}").json()["gtin"] == "08936012345681"
    api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, "producer")
    refused = updates(api, "product", PRODUCT["id"], {"gtin": PRODUCT["gtin"]}, "council")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["field"].endswith("gtin")
    renamed = updates(api, "product", PRODUCT["id"], {"name_vi": "Miến dong Na Rì"}, "council")
    assert renamed.status_code == 201
    history = api.client.get(f"/api/v1/products/{PRODUCT['id']}/history").json()["items"]
    assert [set(i["changes"]) for i in history] == [{"gtin"}, {"name_vi"}]
    assert history[0]["previous"] == {"gtin": "08936012345674"}
    # The projection, history included, is what the ledger alone rebuilds.
    assert check_projection(api.service.store) is None
    with api.service.engine.begin() as conn:
        conn.execute(text("UPDATE update_history SET changes = '{}'"))
    failure = check_projection(api.service.store)
    assert failure is not None
    assert "update_history" in failure.message
    rebuild(api.service.store)
    assert check_projection(api.service.store) is None


def test_the_scan_page_compares_updated_fields_with_the_update_entries(api: Api) -> None:
    issue_labels(api, 1)
    name = updates(api, "product", PRODUCT["id"], {"name_vi": "Miến dong Na Rì"}, "council")
    moved = updates(api, "producer", "htx-tai-hoan", REFORM, "council")
    api.service.store.publish_checkpoint()
    _, page, answer = scan(api, link(issued_serials(api)[0]))
    assert "verdict-mismatch" not in page.fields, page.fields.get("verdict-mismatch")
    assert "Miến dong Na Rì" in page.all_text
    for receipt in (name, moved):  # each update entry is among the page's evidence
        assert f'data-index="{receipt.json()["id"]}"' in answer.text
    with api.service.engine.connect() as conn:
        setters = field_entries(conn, "product", PRODUCT["id"], 0, ["name_vi", "gtin", "image_url"])
    assert setters == {"name_vi": name.json()["id"], "gtin": 0, "image_url": 0}
    # An edit behind the ledger's back of an updated field is still caught.
    with api.service.engine.begin() as conn:
        conn.execute(text("UPDATE product SET name_vi = 'Miến giả'"))
    api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, "producer")
    _, page, _ = scan(api, link(issued_serials(api)[0]))
    assert "product.name_vi" in page.fields["verdict-mismatch"].split(",")


def test_an_older_council_key_is_joined_by_one_that_may_sign_the_new_kinds(
    tmp_path: Any,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", key_dir=tmp_path / "keys")
    init_ledger(settings)
    service = open_service(settings)
    root = load_key(settings, ROOT_KEY_FILE)
    # The only council key held is one an earlier version registered: no update kinds.
    old = keys.generate()
    old_id = keys.key_id(keys.public_bytes(old))
    body = {
        "key_id": old_id,
        "role": "council",
        "name": "council-old",
        "kinds": [k for k in KINDS.signed_by("council") if not k.endswith(".updated")],
        "may_grant": KINDS.signed_by("producer") + KINDS.signed_by("inspector"),
        "subject": "council",
    }
    with service.engine.begin() as conn:
        conn.execute(text("DELETE FROM custodial_key WHERE owner = 'council'"))
    service.store.append(
        [sign_statement("key.registered", body, root)],
        also=lambda conn, _: service.custody.keep(conn, "council", old, "2000-01-01T00:00:00Z"),
    )
    service = open_service(settings)
    council = Principal(None, "t", "council")
    service.register_producer(council, ProducerCreate(**PRODUCER))
    with pytest.raises(LedgerError, match="no authority"):
        service.update_producer(council, "htx-tai-hoan", ProducerChanges(name="AB"))
    init_ledger(settings)  # run again after an upgrade: a council key for the new kinds
    service = open_service(settings)
    held = service.custody.key_for("council")
    assert held is not None
    assert keys.key_id(keys.public_bytes(held)) != old_id
    assert service.update_producer(council, "htx-tai-hoan", ProducerChanges(name="AB")).index
    # A producer key the older council key registered is still revoked, by that key.
    producer_id = keys.key_id(keys.public_bytes(service.producer_key("htx-tai-hoan")))
    assert service.store.grants()[producer_id].registered_by == old_id
    service.revoke_key(council, producer_id, "rotated")
    assert service.store.grants()[producer_id].revoked_index is not None
    size = service.store.size()
    init_ledger(settings)  # nothing more to add
    assert service.store.size() == size


def test_rating_and_batch_still_work_after_updates(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    assert (
        updates(api, "product", PRODUCT["id"], {"name_en": "Noodles"}, "council").status_code == 201
    )
    assert api.post("/api/v1/ratings", RATING, "council").status_code == 201
    assert api.post("/api/v1/batches", BATCH, "producer").status_code == 201
