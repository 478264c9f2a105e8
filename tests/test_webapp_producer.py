"""The producer's screens: dashboard, batch form (each field's message), events, recall with
its confirmation, labels issued and reprinted; and what another producer may not see."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select
from support import OTHER_PRODUCER, PASSWORD, PRODUCT, RATING, Api
from webapp_support import field_error, post_form, sign_in, tokens

from ocop_trace.models import BATCH, EVENT, LABEL_SERIAL

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
GOOD = {
    "product_id": PRODUCT["id"],
    "lot": "L2611",
    "produced_on": "05/11/2026",
    "expires_on": "",
    "quantity": "1.200",
    "unit": "kg",
    "origin": "Côn Minh, Na Rì",
    "notes": "",
}


def _ready(api: Api) -> Any:
    assert api.post("/api/v1/products", PRODUCT, "council").status_code == 201
    assert api.post("/api/v1/ratings", RATING, "council").status_code == 201
    return sign_in(api, "producer")


def _register(client: Any, **changes: str) -> Any:
    return post_form(client, "/app/batches/new", "/app/batches/new", {**GOOD, **changes}, "batch")


def _batches(api: Api) -> int:
    with api.service.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(BATCH)).scalar_one())


def test_register_a_batch_with_a_generated_id_and_dates_as_typed(api: Api) -> None:
    producer = _ready(api)
    form = producer.get("/app/batches/new").text
    assert 'name="id"' not in form  # the id is never typed
    for unit in ("kg", "pack"):
        assert f'value="{unit}"' in form
    answer = _register(producer)
    assert answer.status_code == 303, answer.text
    batch_id = answer.headers["location"].split("/")[3].split("?")[0]
    assert batch_id.startswith("htx-tai-hoan-")
    with api.service.engine.connect() as conn:
        row = conn.execute(select(BATCH).where(BATCH.c.id == batch_id)).one()
    assert (row.produced_on, row.quantity, row.unit, row.lot) == ("2026-11-05", 1200, "kg", "L2611")
    page = producer.get(answer.headers["location"]).text
    assert "05/11/2026" in page  # shown dd/mm/yyyy
    assert "Đã đăng ký lô hàng vào sổ cái." in page
    # The public scan page of the batch shows it too: the same ledger.
    assert api.client.get(f"/b/{batch_id}", headers={"Accept": "text/html"}).status_code == 200


@sqlite_only
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"lot": ""}, "lot", "Cần ít nhất 1 ký tự."),
        (
            {"lot": "L 1"},
            "lot",
            "Chỉ dùng chữ không dấu, chữ số và các dấu GS1 cho phép",
        ),
        ({"lot": "L" * 21}, "lot", "Không được quá 20 ký tự."),
        ({"produced_on": "31/02/2026"}, "produced_on", "Ngày chưa đúng"),
        ({"produced_on": ""}, "produced_on", "Vui lòng điền mục này."),
        ({"expires_on": "01/01/2020"}, "expires_on", "Hạn sử dụng phải sau ngày sản xuất."),
        ({"quantity": "nhiều"}, "quantity", "Vui lòng nhập một số nguyên"),
        ({"unit": "tấn"}, "unit", "Vui lòng chọn một mục trong danh sách."),
        ({"product_id": "someone-elses"}, "product_id", "Vui lòng chọn một mục"),
        ({"origin": "x" * 301}, "origin", "Không được quá 300 ký tự."),
    ],
)
def test_each_batch_field_is_refused_beside_it_and_nothing_is_written(
    api: Api, changes: dict[str, str], field: str, message: str
) -> None:
    producer = _ready(api)
    before = api.service.store.size()
    answer = _register(producer, **changes)
    assert answer.status_code == 422
    assert field_error(answer.text, field).startswith(message), answer.text
    for name, value in changes.items():  # what was typed is kept
        if name not in ("product_id", "unit"):
            assert f'value="{value}"' in answer.text
    assert api.service.store.size() == before


@sqlite_only
def test_messages_follow_the_english_switch(api: Api) -> None:
    producer = _ready(api)
    producer.get("/app/?lang=en")
    answer = _register(producer, quantity="lots")
    assert field_error(answer.text, "quantity") == "Please type a whole number, e.g. 1200."


def test_a_form_sent_twice_registers_one_batch(api: Api) -> None:
    producer = _ready(api)
    page = producer.get("/app/batches/new").text
    data = {**tokens(page, "batch"), **GOOD}
    first = producer.post("/app/batches/new", data=data)
    second = producer.post("/app/batches/new", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert _batches(api) == 1


@sqlite_only
def test_a_duplicate_lot_is_refused_in_words_with_nothing_written(api: Api) -> None:
    producer = _ready(api)
    assert _register(producer).status_code == 303
    before = api.service.store.size()
    again = _register(producer)  # a new form: a new key, the same lot
    assert again.status_code == 422
    assert "Đã có bản ghi trùng" in again.text
    assert api.service.store.size() == before


@sqlite_only
def test_inputs_are_chosen_from_its_own_batches(api: Api) -> None:
    producer = _ready(api)
    first = _register(producer).headers["location"].split("/")[3].split("?")[0]
    form = producer.get("/app/batches/new").text
    assert f'value="{first}"' in form
    made = post_form(
        producer, "/app/batches/new", "/app/batches/new", {**GOOD, "lot": "L2", "inputs": first}
    )
    assert made.status_code == 303
    foreign = _register(producer, lot="L3", inputs="not-mine-at-all")
    assert field_error(foreign.text, "inputs") == "Vui lòng chọn một mục trong danh sách."


def _other_producer(api: Api) -> Any:
    """A second producer, its product, batch and user, signed in to the app."""
    assert api.post("/api/v1/producers", OTHER_PRODUCER, "council").status_code == 201
    product = {**PRODUCT, "id": "mien-tan-son", "producer_id": OTHER_PRODUCER["id"], "gtin": ""}
    assert api.post("/api/v1/products", product, "council").status_code == 201
    user = {
        "username": "tan-son",
        "password": PASSWORD,
        "role": "producer",
        "producer_id": OTHER_PRODUCER["id"],
    }
    assert api.post("/api/v1/users", user, "council").status_code == 201
    return sign_in(api, "tan-son")


def test_a_producer_cannot_see_or_touch_another_producers_batch(api: Api) -> None:
    producer = _ready(api)
    location = _register(producer).headers["location"]
    batch_id = location.split("/")[3].split("?")[0]
    other = _other_producer(api)
    assert other.get(f"/app/batches/{batch_id}").status_code == 404
    assert other.get(f"/app/batches/{batch_id}/recall").status_code == 404
    assert batch_id not in other.get("/app/").text
    page = other.get("/app/batches/new").text
    assert batch_id not in page
    assert PRODUCT["id"] not in page
    before = api.service.store.size()
    csrf = tokens(page, "batch")
    for path, data in (
        (f"/app/batches/{batch_id}/events", {"biz_step": "packing", "at": "2026-11-05T08:00"}),
        (f"/app/batches/{batch_id}/recall", {"reason": "không phải của tôi", "confirm": "yes"}),
        (f"/app/batches/{batch_id}/labels", {"count": "1", "stock": "a4-3x7"}),
    ):
        assert other.post(path, data={**csrf, **data}).status_code == 404, path
    sets = re.findall(r"/app/labels/(\d+)", producer.get(location).text)
    assert api.service.store.size() == before
    issued = post_form(
        producer, location, f"/app/batches/{batch_id}/labels", {"count": "2", "stock": "a4-3x7"}
    )
    set_id = issued.headers["location"].split("/")[3].split("?")[0]
    assert sets == []
    assert other.get(f"/app/labels/{set_id}").status_code == 404
    assert other.get(f"/app/labels/{set_id}/labels.pdf").status_code == 404


@sqlite_only
def test_other_roles_are_refused_the_producer_screens(api: Api) -> None:
    _ready(api)
    for role in ("council", "inspector"):
        client = sign_in(api, role)
        assert client.get("/app/batches/new").status_code == 403, role


def test_an_event_in_local_time_is_stored_in_utc(api: Api) -> None:
    producer = _ready(api)
    location = _register(producer).headers["location"]
    batch_id = location.split("/")[3].split("?")[0]
    fields = {"biz_step": "packing", "at": "2026-11-06T09:00", "place": "Xưởng", "note": ""}
    answer = post_form(producer, location, f"/app/batches/{batch_id}/events", fields, "event")
    assert answer.status_code == 303
    with api.service.engine.connect() as conn:
        at = conn.execute(select(EVENT.c.at).where(EVENT.c.batch_id == batch_id)).scalar_one()
    assert at == "2026-11-06T02:00:00Z"
    page = producer.get(answer.headers["location"]).text
    assert "Đóng gói" in page or "đóng gói" in page.lower()
    bad = post_form(
        producer,
        location,
        f"/app/batches/{batch_id}/events",
        {"biz_step": "dancing", "at": "hôm qua"},
        "event",
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "biz_step") == "Vui lòng chọn một mục trong danh sách."
    assert field_error(bad.text, "at") == "Thời điểm chưa đúng: chọn ngày và giờ."
    future = post_form(
        producer,
        location,
        f"/app/batches/{batch_id}/events",
        {"biz_step": "packing", "at": "2099-01-01T08:00"},
        "event",
    )
    assert field_error(future.text, "at") == "Thời điểm này còn ở tương lai."


@sqlite_only
def test_a_recall_lists_the_downstream_batches_before_it_is_confirmed(api: Api) -> None:
    producer = _ready(api)
    first = _register(producer).headers["location"].split("/")[3].split("?")[0]
    made = _register(producer, lot="L2", inputs=first)
    second = made.headers["location"].split("/")[3].split("?")[0]
    recall = f"/app/batches/{first}/recall"
    short = post_form(producer, recall, recall, {"reason": "x"}, "recall")
    assert field_error(short.text, "reason") == "Cần ít nhất 3 ký tự."
    before = api.service.store.size()
    confirm = post_form(producer, recall, recall, {"reason": "nhiễm ẩm"}, "recall")
    assert confirm.status_code == 200
    assert second in confirm.text.split("data-downstream>")[1]
    assert api.service.store.size() == before  # nothing until confirmed
    done = producer.post(
        recall, data={**tokens(confirm.text, "recall"), "reason": "nhiễm ẩm", "confirm": "yes"}
    )
    assert done.status_code == 303
    with api.service.engine.connect() as conn:
        flagged = conn.execute(select(BATCH.c.recall_source).where(BATCH.c.id == second)).scalar()
    assert flagged == first


def _decode_pdf(pdf: bytes) -> list[str]:
    import pypdfium2 as pdfium
    import zxingcpp

    texts = []
    for page in pdfium.PdfDocument(pdf):
        image = page.render(scale=4).to_pil()
        texts += [b.text for b in zxingcpp.read_barcodes(image)]
    return texts


def test_labels_issued_then_reprinted_without_new_serials(api: Api) -> None:
    producer = _ready(api)
    location = _register(producer).headers["location"]
    batch_id = location.split("/")[3].split("?")[0]
    labels = f"/app/batches/{batch_id}/labels"
    refused = post_form(producer, location, labels, {"count": "0", "stock": "a4-3x7"}, "labels")
    assert refused.status_code == 422
    assert field_error(refused.text, "count") == "Giá trị nằm ngoài khoảng cho phép."
    stock = post_form(producer, location, labels, {"count": "2", "stock": "tờ to"}, "labels")
    assert field_error(stock.text, "stock") == "Vui lòng chọn một mục trong danh sách."
    issued = post_form(producer, location, labels, {"count": "3", "stock": "a4-3x7"}, "labels")
    assert issued.status_code == 303
    set_page = producer.get(issued.headers["location"])
    assert "<svg" in set_page.text  # the preview
    with api.service.engine.connect() as conn:
        serials = set(
            conn.execute(
                select(LABEL_SERIAL.c.serial).where(LABEL_SERIAL.c.batch_id == batch_id)
            ).scalars()
        )
    assert len(serials) == 3
    set_id = issued.headers["location"].split("/")[3].split("?")[0]
    for stock_name in ("a4-3x7", "a4-2x5", "roll-50x30"):
        pdf = producer.get(f"/app/labels/{set_id}/labels.pdf?stock={stock_name}")
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        decoded = _decode_pdf(pdf.content)
        assert {u.rsplit("/", 1)[1] for u in decoded} == serials, stock_name
    with api.service.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(LABEL_SERIAL)).scalar_one()
    assert total == 3  # the reprints issued nothing


def test_the_dashboard_shows_products_ratings_batches_and_a_chart(api: Api) -> None:
    producer = _ready(api)
    _register(producer)
    page = producer.get("/app/").text
    assert PRODUCT["name_vi"] in page
    assert "★" in page
    assert "L2611" in page
    assert '<svg class="chart"' in page
    assert page.count("<rect") == 30  # one bar per day


@sqlite_only
def test_all_its_batches_a_page_at_a_time(api: Api) -> None:
    producer = _ready(api)
    _register(producer)
    _register(producer, lot="L2612")
    page = producer.get("/app/batches?page=1").text
    assert "L2611" in page
    assert "L2612" in page
    assert "Tổng cộng 2 lô" in page
    assert "/app/batches?page=1&amp;lang=en" in page  # the switch keeps the page
    assert "L2611" not in producer.get("/app/batches?page=2").text
    assert producer.get("/app/batches?page=abc").status_code == 200
    assert sign_in(api, "council").get("/app/batches").status_code == 403
