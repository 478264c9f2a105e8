"""Voiding a misprinted label set (labels.voided): its serials scan as not registered with
the producer's reason, through the API, the staff app and the command line."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pages import JSON, link, scan
from sqlalchemy import select
from support import BATCH, OTHER_PRODUCER, PASSWORD, PRODUCT, Api, issued_serials
from test_api import assert_error
from typer.testing import CliRunner
from webapp_support import field_error, post_form, sign_in, tokens

from ledger.bundle_export import store_records
from ledger.verifier import verify
from ocop_trace.cli import app as cli
from ocop_trace.models import LABEL_SET
from ocop_trace.rebuild import check_projection, rebuild

REASON = "in nhầm số lô"
runner = CliRunner()


def _issue(api: Api, count: int) -> tuple[int, list[str]]:
    """A label set of `count` serials for the batch (made first if need be): its index and
    serials, with a checkpoint so its pages are proven."""
    before = set(issued_serials(api))
    if not before:
        api.post("/api/v1/products", PRODUCT, "council")
        assert api.post("/api/v1/batches", BATCH, "producer").status_code == 201
    answer = api.post(f"/api/v1/batches/{BATCH['id']}/labels", {"count": count}, "producer")
    assert answer.status_code == 201, answer.text
    api.service.store.publish_checkpoint()
    return int(answer.headers["X-Ledger-Index"]), sorted(set(issued_serials(api)) - before)


def _void(api: Api, index: int, role: str | None = "producer", **headers: str) -> Any:
    return api.post(f"/api/v1/label-sets/{index}/void", {"reason": REASON}, role, **headers)


def _voided(api: Api, index: int) -> Any:
    with api.service.engine.connect() as conn:
        return conn.execute(select(LABEL_SET).where(LABEL_SET.c.id == index)).one()


def test_a_voided_set_scans_as_not_registered_with_the_reason(api: Api) -> None:
    index, serials = _issue(api, 3)
    assert scan(api, link(serials[0]))[1].verdict == "no_rating"  # registered before
    answer = _void(api, index)
    assert answer.status_code == 201, answer.text
    receipt = answer.json()["receipt"]
    assert receipt["index"] == answer.json()["id"] > index
    assert _voided(api, index).voided_index == receipt["index"]
    for serial in serials:
        for path in (link(serial), f"/l/{serial}"):
            status, page, _ = scan(api, path)
            assert (status, page.verdict) == (404, "not_registered"), path
            note = page.fields["text:voided"]
            assert "đã bị chính nhà sản xuất hủy" in note
            assert REASON in note
            assert "(giờ Việt Nam)" in note
            error = assert_error(api.client.get(path, headers=JSON), 404, "not_found")
            assert error["details"]["verdict"] == "not_registered"
            voided = error["details"]["voided"]
            assert (voided["label_set"], voided["index"]) == (index, receipt["index"])
            assert voided["reason"] == REASON
            assert voided["at"].endswith("Z")
            linkset = api.client.get(path + "?linkType=linkset")
            assert linkset.status_code == 404  # a voided code offers no links either
    status, page, _ = scan(api, link(serials[0]) + "?lang=en")
    assert (status, page.lang) == (404, "en")
    assert "voided by its own producer" in page.fields["text:voided"]
    assert REASON in page.fields["text:voided"]
    # A code never issued says nothing about voids.
    status, page, _ = scan(api, link("0000000000000000"))
    assert (status, page.verdict, page.fields.get("text:voided")) == (404, "not_registered", None)


def test_only_the_batch_producer_voids_once_and_an_unknown_set_is_not_found(api: Api) -> None:
    index, _ = _issue(api, 1)
    assert api.post("/api/v1/producers", OTHER_PRODUCER, "council").status_code == 201
    user = {"username": "tan-son", "password": PASSWORD, "role": "producer"}
    user["producer_id"] = OTHER_PRODUCER["id"]
    assert api.post("/api/v1/users", user, "council").status_code == 201
    other = api.client.post(
        "/api/v1/auth/token", json={"username": "tan-son", "password": PASSWORD}
    ).json()["token"]
    size = api.service.store.size()
    refused = api.client.post(
        f"/api/v1/label-sets/{index}/void",
        json={"reason": REASON},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert_error(refused, 403, "forbidden")
    assert_error(_void(api, index, "council"), 403, "forbidden")
    assert_error(_void(api, index, "inspector"), 403, "forbidden")
    assert_error(_void(api, index, None), 401, "not_authenticated")
    assert_error(_void(api, 999_999), 404, "not_found")
    assert api.service.store.size() == size  # nothing refused was appended
    assert _void(api, index).status_code == 201
    again = assert_error(_void(api, index), 409, "conflict")
    assert "already voided" in again["message"]
    assert api.service.store.size() == size + 1


def test_a_reason_is_required_and_short(api: Api) -> None:
    index, _ = _issue(api, 1)
    for body, field in (
        ({}, "reason"),
        ({"reason": "ab"}, "reason"),
        ({"reason": "x" * 201}, "reason"),
        ({"reason": "một\ndòng"}, "reason"),
    ):
        answer = api.post(f"/api/v1/label-sets/{index}/void", body, "producer")
        error = assert_error(answer, 422, "invalid_input")
        assert error["field"] == field, body
    assert_error(_void(api, 0), 422, "invalid_input")  # no set is entry 0
    assert _voided(api, index).voided_index is None


def test_the_same_idempotency_key_voids_once(api: Api) -> None:
    index, _ = _issue(api, 1)
    size = api.service.store.size()
    first = _void(api, index, **{"Idempotency-Key": "void-once-0001"})
    again = _void(api, index, **{"Idempotency-Key": "void-once-0001"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert api.service.store.size() == size + 1


def test_no_cached_page_or_serial_check_outlives_the_void(api: Api) -> None:
    index, voided = _issue(api, 2)
    _, kept = _issue(api, 1)  # another set of the same batch, not voided
    for serial in (*voided, *kept):  # each page and serial check cached
        assert scan(api, link(serial))[0] == 200
    assert _void(api, index).status_code == 201
    # The batch's page at the new ledger state, built by a valid serial first, is not
    # filled for a voided one.
    assert scan(api, link(kept[0]))[0] == 200
    for serial in voided:
        status, page, _ = scan(api, link(serial))
        assert (status, page.verdict) == (404, "not_registered")
        assert api.client.get(link(serial), headers=JSON).status_code == 404
    assert scan(api, link(kept[0]))[1].verdict == "no_rating"


def test_a_lagging_page_cache_stops_serving_a_voided_code_after_its_lag(api: Api) -> None:
    from fastapi.testclient import TestClient

    from ocop_trace.app import create_app

    index, serials = _issue(api, 1)
    settings = api.settings.model_copy(update={"page_cache_seconds": 0.5})
    lagging = Api(TestClient(create_app(settings)), api.service, api.tokens, api.settings)
    assert scan(lagging, link(serials[0]))[0] == 200
    assert _void(api, index).status_code == 201
    time.sleep(0.6)
    status, page, _ = scan(lagging, link(serials[0]))
    assert (status, page.verdict) == (404, "not_registered")


def test_verify_and_rebuild_keep_the_void(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    index, _ = _issue(api, 2)
    assert _void(api, index).status_code == 201
    api.service.store.publish_checkpoint()
    store = api.service.store
    assert check_projection(store) is None  # what verify --db checks besides the ledger
    report = verify(store_records(store), store.root_key_id, workers=1)
    assert report.ok, report.failure
    assert report.to_json()["kinds"]["labels.voided"] == 1
    monkeypatch.setenv("TRACE_KEY_DIR", str(api.settings.key_dir))
    result = runner.invoke(cli, ["verify", "--db", api.settings.database_url])
    assert result.exit_code == 0, result.stdout
    assert "VALID" in result.stdout
    before = _voided(api, index)
    rebuild(store)
    after = _voided(api, index)
    assert after.voided_index == before.voided_index is not None
    assert (after.voided_reason, after.voided_at) == (REASON, before.voided_at)


def test_the_command_line_voids_a_set(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    index, serials = _issue(api, 1)
    monkeypatch.setenv("TRACE_KEY_DIR", str(api.settings.key_dir))
    url = api.settings.database_url
    args = ["labels-void", "--set", str(index), "--db", url]
    result = runner.invoke(cli, [*args, "--reason", "x"])
    assert result.exit_code == 2
    result = runner.invoke(cli, [*args, "--reason", REASON])
    assert result.exit_code == 0, result.stderr
    assert f"voided label set {index}" in result.stdout
    assert scan(api, link(serials[0]))[0] == 404
    result = runner.invoke(cli, [*args, "--reason", REASON])
    assert result.exit_code == 2
    assert "already voided" in result.stderr
    unknown = ["labels-void", "--set", "999999", "--reason", REASON, "--db", url]
    result = runner.invoke(cli, unknown)
    assert result.exit_code == 2
    assert "no label set 999999" in result.stderr


# -- the staff app ------------------------------------------------------------------------
def test_the_app_voids_a_set_after_confirmation(api: Api) -> None:
    index, serials = _issue(api, 3)
    producer = sign_in(api, "producer")
    page = f"/app/labels/{index}"
    action = f"{page}/void"
    assert "data-stock" in producer.get(page).text  # printable before
    size = api.service.store.size()
    missing = post_form(producer, page, action, {"reason": ""}, "void")
    assert missing.status_code == 422
    assert field_error(missing.text, "reason") == "Cần ít nhất 3 ký tự."
    long = post_form(producer, page, action, {"reason": "dài " * 60}, "void")
    assert field_error(long.text, "reason") == "Không được quá 200 ký tự."
    assert ("dài " * 60).strip() in long.text  # what was typed is kept
    confirm = post_form(producer, page, action, {"reason": REASON}, "void")
    assert confirm.status_code == 200
    assert "Tôi hiểu rằng 3 mã này sẽ không còn hợp lệ." in confirm.text
    assert api.service.store.size() == size  # nothing until confirmed
    unticked = {**tokens(confirm.text, "void"), "reason": REASON, "step": "confirm"}
    told = producer.post(action, data=unticked)  # the confirmation sent without its tick
    assert told.status_code == 422
    assert field_error(told.text, "confirm") == "Vui lòng đánh dấu ô xác nhận để hủy bộ tem."
    assert f'name="reason" value="{REASON}"' in told.text  # the reason is kept
    assert api.service.store.size() == size
    fields = {**tokens(confirm.text, "void"), "reason": REASON, "confirm": "yes"}
    done = producer.post(action, data=fields)
    assert done.status_code == 303
    assert done.headers["location"] == f"{page}?done=voided"
    twice = producer.post(action, data=fields)  # the same form sent again
    assert (twice.status_code, twice.headers["location"]) == (303, done.headers["location"])
    assert api.service.store.size() == size + 1
    shown = producer.get(done.headers["location"]).text
    assert "data-voided" in shown
    assert REASON in shown
    assert "data-stock" not in shown  # no longer offered for printing
    assert 'data-form="void"' not in shown
    assert producer.get(f"{page}/labels.pdf").status_code == 409
    assert "data-voided" in producer.get(f"/app/batches/{BATCH['id']}").text
    assert scan(api, link(serials[0]))[0] == 404


def test_the_app_answers_in_english_and_hides_another_producers_set(api: Api) -> None:
    index, _ = _issue(api, 1)
    producer = sign_in(api, "producer")
    producer.get("/app/?lang=en")
    page = f"/app/labels/{index}"
    missing = post_form(producer, page, f"{page}/void", {"reason": "ab"}, "void")
    assert missing.status_code == 422
    assert field_error(missing.text, "reason") == "Needs at least 3 characters."
    assert ">ab</textarea>" in missing.text
    assert api.post("/api/v1/producers", OTHER_PRODUCER, "council").status_code == 201
    user = {"username": "tan-son", "password": PASSWORD, "role": "producer"}
    user["producer_id"] = OTHER_PRODUCER["id"]
    assert api.post("/api/v1/users", user, "council").status_code == 201
    other = sign_in(api, "tan-son")
    assert other.get(f"/app/labels/{index}").status_code == 404
    assert other.get(f"/app/labels/{index}/void").status_code == 404
    csrf = tokens(other.get("/app/batches/new").text, "batch")
    fields = {**csrf, "reason": REASON, "confirm": "yes"}
    assert other.post(f"/app/labels/{index}/void", data=fields).status_code == 404
    assert _voided(api, index).voided_index is None


def test_a_producer_key_older_than_voiding_is_told_to_rotate(api: Api) -> None:
    from ledger import keys
    from ledger.statement import utc_now
    from ocop_trace.kinds import KINDS
    from ocop_trace.service import _registration

    index, serials = _issue(api, 1)
    service = api.service
    # A key as an earlier version registered it: every producer kind but labels.voided.
    council, old = service.custody.key_for("council"), keys.generate()
    assert council is not None
    kinds = [k for k in KINDS.signed_by("producer") if k != "labels.voided"]
    registration = _registration(council, old, "producer", "htx-tai-hoan", kinds, "htx-tai-hoan")
    keep = lambda conn, _: service.custody.keep(conn, "producer:htx-tai-hoan", old, utc_now())  # noqa: E731
    service.store.append([registration], also=keep)
    refused = assert_error(_void(api, index), 409, "conflict")
    assert "/keys/rotate" in refused["message"]
    rotate = api.post("/api/v1/producers/htx-tai-hoan/keys/rotate", {"reason": "void"}, "council")
    assert rotate.status_code == 201, rotate.text
    assert _void(api, index).status_code == 201
    assert scan(api, link(serials[0]))[0] == 404
