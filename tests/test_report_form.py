"""The 'report a suspected fake' form: every outcome a page in the sender's language."""

from __future__ import annotations

import io
import os

import pytest
from pages import HTML, Form, Page, link, scan
from PIL import Image
from sqlalchemy import text
from support import Api, issue_labels, issued_serials

from ocop_trace import photos


def _phone_photo(side: tuple[int, int] = (2600, 1950), quality: int = 91) -> bytes:
    """A noisy JPEG the size of a phone's, carrying a GPS position in its EXIF."""
    image = Image.frombytes("RGB", side, os.urandom(side[0] * side[1] * 3))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif.get_ifd(0x8825)[2] = (21.0, 1.0, 12.0)  # GPSLatitude
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif)
    return out.getvalue()


def _form(api: Api, path: str) -> dict[str, str]:
    _, _, answer = scan(api, path)
    return Form(answer.text).inputs


def _send(
    api: Api, inputs: dict[str, str], photo: tuple[str, bytes, str] | None = None, **typed: str
) -> tuple[int, Page, str]:
    files = {"photo": photo} if photo else None
    answer = api.client.post(
        "/report", headers=HTML, data={**inputs, **typed}, files=files, follow_redirects=False
    )
    return answer.status_code, Page(answer.text), answer.text


def test_a_phone_photo_is_kept_small_upright_and_without_its_gps(api: Api) -> None:
    issue_labels(api, 1)
    big = _phone_photo()
    assert 4 * 2**20 < len(big) <= photos.MAX_BYTES
    inputs = _form(api, link(issued_serials(api)[0]))
    status, _, _ = _send(api, inputs, ("anh.jpg", big, "image/jpeg"), note="giá quá rẻ")
    assert status == 303
    with api.service.engine.connect() as conn:
        row = conn.execute(text("SELECT note, photo, photo_type FROM fake_report")).one()
    assert row.note == "giá quá rẻ"
    kept = Image.open(io.BytesIO(row.photo))
    assert (kept.format, row.photo_type) == ("JPEG", "image/jpeg")
    assert max(kept.size) == photos.MAX_SIDE
    assert len(kept.getexif()) == 0  # no camera, no position
    listed = api.client.get("/api/v1/reports", headers=api.as_("inspector")).json()
    assert listed["total"] == 1
    assert "testclient" not in str(listed)  # the sender's address is never stored
    assert api.client.get("/api/v1/reports", headers=api.as_("producer")).status_code == 403


def test_an_unknown_code_s_page_has_no_form_and_the_form_refuses_it(api: Api) -> None:
    issue_labels(api, 1)
    _, page, answer = scan(api, link("0000000000000000"))
    assert page.verdict == "not_registered"
    assert 'name="csrf"' not in answer.text  # invented codes cannot fill the inbox
    inputs = _form(api, link(issued_serials(api)[0]))
    status, page, html = _send(api, {**inputs, "serial": "0000000000000000"}, note="giả?")
    assert status == 422
    assert "không do hệ thống cấp" in page.all_text
    assert ">giả?</textarea>" in html


def test_the_thank_you_page_switches_language(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    status, _, _ = _send(api, _form(api, link(serial)), note="nghi ngờ")
    assert status == 303
    answer = api.client.get(f"/report/thanks?lang=vi&serial={serial}", headers=HTML)
    page = Page(answer.text)
    assert page.verdict == "reported"
    assert page.lang == "vi"
    switched = api.client.get(f"/report/thanks?serial={serial}&lang=en", headers=HTML)
    assert switched.status_code == 200
    assert Page(switched.text).lang == "en"
    assert "Thank you" in Page(switched.text).all_text
    assert f'href="/l/{serial}?lang=en"' in switched.text  # back to the label's page


@pytest.mark.parametrize(
    ("photo", "said"),
    [
        (("p.png", b"\x7fELF\x02\x01\x01" + b"\0" * 200, "image/png"), "không phải ảnh"),
        (("p.png", b"<html><script>alert(1)</script></html>", "image/png"), "không phải ảnh"),
        (("p.jpg", b"\xff\xd8\xff\xe0" + b"0" * 100, "image/jpeg"), "bị hỏng"),
        (("p.jpg", b"0" * (photos.MAX_BYTES + 1), "image/jpeg"), "tối đa 10 MB"),
    ],
)
def test_a_refused_photo_keeps_what_was_typed(
    api: Api, photo: tuple[str, bytes, str], said: str
) -> None:
    issue_labels(api, 1)
    inputs = _form(api, link(issued_serials(api)[0]))
    status, page, html = _send(api, inputs, photo, note="hàng lạ", where_bought="chợ Đồng Xuân")
    assert status == 422
    assert page.lang == "vi"
    assert said in page.fields["text:error-photo"]
    assert ">hàng lạ</textarea>" in html
    assert 'value="chợ Đồng Xuân"' in html
    assert Form(html).inputs["csrf"]  # a fresh token: send again at once
    with api.service.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM fake_report")).scalar() == 0


def test_an_expired_form_keeps_what_was_typed_in_the_reader_s_language(api: Api) -> None:
    issue_labels(api, 1)
    inputs = _form(api, link(issued_serials(api)[0]))
    api.client.cookies.clear()  # the form's cookie is gone: expired, or a forged post
    answer = api.client.post("/report?lang=en", headers=HTML, data={**inputs, "note": "odd taste"})
    assert answer.status_code == 422
    page = Page(answer.text)
    assert page.lang == "en"
    assert "The form had expired" in page.all_text
    assert ">odd taste</textarea>" in answer.text
    again = Form(answer.text).inputs  # the new token, with its cookie, sends it
    status, _, _ = _send(api, again, note="odd taste")
    assert status == 303


def test_too_many_reports_from_one_network_is_said_plainly(api: Api) -> None:
    issue_labels(api, 1)
    path = link(issued_serials(api)[0])
    answers = []
    for n in range(6):
        status, page, html = _send(api, _form(api, path), note=f"lần {n}")
        answers.append(status)
    assert answers == [303] * 5 + [429]
    assert "quá nhiều báo cáo" in page.all_text
    assert ">lần 5</textarea>" in html


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
        sent.append(_send(client, _form(client, path), note="x")[0])
    assert sent == [303] * 5 + [429]
    reports = api.client.get("/api/v1/reports", headers=api.as_("council")).json()
    assert reports["total"] == 5
