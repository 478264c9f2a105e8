"""The scan page, parsed (not compared with snapshots), for each state and both languages."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from typing import Any

import pytest
from support import BATCH, PRODUCT, RATING, Api, issue_labels, issued_serials

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


class Page(HTMLParser):
    """Collects data-* attributes with the text inside their elements, and <html lang>."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.lang = ""
        self.fields: dict[str, str] = {}
        self.text: list[str] = []
        self._open: list[tuple[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang") or ""
        for name, value in attrs:
            if name.startswith("data-"):
                # data-field="lot" names a value; data-verdict="recalled" is one.
                key = value or "" if name == "data-field" else name[5:]
                if name != "data-field":
                    self.fields[key] = value or ""
                self._open.append((tag, key))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for _, name in self._open:
            key = f"text:{name}"
            self.fields[key] = self.fields.get(key, "") + data

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def scan(api: Api, path: str, **headers: str) -> tuple[int, Page, Any]:
    answer = api.client.get(path, headers={**HTML, **headers})
    return answer.status_code, Page(answer.text), answer


def link(serial: str) -> str:
    return f"/01/08936012345674/10/L2601/21/{serial}"


def test_valid_label_in_vietnamese(api: Api) -> None:
    issue_labels(api, 1)
    api.service.store.publish_checkpoint()
    status, page, answer = scan(api, link(issued_serials(api)[0]))
    assert status == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert len(answer.content) < 50_000
    assert page.lang == "vi"
    assert page.fields["verdict"] == "registered"
    assert page.fields["text:product"] == "Miến dong Tài Hoan"
    assert page.fields["status"] == "valid" or page.fields["status"] == "expiring"
    assert page.fields["text:lot"] == "L2601"
    assert "★★★★★" in page.all_text
    assert "91.14" in page.all_text
    assert "DEMO-5S-0001" in page.all_text
    assert "trước 1/7/2025" in page.fields["text:historical"]
    assert "Merkle" in page.fields["text:evidence"]
    assert "script" not in answer.text.lower()


def test_english_by_query_or_header(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    _, page, _ = scan(api, link(serial) + "?lang=en")
    assert page.lang == "en"
    assert page.fields["text:product"] == "Tài Hoan arrowroot noodles"
    assert "Genuine product" in page.all_text
    _, page, _ = scan(api, link(serial), **{"Accept-Language": "en-GB,en;q=0.9"})
    assert page.lang == "en"


def test_recalled_and_recalled_upstream(api: Api) -> None:
    issue_labels(api, 1)
    noodles = {**BATCH, "id": "mien-2026-002", "lot": "L2602", "inputs": ["mien-2026-001"]}
    api.post("/api/v1/batches", noodles, "producer")
    api.post("/api/v1/batches/mien-2026-002/labels", {"count": 1}, "producer")
    api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "nấm mốc"}, "producer")
    with api.service.engine.connect() as conn:
        from sqlalchemy import text

        rows = dict(conn.execute(text("SELECT batch_id, serial FROM label_serial")).all())
    _, page, _ = scan(api, link(rows["mien-2026-001"]))
    assert page.fields["verdict"] == "recalled"
    assert "nấm mốc" in page.fields["text:verdict"]
    _, page, _ = scan(api, f"/01/08936012345674/10/L2602/21/{rows['mien-2026-002']}")
    assert page.fields["verdict"] == "recalled_upstream"


def test_unknown_and_malformed_codes_get_pages(api: Api) -> None:
    issue_labels(api, 1)
    status, page, _ = scan(api, link("0000000000000000"))
    assert status == 404
    assert page.fields["verdict"] == "unknown"
    assert "hàng giả" in page.all_text
    status, page, _ = scan(api, "/01/08936012345670/10/L2601?lang=en")
    assert status == 400
    assert page.fields["verdict"] == "bad_link"
    assert "check digit" in page.all_text


def test_a_code_scanned_too_often_is_flagged_as_a_copy(api: Api) -> None:
    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    threshold = api.settings.copy_scan_threshold
    for _ in range(threshold):
        _, page, _ = scan(api, path)
    assert "verdict-copied" not in page.fields
    _, page, _ = scan(api, path)
    assert page.fields["verdict-copied"] == "copied"
    assert f"{threshold + 1}" in page.fields["text:verdict-copied"]
    api.client.app.state.scans.flush()
    facts = api.client.get(path, headers={"Accept": "application/json"}).json()
    assert facts["scans"]["count"] == threshold + 2
    assert facts["scans"]["may_be_copied"] is True


def test_many_networks_flag_a_copy_and_no_address_is_stored(api: Api) -> None:
    from fastapi.testclient import TestClient

    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    app = api.client.app
    for n in range(api.settings.copy_network_threshold + 1):
        with TestClient(app, client=(f"203.0.{n}.7", 40000)) as client:
            client.get(path, headers={"Accept": "application/json"})
    app.state.scans.flush()
    facts = api.client.get(path, headers={"Accept": "application/json"}).json()
    # one more: the reading request itself, from the test client's own address
    assert facts["scans"]["networks"] == api.settings.copy_network_threshold + 2
    assert facts["scans"]["may_be_copied"] is True
    with api.service.engine.connect() as conn:
        from sqlalchemy import text

        stored = " ".join(
            str(v) for row in conn.execute(text("SELECT * FROM scan_client")) for v in row
        )
    assert "203.0." not in stored


class Form(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.inputs: dict[str, str] = {}
        self.action = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        if tag == "input" and values.get("type") == "hidden":
            self.inputs[values.get("name") or ""] = values.get("value") or ""


def test_report_a_fake_from_the_unknown_code_page(api: Api) -> None:
    issue_labels(api, 1)
    status, _, answer = scan(api, link("0000000000000000"))
    assert status == 404
    form = Form(answer.text)
    assert form.action == "/report"
    assert form.inputs["serial"] == "0000000000000000"
    assert answer.cookies.get("ocop_csrf") == form.inputs["csrf"]
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    sent = api.client.post(
        "/report",
        headers=HTML,
        data={**form.inputs, "note": "giá quá rẻ", "where_bought": "chợ Đồng Xuân"},
        files={"photo": ("p.png", png, "image/png")},
    )
    assert sent.status_code == 201, sent.text
    assert Page(sent.text).fields["verdict"] == "reported"
    listed = api.client.get("/api/v1/reports", headers=api.as_("inspector")).json()
    assert listed["total"] == 1
    report = listed["items"][0]
    assert report["note"] == "giá quá rẻ"
    assert report["photo_size"] == len(png)
    assert "photo" not in report
    assert "testclient" not in str(report)  # the client's address is never stored
    assert api.client.get("/api/v1/reports", headers=api.as_("producer")).status_code == 403


def test_report_form_refuses_forgery_big_photos_and_floods(api: Api) -> None:
    issue_labels(api, 1)
    _, _, answer = scan(api, link(issued_serials(api)[0]))
    form = Form(answer.text)
    assert form.inputs["csrf"]
    api.client.cookies.clear()
    forged = api.client.post("/report", data=form.inputs)
    assert forged.status_code == 403
    _, _, answer = scan(api, link(issued_serials(api)[0]))
    form = Form(answer.text)
    too_big = api.client.post(
        "/report",
        data=form.inputs,
        files={"photo": ("p.jpg", b"0" * (2 * 1024 * 1024 + 1), "image/jpeg")},
    )
    assert too_big.status_code == 422
    wrong_kind = api.client.post(
        "/report", data=form.inputs, files={"photo": ("p.exe", b"MZ", "application/octet-stream")}
    )
    assert wrong_kind.status_code == 422
    answers = [api.client.post("/report", data=form.inputs).status_code for _ in range(6)]
    assert answers.count(201) == 3  # 2 refused ones above counted against the hour too
    assert answers[-1] == 429


def _rated_label(api: Api, issued_on: str) -> str:
    api.post("/api/v1/products", PRODUCT, "council")
    rating = api.post(
        "/api/v1/ratings", {**RATING, "issued_on": issued_on, "decision_date": issued_on}, "council"
    )
    assert rating.status_code == 201, rating.text
    api.post("/api/v1/batches", BATCH, "producer")
    api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, "producer")
    return link(issued_serials(api)[0])


def test_expired_certificate_is_unmistakable(api: Api) -> None:
    path = _rated_label(api, "2022-03-01")
    for lang, word in (("vi", "Hết hiệu lực"), ("en", "Expired")):
        _, page, _ = scan(api, path + f"?lang={lang}")
        assert page.fields["status"] == "expired"
        assert word in page.all_text
    assert "2025-02-28" in page.fields["text:valid-until"]


def test_expiring_certificate(api: Api) -> None:
    from datetime import timedelta

    from ocop_trace import ocop

    issued = ocop.add_months(ocop.today_in_vietnam(), -36) + timedelta(days=10)
    _, page, _ = scan(api, _rated_label(api, issued.isoformat()))
    assert page.fields["status"] == "expiring"
    assert "Sắp hết hiệu lực" in page.all_text


def test_revoked_rating(api: Api) -> None:
    path = _rated_label(api, "2025-09-01")
    rating_id = api.client.get("/api/v1/products/mien-dong-tai-hoan/ratings").json()["items"][0]
    api.post(
        f"/api/v1/ratings/{rating_id['id']}/revoke", {"reason": "không tái đánh giá"}, "council"
    )
    _, page, _ = scan(api, path + "?lang=en")
    assert page.fields["status"] == "revoked"
    assert "Revoked" in page.all_text


def test_offline_signed_label_and_lineage_links(api: Api) -> None:
    path = _rated_label(api, "2025-09-01")
    noodles = {**BATCH, "id": "mien-2026-002", "lot": "L2602", "inputs": ["mien-2026-001"]}
    api.post("/api/v1/batches", noodles, "producer")
    from ocop_trace.offline import sign_label_url

    key = api.service.producer_key("htx-tai-hoan")
    signed = sign_label_url("http://testserver" + path, key).removeprefix("http://testserver")
    _, page, _ = scan(api, signed)
    assert page.fields["signature"] == "valid"
    _, page, _ = scan(api, signed[:-4] + "AAAA")
    assert page.fields["signature"] == "invalid"
    status, page, answer = scan(api, "/b/mien-2026-002")
    assert status == 200
    assert page.fields["input"] == "mien-2026-001"
    assert 'href="/b/mien-2026-001?lang=vi"' in answer.text


def test_a_batch_row_edited_behind_the_ledger_is_not_shown_as_truth(api: Api) -> None:
    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    _, page, _ = scan(api, path)
    assert "verdict-mismatch" not in page.fields
    with api.service.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("UPDATE batch SET quantity = 999 WHERE id = 'mien-2026-001'"))
    # Pages are cached per state of the ledger, so the edit shows once the ledger moves on.
    api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, "producer")
    _, page, _ = scan(api, path)
    assert page.fields["verdict-mismatch"] == "batch.quantity"


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
        ("UPDATE rating SET expires_on = '2099-01-01'", "rating.expires_on"),
    ],
)
def test_product_producer_and_rating_rows_are_checked_against_their_entries(
    api: Api, edit: str, named: str
) -> None:
    issue_labels(api, 1)
    api.service.store.publish_checkpoint()
    path = link(issued_serials(api)[0])
    _, page, answer = scan(api, path)
    assert "verdict-mismatch" not in page.fields
    parts = {p.split('"')[0] for p in answer.text.split('data-entry="')[1:]}
    assert parts == {"batch", "product", "producer", "rating"}
    assert answer.text.count('data-proof="verified"') == 4
    with api.service.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text(edit))
    api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, "producer")
    _, page, _ = scan(api, path)
    assert named in page.fields["verdict-mismatch"].split(",")


def test_cached_pages_lag_the_ledger_by_at_most_the_configured_time(api: Api) -> None:
    from fastapi.testclient import TestClient

    from ocop_trace.app import create_app

    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    lagging = Api(
        TestClient(create_app(api.settings.model_copy(update={"page_cache_seconds": 0.5}))),
        api.service,
        api.tokens,
        api.settings,
    )
    _, page, _ = scan(lagging, path)
    assert page.fields["verdict"] == "registered"
    api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "nấm mốc"}, "producer")
    # Within the lag the cached page may still be served; after it, never.
    time.sleep(0.6)
    _, page, _ = scan(lagging, path)
    assert page.fields["verdict"] == "recalled"


def test_cached_pages_still_count_each_scan_and_get_their_own_form_token(api: Api) -> None:
    issue_labels(api, 2)
    first, second = (link(s) for s in issued_serials(api))
    tokens = set()
    for path, serial in ((first, first[-16:]), (second, second[-16:]), (first, first[-16:])):
        _, _, answer = scan(api, path)
        form = Form(answer.text)
        assert form.inputs["serial"] == serial
        assert form.inputs["csrf"] == answer.cookies["ocop_csrf"]
        tokens.add(form.inputs["csrf"])
    assert len(tokens) == 3
    assert len(api.client.app.state.pages._pages._items) == 1  # one page for the batch
    facts = api.client.get(first, headers={"Accept": "application/json"}).json()
    assert facts["scans"]["count"] == 3  # two page views and this one


def test_the_pool_outlasts_every_worker_thread_holding_two_connections(api: Api) -> None:
    # A request holds a connection and a helper may take a second: if the pool could run
    # dry with every worker thread holding one, they would all wait for ever.
    from ocop_trace.background import THREADS

    engine = api.service.engine
    wanted = THREADS + 8  # the app's worker threads, the background tasks' threads, spare
    opened: list[Any] = []

    def open_all() -> None:
        opened.extend(engine.connect() for _ in range(wanted))

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(open_all).result(timeout=20)
    for conn in opened:
        conn.close()
    assert len(opened) == wanted


def test_the_report_limit_holds_across_server_processes(api: Api) -> None:
    # Two app instances share nothing but the database, as two server workers do.
    from fastapi.testclient import TestClient

    from ocop_trace.app import create_app

    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    other = Api(TestClient(create_app(api.settings)), api.service, api.tokens, api.settings)
    sent = []
    for n in range(6):
        client = api if n % 2 else other
        _, _, answer = scan(client, path)
        form = Form(answer.text)
        sent.append(client.client.post("/report", data=form.inputs).status_code)
    assert sent == [201] * 5 + [429]
    reports = api.client.get("/api/v1/reports", headers=api.as_("council")).json()
    assert reports["total"] == 5


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("UPDATE batchevent SET place = 'nơi khác'", "event.place"),
        (
            "UPDATE batch SET recall_reason = 'lý do khác' WHERE id = 'mien-2026-002'",
            "recall.reason",
        ),
        ("DELETE FROM batchinput", "batch.inputs"),
    ],
)
def test_events_recalls_and_inputs_are_checked_against_their_entries(
    api: Api, edit: str, named: str
) -> None:
    issue_labels(api, 1)
    noodles = {**BATCH, "id": "mien-2026-002", "lot": "L2602", "inputs": ["mien-2026-001"]}
    api.post("/api/v1/batches", noodles, "producer")
    event = {"biz_step": "packing", "at": "2026-02-01T08:00:00Z", "place": "Bắc Kạn"}
    assert api.post("/api/v1/batches/mien-2026-002/events", event, "producer").status_code == 201
    api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "nấm mốc"}, "producer")
    api.service.store.publish_checkpoint()
    _, page, answer = scan(api, "/b/mien-2026-002")
    assert page.fields["verdict"] == "recalled_upstream"
    assert "verdict-mismatch" not in page.fields
    parts = [p.split('"')[0] for p in answer.text.split('data-entry="')[1:]]
    assert parts == ["batch", "recall", "product", "producer", "rating", "event"]
    assert answer.text.count('data-proof="verified"') == len(parts)
    with api.service.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text(edit))
    api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, "producer")
    _, page, _ = scan(api, "/b/mien-2026-002")
    assert named in page.fields["verdict-mismatch"].split(",")


def test_ledger_text_that_looks_like_a_page_hole_is_shown_as_text(api: Api) -> None:
    api.post(
        "/api/v1/products", {**PRODUCT, "name_vi": "Miến <!--@serial--> <!--@csrf-->"}, "council"
    )
    api.post("/api/v1/ratings", RATING, "council")
    api.post("/api/v1/batches", BATCH, "producer")
    api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, "producer")
    serial = issued_serials(api)[0]
    _, page, answer = scan(api, link(serial))
    assert page.fields["text:product"] == "Miến <!--@serial--> <!--@csrf-->"
    assert answer.text.count(serial) == 1  # only in the form, not in the product's name
    assert Form(answer.text).inputs["serial"] == serial


def test_a_batch_page_has_no_report_form_and_a_label_page_has_one(api: Api) -> None:
    issue_labels(api, 1)
    _, batch_page, answer = scan(api, "/b/mien-2026-001")
    assert batch_page.fields["verdict"] == "registered"
    assert "report" not in batch_page.fields.get("form", "")
    assert 'name="csrf"' not in answer.text
    _, _, answer = scan(api, link(issued_serials(api)[0]))  # same batch, same ledger state
    assert Form(answer.text).inputs["csrf"]
    _, _, answer = scan(api, "/b/mien-2026-001")
    assert 'name="csrf"' not in answer.text
