"""The scan page: one verdict per state, in both languages, the same in JSON and HTML."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from pages import GTIN, HTML, Form, Page, facts, link, scan
from sqlalchemy import text
from support import BATCH, PRODUCT, RATING, Api, issue_labels, issued_serials

from ocop_trace import ocop


def _label(api: Api, **rating: Any) -> str:
    """A product, its rating (changed by `rating`), a batch and one issued label's link."""
    assert api.post("/api/v1/products", PRODUCT, "council").status_code == 201
    if rating.get("issued_on") != "none":
        body = {**RATING, **rating}
        if "decision_date" in rating:  # a product is evaluated in the year it is rated
            body["evaluation_year"] = int(rating["decision_date"][:4])
        assert api.post("/api/v1/ratings", body, "council").status_code == 201
    assert api.post("/api/v1/batches", BATCH, "producer").status_code == 201
    answer = api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, "producer")
    assert answer.status_code == 201
    api.service.store.publish_checkpoint()
    return link(issued_serials(api)[0])


def _verdict(api: Api, path: str, **headers: str) -> tuple[int, Page]:
    """The page's verdict, checked to be the JSON answer's too."""
    status, page, _ = scan(api, path, **headers)
    if status == 200:
        assert facts(api, path)["verdict"] == page.verdict
    return status, page


def test_a_genuine_label_in_vietnamese(api: Api) -> None:
    path = _label(api)
    status, page, answer = scan(api, path)
    assert status == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert len(answer.content) < 50_000
    assert "<script" not in answer.text.lower()
    assert page.lang == "vi"
    assert page.verdict == "genuine"
    assert 'class="verdict ok"' in answer.text  # only genuine is green
    assert [h for h in page.headings if h[0] == "h1"] == [("h1", "Sản phẩm chính hãng")]
    assert page.roles["status"] == "div"
    assert page.fields["text:product"] == "Miến dong Tài Hoan"
    assert page.fields["text:score"] == "91,14 điểm"
    assert "5 trên 5 sao" in page.labels
    assert page.fields["status"] == "valid"
    assert page.fields["text:valid-until"] == "29/06/2027"
    assert page.fields["text:produced-on"] == "04/01/2026"
    assert page.fields["text:quantity"] == "1.200.000 g"
    assert "trước 01/07/2025" in page.fields["text:historical"]
    checked = page.fields["text:checked"]
    assert checked.startswith("Đã đối chiếu 4/4 mục với sổ cái có chữ ký, xác nhận lúc ")
    assert checked.endswith("(giờ Việt Nam).")
    assert "Merkle" in page.fields["text:evidence"]


def test_english_by_query_or_header(api: Api) -> None:
    path = _label(api)
    _, page = _verdict(api, path + "?lang=en")
    assert page.lang == "en"
    assert page.fields["text:product"] == "Tài Hoan arrowroot noodles"
    assert page.headings[0] == ("h1", "Genuine product")
    assert page.fields["text:score"] == "91.14 points"
    assert page.fields["text:produced-on"] == "4 Jan 2026"
    assert "5 out of 5 stars" in page.labels
    _, page = _verdict(api, path, **{"Accept-Language": "en-GB,en;q=0.9"})
    assert page.lang == "en"


def test_links_without_a_serial_are_product_information_never_genuine(api: Api) -> None:
    _label(api)
    for path in (f"/01/{GTIN}", f"/01/{GTIN}/10/L2601", f"/b/{BATCH['id']}"):
        status, page = _verdict(api, path)
        assert status == 200, path
        assert page.verdict == "product_info", path
        assert "chính hãng" not in page.headings[0][1]
    _, _, answer = scan(api, f"/01/{GTIN}")
    assert 'class="verdict info"' in answer.text
    with api.service.engine.connect() as conn:  # nothing is counted without a serial
        assert conn.execute(text("SELECT count(*) FROM scan_network")).scalar() == 0


def test_unknown_codes_and_invented_lots_are_not_registered(api: Api) -> None:
    _label(api)
    unknown_gtin = "08936012345681"  # a valid check digit, not a product here
    for path in (
        link("0000000000000000"),
        "/l/0000000000000000",
        f"/01/{unknown_gtin}",
        f"/01/{GTIN}/10/INVENTED",
        f"/01/{GTIN}/10/INVENTED/21/{issued_serials(api)[0]}",
    ):
        status, page, _ = scan(api, path)
        assert status == 404, path
        assert page.verdict == "not_registered", path
        assert "hàng giả" in page.headings[0][1]
        assert api.client.get(path, headers={"Accept": "application/json"}).status_code == 404


def test_a_malformed_link_says_so_in_plain_words(api: Api) -> None:
    _label(api)
    for path in ("/01/08936012345670/10/L2601", "/l/not-a-code"):
        status, page, _ = scan(api, path)
        assert status == 400, path
        assert page.verdict == "bad_link"
        assert page.headings[0] == ("h1", "Không đọc được mã này")
        for developer_words in ("check digit", "0123", "Crockford", "position"):
            assert developer_words not in page.all_text
    error = api.client.get("/01/08936012345670", headers={"Accept": "application/json"}).json()
    assert error["error"]["code"] == "bad_link"
    assert "check digit" in error["error"]["message"]  # programs get the precise reason


def test_a_bad_offline_signature_is_the_verdict_in_red(api: Api) -> None:
    from ocop_trace.offline import sign_label_url

    path = _label(api)
    key = api.service.producer_key("htx-tai-hoan")
    signed = sign_label_url("http://testserver" + path, key).removeprefix("http://testserver")
    _, page = _verdict(api, signed)
    assert (page.verdict, page.fields["signature"]) == ("genuine", "valid")
    forged = signed[:-4] + "AAAA"
    _, page = _verdict(api, forged)
    assert page.verdict == "bad_signature"
    _, _, answer = scan(api, forged)
    assert 'class="verdict bad"' in answer.text
    assert "Chữ ký trên tem không hợp lệ" in page.headings[0][1]


def test_recalled_and_recalled_upstream_say_why(api: Api) -> None:
    issue_labels(api, 1)
    noodles = {**BATCH, "id": "mien-2026-002", "lot": "L2602", "inputs": ["mien-2026-001"]}
    api.post("/api/v1/batches", noodles, "producer")
    api.post("/api/v1/batches/mien-2026-002/labels", {"count": 1}, "producer")
    api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "nấm mốc"}, "producer")
    with api.service.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT batch_id, serial FROM label_serial")).all())
    _, page = _verdict(api, link(rows["mien-2026-001"]))
    assert page.verdict == "recalled"
    assert page.fields["text:reason"] == "Lý do: nấm mốc"
    _, page = _verdict(api, link(rows["mien-2026-002"], "L2602"))
    assert page.verdict == "recalled_upstream"
    assert "nấm mốc" in page.fields["text:reason"]
    _, page = _verdict(api, f"/01/{GTIN}/10/L2602")  # a lot link: recalled all the same
    assert page.verdict == "recalled_upstream"


def test_a_revoked_rating_is_the_verdict_with_its_reason_and_no_current_stars(api: Api) -> None:
    path = _label(api, issued_on="2025-09-01", decision_date="2025-09-01")
    rating = api.client.get("/api/v1/products/mien-dong-tai-hoan/ratings").json()["items"][0]
    answer = api.post(
        f"/api/v1/ratings/{rating['id']}/revoke", {"reason": "không tái đánh giá"}, "council"
    )
    assert answer.status_code == 201
    _, page = _verdict(api, path)
    assert page.verdict == "rating_revoked"
    assert page.fields["status"] == "revoked"
    assert page.fields["text:reason"] == "Lý do: không tái đánh giá"
    _, _, raw = scan(api, path)
    assert 'class="stars lapsed"' in raw.text
    assert 'class="stars current"' not in raw.text
    _, page = _verdict(api, path + "?lang=en")
    assert page.headings[0] == ("h1", "The product's OCOP certificate has been revoked")


def test_an_expired_rating_is_the_verdict(api: Api) -> None:
    path = _label(api, issued_on="2022-03-01", decision_date="2022-03-01")
    for lang, word in (("vi", "Hết hiệu lực"), ("en", "Expired")):
        _, page = _verdict(api, path + f"?lang={lang}")
        assert page.verdict == "rating_expired"
        assert page.fields["status"] == "expired"
        assert word in page.all_text
    assert page.fields["text:valid-until"] == "28 Feb 2025"


def test_an_expiring_rating_is_still_current(api: Api) -> None:
    issued = ocop.add_months(ocop.today_in_vietnam(), -36) + timedelta(days=10)
    path = _label(api, issued_on=issued.isoformat(), decision_date=issued.isoformat())
    _, page = _verdict(api, path)
    assert (page.verdict, page.fields["status"]) == ("genuine", "expiring")
    assert "Sắp hết hiệu lực" in page.all_text


def test_a_product_without_a_rating_shows_no_stars(api: Api) -> None:
    path = _label(api, issued_on="none")
    _, page = _verdict(api, path)
    assert page.verdict == "no_rating"
    assert "★" not in page.all_text


def test_revoking_a_mistaken_rating_brings_back_the_earlier_valid_one(api: Api) -> None:
    path = _label(api, issued_on="2025-09-01", decision_date="2025-09-01")
    mistaken = {
        **RATING,
        "score_hundredths": 6000,
        "level": "provincial",
        "issuing_body": "Hội đồng OCOP tỉnh",
        "certificate_no": "DEMO-3S-9",
        "issued_on": "2025-10-01",
        "decision_date": "2025-10-01",
        "evaluation_year": 2025,
    }
    made = api.post("/api/v1/ratings", mistaken, "council")
    assert made.status_code == 201, made.text
    _, page = _verdict(api, path)
    assert page.fields["text:score"] == "60,00 điểm"
    api.post(f"/api/v1/ratings/{made.json()['id']}/revoke", {"reason": "nhập nhầm"}, "council")
    _, page = _verdict(api, path)
    assert page.verdict == "genuine"
    assert page.fields["text:score"] == "91,14 điểm"
    assert page.fields["status"] == "valid"


def test_times_are_vietnam_time_with_the_zone_and_units_are_translated(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/ratings", RATING, "council")
    api.post("/api/v1/batches", {**BATCH, "quantity": 500, "unit": "pack"}, "producer")
    event = {"biz_step": "packing", "at": "2026-01-05T02:00:00Z", "place": "xã Côn Minh"}
    api.post("/api/v1/batches/mien-2026-001/events", event, "producer")
    _, page, _ = scan(api, "/b/mien-2026-001")
    assert page.fields["text:event-time"] == "09:00, 05/01/2026 (giờ Việt Nam)"
    assert page.fields["text:quantity"] == "500 gói"
    assert page.fields["step"] == "packing"
    assert "Đóng gói" in page.all_text
    _, page, _ = scan(api, "/b/mien-2026-001?lang=en")
    assert page.fields["text:event-time"] == "09:00, 5 Jan 2026 (Vietnam time)"
    assert page.fields["text:quantity"] == "500 packs"


def test_how_it_was_checked_is_folded_under_one_plain_line(api: Api) -> None:
    path = _label(api)
    _, page, answer = scan(api, path)
    summary = answer.text.index("<summary")
    assert answer.text.index("<details") < summary < answer.text.index('data-entry="batch"')
    assert answer.text.index('data-verdict="genuine"') < summary  # readable words first
    assert page.fields["entry"] in {"batch", "product", "producer", "rating", "serial"}
    assert page.fields["proof"] == "verified"  # the serial's own proof, filled per scan


def test_cached_pages_lag_the_ledger_by_at_most_the_configured_time(api: Api) -> None:
    from fastapi.testclient import TestClient

    from ocop_trace.app import create_app

    path = _label(api)
    settings = api.settings.model_copy(update={"page_cache_seconds": 0.5})
    lagging = Api(TestClient(create_app(settings)), api.service, api.tokens, api.settings)
    _, page, _ = scan(lagging, path)
    assert page.verdict == "genuine"
    api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "nấm mốc"}, "producer")
    # Within the lag the cached page may still be served; after it, never.
    time.sleep(0.6)
    _, page, _ = scan(lagging, path)
    assert page.verdict == "recalled"


def test_cached_pages_fill_each_scan_with_its_own_serial_token_and_proof(api: Api) -> None:
    issue_labels(api, 2)
    first, second = (link(s) for s in issued_serials(api))
    tokens = set()
    for path in (first, second, first):
        _, page, answer = scan(api, path)
        form = Form(answer.text)
        assert form.inputs["serial"] == path[-16:]
        assert form.inputs["csrf"] == answer.cookies["ocop_csrf"]
        assert page.verdict == "genuine"
        tokens.add(form.inputs["csrf"])
    assert len(tokens) == 3
    assert len(api.client.app.state.pages._pages._items) == 1  # one page for the batch


def test_a_new_serial_of_a_cached_batch_reads_only_its_own_facts(api: Api) -> None:
    # A serial this process has not seen, whose batch's page is cached, reads its batch, its
    # label set and its scan counts, not the whole page again. (Once every serial of a batch
    # cost a full build: the benchmark's rounds fell to 2 % of the bare endpoint.)
    from sqlalchemy import event

    issue_labels(api, 3)
    first, second, third = (link(s) for s in issued_serials(api))
    api.service.store.publish_checkpoint()
    engine = api.client.app.state.public.store.engine

    def statements_of(path: str) -> tuple[list[str], Page, Any]:
        seen: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            _, page, answer = scan(api, path)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return seen, page, answer

    built, page, _ = statements_of(first)
    assert page.verdict == "genuine"
    light, page, answer = statements_of(second)
    assert page.verdict == "genuine"
    assert Form(answer.text).inputs["serial"] == second[-16:]
    assert 'data-entry="serial"' in answer.text
    assert 'data-proof="verified"' in answer.text
    assert 0 < len(light) <= len(built) // 2, (len(built), light)
    assert not any("FROM batch" in s or "FROM product" in s for s in light), light
    # Each serial's proof line is its own (its place in the label set).
    third_page = scan(api, third)[2].text
    assert 'data-proof="verified"' in third_page
    # A serial of the right shape that was never issued is still not registered.
    status, page = _verdict(api, link("BXEMENYQWGAC7RNM"))
    assert (status, page.verdict) == (404, "not_registered")


def test_the_pool_outlasts_every_worker_thread_holding_two_connections(api: Api) -> None:
    # A request holds a connection and a helper may take a second: if the pool could run
    # dry with every worker thread holding one, they would all wait for ever.
    engine = api.service.engine
    wanted = api.settings.request_threads * 2  # every worker thread holding two
    opened: list[Any] = []

    def open_all() -> None:
        opened.extend(engine.connect() for _ in range(wanted))

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(open_all).result(timeout=20)
    for conn in opened:
        conn.close()
    assert len(opened) == wanted


def test_ledger_text_that_looks_like_a_page_hole_is_shown_as_text(api: Api) -> None:
    name = "Miến <!--@serial--> <!--@csrf--> <!--@verdict-->"
    api.post("/api/v1/products", {**PRODUCT, "name_vi": name}, "council")
    api.post("/api/v1/ratings", RATING, "council")
    api.post("/api/v1/batches", BATCH, "producer")
    api.post("/api/v1/batches/mien-2026-001/labels", {"count": 1}, "producer")
    serial = issued_serials(api)[0]
    _, page, answer = scan(api, link(serial))
    assert page.fields["text:product"] == name
    assert answer.text.count(serial) == 1  # only in the form, not in the product's name
    assert answer.text.count('role="status"') == 1
    assert Form(answer.text).inputs["serial"] == serial


def test_a_batch_page_has_no_report_form_and_a_label_page_has_one(api: Api) -> None:
    path = _label(api)
    _, batch_page, answer = scan(api, "/b/mien-2026-001")
    assert batch_page.verdict == "product_info"
    assert 'name="csrf"' not in answer.text
    _, _, answer = scan(api, path)  # same batch, same ledger state
    assert Form(answer.text).inputs["csrf"]
    _, _, answer = scan(api, "/b/mien-2026-001")
    assert 'name="csrf"' not in answer.text


def test_head_and_lineage_links(api: Api) -> None:
    path = _label(api)
    noodles = {**BATCH, "id": "mien-2026-002", "lot": "L2602", "inputs": ["mien-2026-001"]}
    api.post("/api/v1/batches", noodles, "producer")
    status, page, answer = scan(api, "/b/mien-2026-002")
    assert status == 200
    assert page.fields["input"] == "mien-2026-001"
    assert 'href="/b/mien-2026-001?lang=vi"' in answer.text
    head = api.client.head(path, headers=HTML)
    assert head.status_code == 200
    assert head.content == b""


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_page_state_has_one_h1_inside_the_status_region(api: Api, lang: str) -> None:
    path = _label(api)
    for target in (path, f"/01/{GTIN}", link("0000000000000000"), "/l/x"):
        _, page, answer = scan(api, f"{target}?lang={lang}")
        assert [h[0] for h in page.headings].count("h1") == 1, target
        head = answer.text.index('role="status"')
        assert head < answer.text.index("<h1") < answer.text.index("</div>", head), target


def test_csrf_nonces_are_unique_and_a_forked_child_draws_its_own() -> None:
    import os

    from ocop_trace import csrf

    seen = {csrf.new_token("k" * 32).partition(".")[0] for _ in range(1000)}
    assert len(seen) == 1000  # across several blocks of 256
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first nonce, to the parent
        os.write(writer, csrf.new_token("k" * 32).partition(".")[0].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(reader, 64).decode()
    os.close(reader)
    os.close(writer)
    mine = csrf.new_token("k" * 32).partition(".")[0]
    assert len(child) == 24
    assert child != mine  # the child did not reuse the parent's block
    assert child not in seen
