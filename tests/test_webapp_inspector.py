"""The inspector's screens: the reports inbox (handled with a note), checking a label by its
printed code or a photo of its QR, and the audit page with its bundle."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from sqlalchemy import select
from support import Api, issue_labels, issued_serials
from webapp_support import field_error, post_form, sign_in, tokens

from ocop_trace import reports
from ocop_trace.reports import HANDLED
from ocop_trace.serials import new_serial, parse_canonical
from ocop_trace.webapp.inspector import scan_path

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _reported(api: Api) -> str:
    issue_labels(api, 2)
    serial = issued_serials(api)[0]
    secret = api.settings.secret_key.get_secret_value()
    reports.submit(
        api.service.engine, secret, serial=serial, host="203.0.113.9", note="tem mờ, giá rẻ"
    )
    return serial


def test_the_inbox_shows_a_report_with_its_serial_and_marks_it_handled(api: Api) -> None:
    serial = _reported(api)
    inspector = sign_in(api, "inspector")
    page = inspector.get("/app/reports")
    assert page.status_code == 200
    assert serial in page.text
    assert "tem mờ, giá rẻ" in page.text
    report_id = page.text.split('data-report="')[1].split('"')[0]
    action = f"/app/reports/{report_id}/handled"
    short = inspector.post(action, data={**tokens(page.text, "handled"), "note": "ok"})
    assert short.status_code == 422
    assert field_error(short.text, f"note-{report_id}") == "Cần từ 3 đến 2000 ký tự."
    data = {**tokens(page.text, "handled"), "note": "đã kiểm tra tại chợ, tem thật"}
    first = inspector.post(action, data=data)
    again = inspector.post(action, data=data)  # sent twice: one record
    assert first.status_code == again.status_code == 303
    with api.service.engine.connect() as conn:
        rows = conn.execute(select(HANDLED)).all()
    assert [(r.handled_by, r.note) for r in rows] == [("inspector", data["note"])]
    after = inspector.get("/app/reports").text
    assert "Không có phản ánh nào đang chờ." in after
    # The producer's dashboard no longer lists it as open.
    assert serial not in sign_in(api, "producer").get("/app/").text


@sqlite_only
def test_the_producer_sees_open_reports_on_its_labels(api: Api) -> None:
    serial = _reported(api)
    assert serial in sign_in(api, "producer").get("/app/").text


@sqlite_only
def test_producers_and_the_council_are_refused_the_inbox(api: Api) -> None:
    _reported(api)
    for role in ("producer", "council"):
        assert sign_in(api, role).get("/app/reports").status_code == 403, role
    assert sign_in(api, "producer").get("/app/audit").status_code == 403


def test_checking_a_typed_code_opens_the_labels_verdict(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    inspector = sign_in(api, "inspector")
    human = parse_canonical(serial).human
    answer = post_form(inspector, "/app/check", "/app/check", {"code": human}, "check")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/l/{serial}?lang=vi"
    verdict = api.client.get(answer.headers["location"], headers={"Accept": "text/html"})
    assert 'data-verdict="genuine"' in verdict.text
    nonsense = post_form(inspector, "/app/check", "/app/check", {"code": "xin chào"}, "check")
    assert nonsense.status_code == 422
    expected = "Đây không phải mã hay đường dẫn của tem truy xuất."
    assert field_error(nonsense.text, "code") == expected
    empty = post_form(inspector, "/app/check", "/app/check", {"code": ""}, "check")
    assert field_error(empty.text, "code") == "Nhập mã hoặc chọn một ảnh."


def test_checking_a_photo_of_the_qr_decodes_it_on_the_server(api: Api) -> None:
    answer = issue_labels(api, 1, "png")
    assert answer.status_code == 201
    serial = issued_serials(api)[0]
    photo = io.BytesIO()
    Image.open(io.BytesIO(answer.content)).convert("RGB").save(photo, "JPEG", quality=90)
    inspector = sign_in(api, "inspector")
    page = inspector.get("/app/check")
    sent = inspector.post(
        "/app/check",
        data=tokens(page.text, "check"),
        files={"photo": ("qr.jpg", photo.getvalue(), "image/jpeg")},
    )
    assert sent.status_code == 303
    assert sent.headers["location"].split("?")[0].endswith(serial)
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(blank, "PNG")
    nothing = inspector.post(
        "/app/check",
        data=tokens(page.text, "check"),
        files={"photo": ("blank.png", blank.getvalue(), "image/png")},
    )
    assert nothing.status_code == 422
    assert field_error(nothing.text, "photo") == "Không đọc được mã QR nào trong ảnh này."


def test_scan_path_reads_links_and_printed_codes() -> None:
    serial = new_serial()
    assert scan_path("https://truyxuat.example.vn/01/08936012345674/10/L1/21/x") == (
        "/01/08936012345674/10/L1/21/x"
    )
    assert scan_path("https://evil.example/admin") is None
    assert scan_path("not a code") is None
    assert scan_path("") is None
    assert scan_path(serial.canonical) == f"/l/{serial.canonical}"
    assert scan_path(serial.human) == f"/l/{serial.canonical}"
    assert scan_path(serial.human.lower()) == f"/l/{serial.canonical}"


def test_the_audit_page_and_its_bundle(api: Api) -> None:
    api.service.store.publish_checkpoint()
    inspector = sign_in(api, "inspector")
    page = inspector.get("/app/audit").text
    size = api.service.store.size()
    assert f"data-ledger-size>{size}<" in page
    assert "ocop-trace verify --bundle" in page
    bundle = inspector.get("/app/audit/bundle.jsonl")
    assert bundle.status_code == 200
    lines = bundle.content.splitlines()
    header = json.loads(lines[0])
    assert header["size"] == size
    assert header["format"] == "ocop-trace-bundle/1"


def test_an_inspection_recorded_by_label_code_appears_on_the_batch_page(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    inspector = sign_in(api, "inspector")
    path = "/app/inspections/new"
    unknown = post_form(inspector, path, path, {"batch": "khong-co-lo-nay", "result": "pass"})
    assert unknown.status_code == 422
    assert field_error(unknown.text, "batch") == "Không tìm thấy lô hàng nào với mã này."
    bad = post_form(inspector, path, path, {"batch": serial, "result": "maybe"})
    assert field_error(bad.text, "result") == "Vui lòng chọn một mục trong danh sách."
    before = api.service.store.size()
    fields = {"batch": parse_canonical(serial).human, "result": "pass", "findings": "tem khớp lô"}
    page = inspector.get(path)
    data = {**tokens(page.text, "inspection"), **fields}
    first = inspector.post(path, data=data)
    second = inspector.post(path, data=data)  # sent twice: one inspection
    assert first.status_code == second.status_code == 303
    assert first.headers["location"].startswith("/b/")
    assert api.service.store.size() == before + 1
    shown = api.client.get(first.headers["location"], headers={"Accept": "text/html"})
    assert "tem khớp lô" in shown.text
    assert sign_in(api, "producer").get(path).status_code == 403


def test_a_verification_started_from_the_page_reports_valid(api: Api) -> None:
    import time

    issue_labels(api, 1)
    api.service.store.publish_checkpoint()
    inspector = sign_in(api, "inspector")
    assert "Chưa có lần kiểm tra nào." in inspector.get("/app/audit/verify").text
    page = inspector.get("/app/audit")
    started = inspector.post("/app/audit/verify", data=tokens(page.text, "verify"))
    assert started.status_code == 303
    for _ in range(200):
        shown = inspector.get("/app/audit/verify").text
        if 'data-verify="running"' not in shown:
            break
        assert 'http-equiv="refresh"' in shown  # the page follows the run without script
        time.sleep(0.1)
    assert 'data-verify="valid"' in shown, shown
    assert f"{api.service.store.size()} bản ghi" in shown
    assert sign_in(api, "producer").post("/app/audit/verify", data={}).status_code == 403
