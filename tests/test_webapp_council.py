"""The council's screens: a rating recorded after its stars and validity are shown, revoked
with a reason; producers and products registered and edited (update statements); users."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from support import PASSWORD, PRODUCT, Api
from webapp_support import browser, field_error, post_form, sign_in, tokens

from ocop_trace.models import PRODUCER, RATING, UPDATE_HISTORY
from ocop_trace.models import PRODUCT as PRODUCTS

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
RATING_FORM = {
    "product_id": PRODUCT["id"],
    "score": "91,14",
    "level": "national",
    "issuing_body": "Bộ Nông nghiệp và Môi trường",
    "decision_no": "123/QĐ-BNNMT",
    "decision_date": "30/06/2026",
    "certificate_no": "OCOP-5S-0001",
    "issued_on": "30/06/2026",
    "evaluation_year": "2026",
}


def _council(api: Api) -> Any:
    assert api.post("/api/v1/products", PRODUCT, "council").status_code == 201
    return sign_in(api, "council")


def _ratings(api: Api) -> int:
    with api.service.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RATING)).scalar_one())


def test_a_rating_is_shown_computed_then_recorded_once(api: Api) -> None:
    council = _council(api)
    shown = post_form(council, "/app/ratings/new", "/app/ratings/new", RATING_FORM, "rating")
    assert shown.status_code == 200
    derived = shown.text.split("data-derived>")[1].split("</div>")[0]
    assert "★★★★★" in derived
    assert "30/06/2029" in derived  # 36 months after the certificate
    assert "<dd>30/06/2026</dd>" in shown.text  # what is confirmed, as people write it
    assert "<dd>Trung ương</dd>" in shown.text
    assert _ratings(api) == 0  # nothing until confirmed
    confirm = {**tokens(shown.text, "rating"), **RATING_FORM, "confirm": "yes"}
    first = council.post("/app/ratings/new", data=confirm)
    second = council.post("/app/ratings/new", data=confirm)
    assert first.status_code == second.status_code == 303
    assert _ratings(api) == 1
    with api.service.engine.connect() as conn:
        row = conn.execute(select(RATING)).one()
    assert (row.score_hundredths, row.stars, row.decision_date) == (9114, 5, "2026-06-30")


@sqlite_only
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"score": "chín mươi"}, "score", "Điểm từ 0 đến 100"),
        ({"score": "100,5"}, "score", "Điểm từ 0 đến 100"),
        ({"level": "commune"}, "level", "Vui lòng chọn một mục trong danh sách."),
        ({"decision_date": "32/13/2026"}, "decision_date", "Ngày chưa đúng"),
        ({"certificate_no": ""}, "certificate_no", "Giá trị này không hợp lệ theo quy định."),
        ({"decision_no": ""}, "decision_no", "Cần ít nhất 1 ký tự."),
        ({"evaluation_year": "năm nay"}, "evaluation_year", "Vui lòng nhập một số nguyên"),
        ({"evaluation_year": "2027"}, "evaluation_year", "Giá trị này không hợp lệ"),
    ],
)
def test_each_rating_field_is_refused_beside_it(
    api: Api, changes: dict[str, str], field: str, message: str
) -> None:
    council = _council(api)
    form = {**RATING_FORM, **changes}
    answer = post_form(council, "/app/ratings/new", "/app/ratings/new", form, "rating")
    assert answer.status_code == 422
    assert field_error(answer.text, field).startswith(message), answer.text
    # Confirming a refused rating writes nothing either.
    sent = council.post(
        "/app/ratings/new", data={**tokens(answer.text, "rating"), **form, "confirm": "yes"}
    )
    assert sent.status_code == 422
    assert _ratings(api) == 0


@sqlite_only
def test_an_inspector_or_producer_cannot_record_or_revoke_ratings(api: Api) -> None:
    council = _council(api)
    shown = post_form(council, "/app/ratings/new", "/app/ratings/new", RATING_FORM, "rating")
    council.post(
        "/app/ratings/new", data={**tokens(shown.text, "rating"), **RATING_FORM, "confirm": "yes"}
    )
    with api.service.engine.connect() as conn:
        rating_id = conn.execute(select(RATING.c.id)).scalar_one()
    for role in ("inspector", "producer"):
        client = sign_in(api, role)
        page = client.get("/app/")
        csrf = tokens(page.text)
        assert client.get("/app/ratings/new").status_code == 403
        sent = client.post("/app/ratings/new", data={**csrf, **RATING_FORM, "confirm": "yes"})
        assert sent.status_code == 403
        assert client.get(f"/app/ratings/{rating_id}/revoke").status_code == 403
        revoke = client.post(f"/app/ratings/{rating_id}/revoke", data={**csrf, "reason": "xyz"})
        assert revoke.status_code == 403
        assert client.get("/app/users").status_code == 403
        assert client.get("/app/producers").status_code == 403
    assert _ratings(api) == 1
    with api.service.engine.connect() as conn:
        assert conn.execute(select(RATING.c.revoked_index)).scalar() is None


def test_revoking_a_rating_needs_a_reason(api: Api) -> None:
    council = _council(api)
    shown = post_form(council, "/app/ratings/new", "/app/ratings/new", RATING_FORM, "rating")
    council.post(
        "/app/ratings/new", data={**tokens(shown.text, "rating"), **RATING_FORM, "confirm": "yes"}
    )
    with api.service.engine.connect() as conn:
        rating_id = conn.execute(select(RATING.c.id)).scalar_one()
    path = f"/app/ratings/{rating_id}/revoke"
    short = post_form(council, path, path, {"reason": "x"}, "revoke")
    assert field_error(short.text, "reason") == "Cần từ 3 đến 500 ký tự."
    done = post_form(council, path, path, {"reason": "không tái đánh giá sau ba năm"}, "revoke")
    assert done.status_code == 303
    with api.service.engine.connect() as conn:
        row = conn.execute(select(RATING)).one()
    assert row.revoked_index is not None
    assert row.revoked_reason == "không tái đánh giá sau ba năm"


def test_producers_and_products_registered_and_edited_as_update_statements(api: Api) -> None:
    council = sign_in(api, "council")
    fields = {
        "name": "HTX Chè Tân Cương",
        "type": "cooperative",
        "registration_no": "4600000001",
        "contact": "",
        "province": "Thái Nguyên",
        "commune": "Tân Cương",
        "line": "xóm Hồng Thái",
    }
    made = post_form(council, "/app/producers", "/app/producers", fields, "producer")
    assert made.status_code == 303, made.text
    assert made.headers["location"].startswith("/app/producers/htx-che-tan-cuong")
    page = "/app/producers/htx-che-tan-cuong"
    edit = {"name": "HTX Chè Tân Cương Thái Nguyên", "contact": "0208 000 000"}
    edited = post_form(council, page, page, edit, "producer-edit")
    assert edited.status_code == 303
    with api.service.engine.connect() as conn:
        name = conn.execute(
            select(PRODUCER.c.name).where(PRODUCER.c.id == "htx-che-tan-cuong")
        ).scalar()
        changes = conn.execute(
            select(UPDATE_HISTORY.c.changes).where(UPDATE_HISTORY.c.subject == "producer")
        ).scalars()
        assert '"contact"' in next(iter(changes))
    assert name == edit["name"]
    assert "0208 000 000" in council.get(page).text  # the history
    unchanged = post_form(council, page, page, edit, "producer-edit")
    assert unchanged.status_code == 422
    assert "Chưa có thay đổi nào để lưu." in unchanged.text
    product = {
        "name_vi": "Chè búp Tân Cương",
        "name_en": "",
        "product_set": "food.tea",
        "gtin": "8936012345675",
        "description": "",
    }
    action = f"{page}/products"
    bad = post_form(council, page, action, product, "product")
    assert bad.status_code == 422
    assert field_error(bad.text, "gtin").startswith("Mã GTIN cần 8, 12, 13 hoặc 14 chữ số")
    good = post_form(council, page, action, {**product, "gtin": ""}, "product")
    assert good.status_code == 303
    fix = {"name_vi": "Chè búp Tân Cương", "name_en": "Tan Cuong tea", "gtin": "8936012345674"}
    changed = post_form(council, page, "/app/products/che-bup-tan-cuong", fix, "product-edit")
    assert changed.status_code == 303
    with api.service.engine.connect() as conn:
        row = conn.execute(select(PRODUCTS).where(PRODUCTS.c.id == "che-bup-tan-cuong")).one()
    assert (row.name_en, row.gtin) == ("Tan Cuong tea", "08936012345674")


@sqlite_only
def test_a_producer_name_too_short_is_refused_and_nothing_written(api: Api) -> None:
    council = sign_in(api, "council")
    before = api.service.store.size()
    answer = post_form(
        council, "/app/producers", "/app/producers", {"name": "A", "province": ""}, "producer"
    )
    assert answer.status_code == 422
    assert field_error(answer.text, "name") == "Cần ít nhất 3 ký tự."
    assert api.service.store.size() == before


@sqlite_only
def test_users_reset_and_disabled(api: Api) -> None:
    council = sign_in(api, "council")
    page = council.get("/app/users")
    reset = council.post("/app/users/producer/reset", data=tokens(page.text))
    assert reset.status_code == 200
    code = reset.text.split("data-one-time-code>")[1].split("<")[0]
    old = post_form(
        browser(api), "/app/login", "/app/login", {"username": "producer", "password": PASSWORD}
    )
    assert old.status_code == 422  # the old password is gone
    fresh = sign_in(api, "producer", code)
    assert fresh.get("/app/").headers["location"] == "/app/password"
    disable = council.post(
        "/app/users/inspector/disable", data={**tokens(page.text), "disabled": "yes"}
    )
    assert disable.status_code == 303
    refused = post_form(
        browser(api), "/app/login", "/app/login", {"username": "inspector", "password": PASSWORD}
    )
    assert refused.status_code == 422
    bad = post_form(
        council,
        "/app/users",
        "/app/users",
        {"username": "Tên Có Dấu", "role": "inspector", "producer_id": ""},
        "user",
    )
    assert field_error(bad.text, "username").startswith("Tên đăng nhập gồm 3–64 ký tự")
    missing = post_form(
        council,
        "/app/users",
        "/app/users",
        {"username": "clerk2", "role": "producer", "producer_id": ""},
        "user",
    )
    assert field_error(missing.text, "producer_id") == "Vui lòng điền mục này."


def test_the_council_dashboard_charts_and_worklist(api: Api) -> None:
    council = _council(api)
    shown = post_form(council, "/app/ratings/new", "/app/ratings/new", RATING_FORM, "rating")
    council.post(
        "/app/ratings/new", data={**tokens(shown.text, "rating"), **RATING_FORM, "confirm": "yes"}
    )
    page = council.get("/app/?done=rating").text
    assert "Đã ghi kết quả đánh giá vào sổ cái." in page
    assert '<svg class="chart"' in page
    assert PRODUCT["name_vi"] in page


def test_a_mistaken_rating_is_corrected_in_one_step(api: Api) -> None:
    council = _council(api)
    wrong = {**RATING_FORM, "score": "61,00", "level": "provincial", "certificate_no": "3S-1"}
    shown = post_form(council, "/app/ratings/new", "/app/ratings/new", wrong, "rating")
    council.post(
        "/app/ratings/new", data={**tokens(shown.text, "rating"), **wrong, "confirm": "yes"}
    )
    with api.service.engine.connect() as conn:
        wrong_id = conn.execute(select(RATING.c.id)).scalar_one()
    revoke_page = council.get(f"/app/ratings/{wrong_id}/revoke").text
    correct = f"/app/ratings/new?replaces={wrong_id}&amp;product={PRODUCT['id']}"
    assert correct in revoke_page
    page = correct.replace("&amp;", "&")
    fields = {**RATING_FORM, "replaces": str(wrong_id), "reason": ""}
    no_reason = post_form(council, page, "/app/ratings/new", fields, "rating")
    assert field_error(no_reason.text, "reason") == "Cần từ 3 đến 500 ký tự."
    fields["reason"] = "nhập nhầm điểm"
    shown = post_form(council, page, "/app/ratings/new", fields, "rating")
    assert "★★★★★" in shown.text
    before = api.service.store.size()
    done = council.post(
        "/app/ratings/new", data={**tokens(shown.text, "rating"), **fields, "confirm": "yes"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/app/?done=corrected"
    assert api.service.store.size() == before + 2  # one append: the right one, the revocation
    with api.service.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(RATING)).all()}
    assert rows[wrong_id].revoked_reason == "nhập nhầm điểm"
    right = next(r for i, r in rows.items() if i != wrong_id)
    assert (right.stars, right.revoked_index) == (5, None)


@sqlite_only
def test_keys_are_listed_and_revoked_by_the_council_only(api: Api) -> None:
    council = sign_in(api, "council")
    page = council.get("/app/keys")
    assert page.status_code == 200
    action_of = page.text.split('action="/app/keys/')[1]  # the first key that can be revoked
    key_id = action_of.split("/")[0]
    action = f"/app/keys/{key_id}/revoke"
    form = f"key-{key_id[:12]}"
    short = post_form(council, "/app/keys", action, {"reason": "x"}, form)
    assert field_error(short.text, f"reason-{key_id[:12]}") == "Cần từ 3 đến 500 ký tự."
    done = post_form(council, "/app/keys", action, {"reason": "máy tính bị mất"}, form)
    assert done.status_code == 303
    assert api.service.store.grants()[key_id].revoked_index is not None
    assert "Đã thu hồi ở bản ghi" in council.get("/app/keys").text
    producer = sign_in(api, "producer")
    assert producer.get("/app/keys").status_code == 403
    assert producer.post(action, data={"reason": "abc"}).status_code == 403
