"""The HTTP API on SQLite and PostgreSQL: the OCOP flow, roles, errors, idempotency, caching."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text
from support import (
    BATCH,
    CLI,
    EVENT,
    OTHER_PRODUCER,
    PASSWORD,
    PRODUCER,
    PRODUCT,
    RATING,
    Api,
    issue_labels,
    issued_serials,
)

from ledger import keys
from ledger.statement import sign_statement
from ocop_trace.app import create_app
from ocop_trace.ledger_setup import init_ledger, open_service
from ocop_trace.rebuild import check_projection, rebuild
from ocop_trace.schema import SchemaOutOfDate
from ocop_trace.settings import Settings


def assert_error(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert len(body["error"]["message"]) > 10
    return dict(body["error"])


def test_health_and_checkpoint(api: Api) -> None:
    health = api.client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["ledger_size"] >= 4
    note = api.client.get("/api/v1/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    assert note.text.startswith("ocop-trace.local/ledger\n")
    assert "\n\n\u2014 " in note.text


def test_full_ocop_flow(api: Api) -> None:
    assert api.post("/api/v1/products", PRODUCT, "council").status_code == 201
    rating = api.post("/api/v1/ratings", RATING, "council")
    assert rating.status_code == 201, rating.text
    ratings = api.client.get("/api/v1/products/mien-dong-tai-hoan/ratings").json()["items"]
    assert ratings[0]["stars"] == 5
    assert ratings[0]["expires_on"] == "2027-06-30"
    assert ratings[0]["status"] in ("valid", "expiring", "expired")
    assert api.post("/api/v1/batches", BATCH, "producer").status_code == 201
    noodles = {**BATCH, "id": "mien-2026-002", "lot": "L2602", "inputs": ["mien-2026-001"]}
    assert api.post("/api/v1/batches", noodles, "producer").status_code == 201
    assert api.post("/api/v1/batches/mien-2026-001/events", EVENT, "producer").status_code == 201
    events = api.client.get("/api/v1/batches/mien-2026-001/events").json()["items"]
    assert [e["biz_step"] for e in events] == ["packing"]
    recall = api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "mould found"}, "producer")
    assert recall.status_code == 201
    downstream = api.client.get("/api/v1/batches/mien-2026-002").json()
    assert downstream["recalled"] is True
    assert downstream["recall_source"] == "mien-2026-001"
    assert downstream["inputs"] == ["mien-2026-001"]
    assert api.client.get("/api/v1/batches/mien-2026-001").json()["outputs"] == ["mien-2026-002"]
    inspection = api.post(
        "/api/v1/inspections",
        {"batch_id": "mien-2026-002", "result": "fail", "findings": "recalled stock on sale"},
        "inspector",
    )
    assert inspection.status_code == 201, inspection.text
    assert check_projection(api.service.store) is None


WRITES = [
    ("/api/v1/producers", OTHER_PRODUCER, "council"),
    ("/api/v1/products", PRODUCT, "council"),
    ("/api/v1/ratings", RATING, "council"),
    ("/api/v1/batches", BATCH, "producer"),
    ("/api/v1/batches/mien-2026-001/events", EVENT, "producer"),
    ("/api/v1/batches/mien-2026-001/recall", {"reason": "mould found"}, "producer"),
    ("/api/v1/inspections", {"batch_id": "mien-2026-001", "result": "pass"}, "inspector"),
    ("/api/v1/users", {"username": "x-user", "password": PASSWORD, "role": "inspector"}, "council"),
    ("/api/v1/ratings/1/revoke", {"reason": "not re-evaluated"}, "council"),
    ("/api/v1/producers/htx-tai-hoan/keys", {"key_id": "ab" * 32, "name": "k"}, "council"),
]


@pytest.mark.parametrize(("path", "body", "allowed"), WRITES, ids=[w[0] for w in WRITES])
def test_every_write_refuses_other_roles(api: Api, path: str, body: Any, allowed: str) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/batches", BATCH, "producer")
    size = api.service.store.size()
    assert_error(api.post(path, body, None), 401, "not_authenticated")
    for role in ("council", "producer", "inspector"):
        if role != allowed:
            assert_error(api.post(path, body, role), 403, "forbidden")
    assert api.service.store.size() == size, "a refused write appended something"


def test_producer_cannot_act_for_another_producer(api: Api) -> None:
    api.post("/api/v1/producers", OTHER_PRODUCER, "council")
    other = {**PRODUCT, "id": "gao-tan-son", "producer_id": "htx-tan-son"}
    assert api.post("/api/v1/products", other, "council").status_code == 201
    error = assert_error(
        api.post("/api/v1/batches", {**BATCH, "product_id": "gao-tan-son"}, "producer"),
        403,
        "forbidden",
    )
    assert "belongs to another producer" in error["message"]
    # Nothing of the refused statement was written (the projection refuses inside the append)
    assert api.client.get("/api/v1/batches/mien-2026-001").status_code == 404


def test_a_batch_as_large_as_its_form_allows_is_registered_and_read_back(api: Api) -> None:
    # 10**12 base units (a million tonnes in grams): past PostgreSQL's 32-bit INTEGER,
    # which answered 500 (migration 0016 widened the column).
    api.post("/api/v1/products", PRODUCT, "council")
    largest = {**BATCH, "quantity": 10**12}
    assert api.post("/api/v1/batches", largest, "producer").status_code == 201
    assert api.client.get(f"/api/v1/batches/{BATCH['id']}").json()["quantity"] == 10**12
    too_large = {**BATCH, "id": "mien-2026-002", "lot": "L2", "quantity": 10**12 + 1}
    assert assert_error(api.post("/api/v1/batches", too_large, "producer"), 422, "invalid_input")


def test_a_batch_registration_says_what_is_taken_or_missing(api: Api) -> None:
    # The projection asks its three questions in one statement under the head lock; what
    # it refuses, and which rule it names first, is the same as when it asked them apart,
    # and the field named is the body's own (it was "statements[0].id": the body is signed
    # as the one statement of an append).
    api.post("/api/v1/products", PRODUCT, "council")
    assert api.post("/api/v1/batches", BATCH, "producer").status_code == 201
    size = api.service.store.size()

    def refused(body: dict[str, Any], status: int, code: str) -> str:
        return str(
            assert_error(api.post("/api/v1/batches", body, "producer"), status, code)["field"]
        )

    assert refused({**BATCH, "lot": "L9999"}, 409, "conflict") == "id"
    assert refused({**BATCH, "id": "mien-2026-777"}, 409, "conflict") == "lot"
    nowhere = {**BATCH, "id": "mien-2026-778", "product_id": "khong-co"}
    assert refused(nowhere, 404, "not_found") == "product_id"
    assert refused({**BATCH, "product_id": "khong-co"}, 409, "conflict") == "id"  # id first
    assert api.service.store.size() == size, "a refused registration appended something"
    # A producer's registration is signed with its key's: the field is the body's there too.
    producer = assert_error(api.post("/api/v1/producers", PRODUCER, "council"), 409, "conflict")
    assert producer["field"] == "id"
    assert (
        api.post(
            "/api/v1/batches", {**BATCH, "id": "mien-2026-779", "lot": "L9"}, "producer"
        ).status_code
        == 201
    )


def test_errors_have_one_shape_and_say_what_to_fix(api: Api) -> None:
    assert_error(api.client.get("/api/v1/producers/nobody"), 404, "not_found")
    assert_error(api.client.get("/no/such/route"), 404, "not_found")
    error = assert_error(
        api.post("/api/v1/products", {**PRODUCT, "gtin": "8936012345670"}, "council"),
        422,
        "invalid_input",
    )
    assert "check digit" in error["message"]
    error = assert_error(
        api.post("/api/v1/ratings", {**RATING, "product_id": "nope"}, "council"), 404, "not_found"
    )
    api.post("/api/v1/products", PRODUCT, "council")
    error = assert_error(
        api.post(
            "/api/v1/ratings",
            {**RATING, "level": "provincial", "score_hundredths": 4000},
            "council",
        ),
        422,
        "invalid_input",
    )
    assert "certificate" in error["message"]
    assert_error(api.post("/api/v1/products", PRODUCT, "council"), 409, "conflict")
    assert_error(
        api.client.get("/api/v1/producers", headers={"Authorization": "Bearer nope"}),
        401,
        "not_authenticated",
    )
    assert_error(api.client.get("/api/v1/producers?limit=0"), 422, "invalid_input")
    assert_error(
        api.client.post("/api/v1/auth/token", json={"username": "council", "password": "wrong"}),
        401,
        "not_authenticated",
    )


def test_idempotency_key_replays_the_first_answer(api: Api) -> None:
    first = api.post("/api/v1/products", PRODUCT, "council", **{"Idempotency-Key": "k-1"})
    size = api.service.store.size()
    again = api.post("/api/v1/products", PRODUCT, "council", **{"Idempotency-Key": "k-1"})
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.service.store.size() == size
    assert_error(
        api.post(
            "/api/v1/products",
            {**PRODUCT, "name_vi": "Khác"},
            "council",
            **{"Idempotency-Key": "k-1"},
        ),
        409,
        "conflict",
    )


def test_same_signed_statement_is_appended_once(api: Api) -> None:
    producer_key = keys.generate()
    public = keys.key_id(keys.public_bytes(producer_key))
    api.post("/api/v1/products", PRODUCT, "council")
    assert (
        api.post(
            "/api/v1/producers/htx-tai-hoan/keys", {"key_id": public, "name": "offline"}, "council"
        ).status_code
        == 201
    )
    statement = sign_statement("batch.registered", BATCH, producer_key).to_json()
    first = api.post("/api/v1/statements", [statement], "producer")
    assert first.status_code == 201, first.text
    again = api.post("/api/v1/statements", [statement], "producer")
    assert again.json()["receipts"][0]["duplicate"] is True
    assert again.json()["receipts"][0]["index"] == first.json()["receipts"][0]["index"]
    stranger = sign_statement("batch.registered", {**BATCH, "id": "x-1"}, keys.generate())
    assert_error(api.post("/api/v1/statements", [stranger.to_json()], "producer"), 403, "forbidden")
    forged = {**statement, "body": {**BATCH, "quantity": 1}}
    assert_error(api.post("/api/v1/statements", [forged], "council"), 422, "invalid_input")


def test_public_reads_have_etags_and_pages(api: Api) -> None:
    first = api.client.get("/api/v1/producers?limit=1")
    assert first.json()["total"] == 1
    assert first.json()["items"][0]["address_current"]["province"] == "Thái Nguyên"
    cached = api.client.get(
        "/api/v1/producers?limit=1", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert cached.status_code == 304
    api.post("/api/v1/producers", OTHER_PRODUCER, "council")
    changed = api.client.get(
        "/api/v1/producers?limit=1", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert changed.status_code == 200
    assert changed.json()["total"] == 2


def test_entry_and_proofs(api: Api) -> None:
    answer = api.client.get("/api/v1/entries/0").json()
    assert answer["entry"]["index"] == 0
    assert answer["tree_size"] == api.service.store.size()
    proof = api.client.get("/api/v1/proofs/consistency?first=1&second=2")
    assert proof.status_code == 200
    assert_error(
        api.client.get("/api/v1/proofs/consistency?first=3&second=2"), 422, "invalid_input"
    )


def test_tokens_can_be_revoked(api: Api) -> None:
    me = api.client.get("/api/v1/auth/me", headers=api.as_("producer")).json()
    assert me["producer_id"] == "htx-tai-hoan"
    token = api.client.post(
        "/api/v1/auth/token", json={"username": "producer", "password": PASSWORD}
    ).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert (
        api.client.delete(f"/api/v1/auth/tokens/{token['token_id']}", headers=headers).status_code
        == 204
    )
    assert_error(api.client.get("/api/v1/auth/me", headers=headers), 401, "not_authenticated")


def test_projection_edit_behind_the_ledger_is_reported(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    with api.service.engine.begin() as conn:
        conn.execute(
            text("UPDATE product SET name_vi = 'Hàng giả' WHERE id = 'mien-dong-tai-hoan'")
        )
    failure = check_projection(api.service.store)
    assert failure is not None
    assert failure.reason == "projection"
    assert "product row mien-dong-tai-hoan, column name_vi" in failure.message
    assert (failure.expected, failure.found) == ("Miến dong Tài Hoan", "Hàng giả")


def test_rebuild_recreates_the_live_projection(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/ratings", RATING, "council")
    api.post("/api/v1/batches", BATCH, "producer")
    api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "mould found"}, "producer")
    before = api.client.get("/api/v1/batches/mien-2026-001").json()
    with api.service.engine.begin() as conn:
        conn.execute(text("DELETE FROM batch"))
    assert check_projection(api.service.store) is not None
    assert rebuild(api.service.store) == api.service.store.size()
    assert check_projection(api.service.store) is None
    assert api.client.get("/api/v1/batches/mien-2026-001").json() == before


def test_checkpoint_publishing_roles(api: Api) -> None:
    assert_error(api.client.post("/api/v1/checkpoint"), 401, "not_authenticated")
    for role in ("producer", "inspector"):  # the council only, as the docs say
        assert_error(api.client.post("/api/v1/checkpoint", headers=api.as_(role)), 403, "forbidden")
    published = api.client.post("/api/v1/checkpoint", headers=api.as_("council"))
    assert published.status_code == 200
    assert api.client.get("/api/v1/checkpoint").text == published.text


def test_app_refuses_a_stale_schema(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}", key_dir=tmp_path / "keys"
    )
    init_ledger(settings)
    with open_service(settings).engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(SchemaOutOfDate, match="run 'ocop-trace init'"):
        create_app(settings)


def test_settings_refuse_a_placeholder_secret_outside_development() -> None:
    with pytest.raises(ValidationError, match="TRACE_SECRET_KEY"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="TRACE_SECRET_KEY"):
        Settings(environment="production", secret_key="short")
    with pytest.raises(ValidationError, match="TRACE_PUBLIC_URL must be set"):
        Settings(environment="production", secret_key="x" * 40)  # no sheet with a localhost link
    real = Settings(environment="production", secret_key="x" * 40, public_url="https://ocop.vn")
    assert real.public_url == "https://ocop.vn"
    assert Settings().public_url == "http://127.0.0.1:8000"  # development only


def test_issued_labels_resolve_and_the_ledger_commits_to_them(api: Api) -> None:
    answer = issue_labels(api, 3)
    assert answer.status_code == 201, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")
    assert answer.headers["X-Label-Count"] == "3"
    serials = issued_serials(api)
    assert len(serials) == 3
    assert len(set(serials)) == 3
    entry = api.client.get(f"/api/v1/entries/{answer.headers['X-Ledger-Index']}").json()
    body = entry["entry"]["statement"]["body"]
    assert body["count"] == 3
    assert all(s not in json.dumps(entry) for s in serials), "the ledger must not list serials"
    link = f"/01/08936012345674/10/L2601/21/{serials[0]}"
    resolved = api.client.get(link)
    assert resolved.status_code == 200, resolved.text
    facts = resolved.json()
    assert facts["verdict"] == "genuine"
    assert facts["product"]["name_vi"] == "Miến dong Tài Hoan"
    assert facts["rating"]["stars"] == 5
    assert 'rel="linkset"' in resolved.headers["Link"]
    assert check_projection(api.service.store) is None


def test_resolver_answers_linkset_redirects_head_options(api: Api) -> None:
    issue_labels(api, 1)
    link = f"/01/08936012345674/10/L2601/21/{issued_serials(api)[0]}"
    linkset = api.client.get(link + "?linkType=linkset")
    assert linkset.headers["content-type"].startswith("application/linkset+json")
    levels = linkset.json()["linkset"]  # the product, its lot, the label (issue 17)
    assert len(levels) == 3
    for relation in ("pip", "certificationInfo", "traceability", "defaultLink"):
        found = [x for level in levels for x in level.get(f"https://gs1.org/voc/{relation}", [])]
        assert found, relation
        assert all(x["href"].startswith("http") for x in found)
    same = api.client.get(link, headers={"Accept": "application/linkset+json"})
    assert same.json() == linkset.json()
    redirect = api.client.get(link + "?linkType=gs1:certificationInfo", follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"].endswith("/api/v1/products/mien-dong-tai-hoan/ratings")
    assert api.client.head(link).status_code == 200
    options = api.client.options(link)
    assert options.status_code == 204
    assert "GET" in options.headers["Allow"]
    well_known = api.client.get("/.well-known/gs1resolver").json()
    assert well_known["supportedPrimaryKeys"] == ["01"]
    assert well_known["supportedLinkType"][0]["prefix"] == "gs1:"


def test_unknown_or_malformed_codes(api: Api) -> None:
    issue_labels(api, 1)
    unknown = api.client.get("/01/08936012345674/10/L2601/21/0000000000000000")
    error = assert_error(unknown, 404, "not_found")
    assert "counterfeit" in error["message"]
    bad = api.client.get("/01/08936012345670/10/L2601")
    error = assert_error(bad, 400, "bad_link")
    assert "check digit" in error["message"]
    assert_error(api.client.get("/l/not-a-serial"), 400, "bad_link")


def test_label_issuing_roles_and_formats(api: Api) -> None:
    assert issue_labels(api, 1, "svg").headers["content-type"].startswith("image/svg+xml")
    png = api.post(
        "/api/v1/batches/mien-2026-001/labels", {"count": 1, "format": "png"}, "producer"
    )
    assert png.content.startswith(b"\x89PNG")
    assert_error(
        api.post("/api/v1/batches/mien-2026-001/labels", {"count": 2, "format": "png"}, "producer"),
        422,
        "invalid_input",
    )
    for role in ("council", "inspector"):
        assert_error(
            api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, role), 403, "forbidden"
        )
    assert_error(
        api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, None),
        401,
        "not_authenticated",
    )


def test_verify_notices_serials_changed_behind_the_ledger(api: Api) -> None:
    issue_labels(api, 2)
    with api.service.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE label_serial SET serial = '0000000000000000' "
                "WHERE serial = (SELECT MIN(serial) FROM label_serial)"
            )
        )
    failure = check_projection(api.service.store)
    assert failure is not None
    assert failure.reason == "label_serials"


def test_a_sheet_that_does_not_fit_issues_nothing(api: Api) -> None:
    issue_labels(api, 1)
    size = api.service.store.size()
    serials = issued_serials(api)
    error = assert_error(
        api.post(
            "/api/v1/batches/mien-2026-001/labels",
            {"count": 5, "columns": 4, "label_width_mm": 63.5},
            "producer",
        ),
        422,
        "invalid_input",
    )
    assert "A4" in error["message"]
    assert api.service.store.size() == size
    assert issued_serials(api) == serials
    custom = api.post(
        "/api/v1/batches/mien-2026-001/labels",
        {
            "count": 4,
            "columns": 2,
            "rows": 2,
            "label_width_mm": 90,
            "label_height_mm": 50,
            "qr_mm": 40,
        },
        "producer",
    )
    assert custom.status_code == 201
    assert custom.content.startswith(b"%PDF")


def test_the_running_app_signs_checkpoints_for_new_entries(tmp_path: Path) -> None:
    import time

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 't.db'}",
        key_dir=tmp_path / "k",
        checkpoint_interval=0.2,
    )
    init_ledger(settings)
    service = open_service(settings)
    service.create_user(CLI, "council", PASSWORD, "council", "")
    with TestClient(create_app(settings)) as client:  # runs the app's lifespan
        token = client.post(
            "/api/v1/auth/token", json={"username": "council", "password": PASSWORD}
        ).json()["token"]
        assert (
            client.post(
                "/api/v1/producers", json=PRODUCER, headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 201
        )
        size = service.store.size()
        for _ in range(50):
            if f"\n{size}\n" in client.get("/api/v1/checkpoint").text:
                break
            time.sleep(0.1)
        assert f"\n{size}\n" in client.get("/api/v1/checkpoint").text


def test_ids_too_large_for_the_database_are_refused_as_input(api: Api) -> None:
    # Found by schemathesis: these reached the driver and overflowed SQLite's INTEGER.
    huge = 2**70
    for method, path, body in (
        ("DELETE", f"/api/v1/auth/tokens/{huge}", None),
        ("POST", f"/api/v1/ratings/{huge}/revoke", {"reason": "sai số liệu"}),
    ):
        answer = api.client.request(method, path, json=body, headers=api.as_("council"))
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["code"] == "invalid_input"
