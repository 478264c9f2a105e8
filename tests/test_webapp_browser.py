"""The staff app in a real browser (Debian's chromium, no script): a producer signs in,
registers a batch, issues labels and downloads the PDF, whose QR codes zxing-cpp decodes to
the page of the new batch. Every main screen of each role meets WCAG AA (axe-core), with a
screenshot at 360×640 and 1280×800 under artifacts/. A producer voids a misprinted label set
and the council adds producer and product photos on a phone, with and without script."""

from __future__ import annotations

import io
import re
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from browser import DESKTOP, PHONE, Served, axe_problems, screenshot
from PIL import Image

from ocop_trace import photos

pytestmark = pytest.mark.slow


def _sign_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/app/login")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.click("form[data-form=login] button[type=submit]")
    assert page.url == f"{base}/app/", page.content()[:2000]


def _check(page: Any, name: str) -> None:
    """No page wider than the screen, one h1, and a screenshot."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    assert page.locator("h1").count() == 1, name
    screenshot(page, f"app-{name}-{width}x{page.viewport_size['height']}")


def _decode(pdf: bytes) -> list[str]:
    found: list[str] = []
    for sheet in pdfium.PdfDocument(pdf):
        found += [b.text for b in zxingcpp.read_barcodes(sheet.render(scale=4).to_pil())]
    return found


def test_a_producer_registers_a_batch_and_prints_its_labels_without_script(
    served_demo: Served, chromium: Any
) -> None:
    base = served_demo.base
    password = served_demo.credentials["htx-tai-hoan"]
    context = chromium.new_context(
        viewport=PHONE, java_script_enabled=False, locale="vi-VN", accept_downloads=True
    )
    try:
        page = context.new_page()
        page.goto(f"{base}/app/login")
        _check(page, "login")
        _sign_in(page, base, "htx-tai-hoan", password)
        _check(page, "producer-home")
        page.click("nav.app a[href='/app/batches/new']")
        _check(page, "batch-form")
        page.fill("#f-lot", "W2611")
        page.fill("#f-produced_on", "2026-11-05")
        page.fill("#f-quantity", "500")
        page.select_option("#f-unit", "kg")
        page.fill("#f-origin", "thôn Chè Cọ")
        page.fill("#f-quantity", "nhiều")  # a mistake first: told beside the field
        page.click("form[data-form=batch] button[type=submit]")
        error = page.locator("[data-field=error-quantity]").inner_text()
        assert error.startswith("Vui lòng nhập một số nguyên")
        assert page.input_value("#f-lot") == "W2611"  # what was typed is kept
        page.fill("#f-quantity", "500")
        page.click("form[data-form=batch] button[type=submit]")
        assert "/app/batches/" in page.url
        batch_id = page.locator("[data-batch-id]").inner_text()
        assert "05/11/2026" in page.content()
        _check(page, "batch")
        page.fill("#f-count", "3")
        page.select_option("#f-stock", "a4-3x7")
        page.click("form[data-form=labels] button[type=submit]")
        assert re.search(r"/app/labels/\d+", page.url)
        _check(page, "label-set")
        with page.expect_download() as downloading:
            page.click("a[data-stock=a4-3x7]")
        pdf = downloading.value.path().read_bytes()
        links = _decode(pdf)
        assert len(links) == 3
        page.goto(links[0])
        assert page.get_attribute("[data-verdict]", "data-verdict") is not None
        assert "W2611" in page.content()
        batch_page = context.new_page()
        batch_page.goto(f"{base}/b/{batch_id}")
        assert "W2611" in batch_page.content()
    finally:
        context.close()


SCREENS = {
    "htx-tai-hoan": ["/app/", "/app/batches", "/app/batches/new", "/app/password"],
    "council-demo": [
        "/app/",
        "/app/ratings/new",
        "/app/producers",
        "/app/producers/htx-tai-hoan",
        "/app/users",
        "/app/keys",
    ],
    "inspector-demo": ["/app/reports", "/app/check", "/app/inspections/new", "/app/audit"],
}


@pytest.mark.parametrize("username", list(SCREENS))
def test_every_main_screen_meets_wcag_aa_on_a_phone_and_a_desktop(
    served_demo: Served, chromium: Any, username: str
) -> None:
    base = served_demo.base
    for viewport in (PHONE, DESKTOP):
        context = chromium.new_context(viewport=viewport, bypass_csp=True, locale="vi-VN")
        try:
            page = context.new_page()
            _sign_in(page, base, username, served_demo.credentials[username])
            for path in SCREENS[username]:
                page.goto(f"{base}{path}")
                name = f"{username}-{path.removeprefix('/app/').replace('/', '-') or 'home'}"
                _check(page, name)
                assert page.evaluate("document.documentElement.lang") == "vi"
                if viewport is PHONE:
                    assert axe_problems(page) == [], (username, path)
        finally:
            context.close()


# -- the screens added since: voiding a label set, photos in the council's forms ----------
# Each journey is walked with script and without (the app has none); axe-core runs in the
# page, so each state is checked by it in the walk with script.
SCRIPT = pytest.mark.parametrize("script", [True, False], ids=["script", "no-script"])


def _state(page: Any, name: str, script: bool) -> None:
    """One screen state of a journey: _check's width, h1 and screenshot, and WCAG AA."""
    _check(page, name)
    assert page.evaluate("document.documentElement.lang") == "vi", name
    if script:
        assert axe_problems(page) == [], name


def _submit(page: Any, form: str) -> None:
    page.click(f"form[data-form={form}] button[type=submit]")


def _field_error(page: Any, form: str, name: str) -> str:
    """The message shown beside a field of the form (data-form=`form`)."""
    return str(page.locator(f"form[data-form={form}] [data-field=error-{name}]").inner_text())


def _issue_label_set(page: Any, base: str, lot: str) -> str:
    """A new batch of the signed-in producer's with a set of 2 labels: the set's page."""
    page.goto(f"{base}/app/batches/new")
    page.fill("#f-lot", lot)
    page.fill("#f-produced_on", "2026-11-06")
    page.fill("#f-quantity", "120")
    page.select_option("#f-unit", "kg")
    page.fill("#f-origin", "thôn Chè Cọ")
    _submit(page, "batch")
    assert "/app/batches/" in page.url, page.content()[:2000]
    page.fill("#f-count", "2")
    _submit(page, "labels")
    found = re.search(r"/app/labels/\d+", page.url)
    assert found, page.url
    return f"{base}{found.group(0)}"


VOID_REASON = "in nhầm số lô trên tem"


def _phone(chromium: Any, script: bool) -> Any:
    """A 360x640 Vietnamese browser, with or without script (axe is injected either way)."""
    return chromium.new_context(
        viewport=PHONE, java_script_enabled=script, bypass_csp=True, locale="vi-VN"
    )


@SCRIPT
def test_a_producer_voids_a_misprinted_label_set_on_a_phone(
    served_demo: Served, chromium: Any, script: bool
) -> None:
    base = served_demo.base
    context = _phone(chromium, script)
    try:
        page = context.new_page()
        _sign_in(page, base, "htx-tai-hoan", served_demo.credentials["htx-tai-hoan"])
        set_page = _issue_label_set(page, base, "V2611S" if script else "V2611N")
        assert page.locator("a[data-stock]").count() > 0  # printable before
        page.goto(f"{set_page}/void")
        _state(page, "label-void", script)
        page.fill("#f-reason", "ab")  # too short: told beside the field, what was typed kept
        _submit(page, "void")
        assert _field_error(page, "void", "reason") == "Cần ít nhất 3 ký tự."
        assert page.input_value("#f-reason") == "ab"
        assert page.get_attribute("#f-reason", "aria-describedby") == "f-reason-error"
        _state(page, "label-void-error", script)
        page.fill("#f-reason", VOID_REASON)
        _submit(page, "void")
        assert page.locator("form[data-form=void] [data-field=reason]").inner_text() == VOID_REASON
        assert "Tôi hiểu rằng 2 mã này sẽ không còn hợp lệ." in page.content()
        assert page.locator("[data-field=error-confirm]").count() == 0
        _state(page, "label-void-confirm", script)
        # Without the tick the browser holds the form back: no new page is loaded.
        page.evaluate("document.body.dataset.stayed = 'yes'")
        _submit(page, "void")
        assert page.get_attribute("body", "data-stayed") == "yes"
        assert page.eval_on_selector("#f-confirm", "box => box.validity.valueMissing")
        # A browser that does not check `required` sends it: the server says so, in words.
        page.evaluate("document.querySelector('#f-confirm').removeAttribute('required')")
        _submit(page, "void")
        assert page.get_attribute("body", "data-stayed") is None  # answered by the server
        error = _field_error(page, "void", "confirm")
        assert error == "Vui lòng đánh dấu ô xác nhận để hủy bộ tem."
        assert page.get_attribute("#f-confirm", "aria-describedby") == "f-confirm-error"
        assert page.locator("form[data-form=void] [data-field=reason]").inner_text() == VOID_REASON
        assert page.input_value("form[data-form=void] input[name=reason]") == VOID_REASON
        _state(page, "label-void-unticked", script)
        page.check("#f-confirm")
        _submit(page, "void")
        assert page.url == f"{set_page}?done=voided"
        assert page.locator("[data-done]").inner_text() == (
            "Đã hủy bộ tem. Các mã trong bộ này không còn hợp lệ."
        )
        assert page.locator("[data-voided]").count() == 1
        assert page.locator("[data-field=voided-reason]").inner_text() == VOID_REASON
        assert page.locator("[data-field=voided-at]").inner_text().strip() != ""
        assert page.locator("a[data-stock]").count() == 0  # no longer offered for printing
        assert page.locator("form[data-form=void]").count() == 0
        _state(page, "label-set-voided", script)
        page.click("a[href^='/app/batches/']:not([href$='/new'])")  # back to the batch
        assert page.locator(f"a[href='{set_page.removeprefix(base)}'] + [data-voided]").count() == 1
    finally:
        context.close()


def _image(kind: str, color: str) -> bytes:
    """A small real photo made by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (640, 480), color).save(out, kind)
    return out.getvalue()


def _file(name: str, data: bytes, mime: str) -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def _shown_photo(page: Any) -> str:
    """The photo shown first on the page (its hash), checked to have loaded as an image."""
    img = page.locator("img[data-photo]").first
    assert img.evaluate("i => i.complete && i.naturalWidth > 0"), "the photo did not load"
    return str(img.get_attribute("data-photo"))


NOT_IMAGE = "Tệp này không phải ảnh JPEG, PNG hay WebP."
TOO_LARGE = "Ảnh lớn quá: tối đa 10 MB."


@SCRIPT
def test_the_council_adds_producer_and_product_photos_on_a_phone(
    served_demo: Served, chromium: Any, script: bool
) -> None:
    base = served_demo.base
    context = _phone(chromium, script)
    name = "HTX Ảnh Thử " + ("Một" if script else "Hai")
    typed = {"#f-name": name, "#f-contact": "0912 345 678", "#f-province": "Cao Bằng"}
    try:
        page = context.new_page()
        _sign_in(page, base, "council-demo", served_demo.credentials["council-demo"])
        page.goto(f"{base}/app/producers")
        for field, value in typed.items():
            page.fill(field, value)
        page.fill("#f-commune", "Hòa Chung")
        # A text file named .jpg, then one over the size limit: each told beside the field.
        text = _file("anh.jpg", "đây là chữ, không phải ảnh".encode(), "image/jpeg")
        big = _file("to.jpg", b"\xff" * (photos.MAX_BYTES + 1), "image/jpeg")
        for upload, words, state in ((text, NOT_IMAGE, "type"), (big, TOO_LARGE, "size")):
            page.set_input_files("#f-photo", files=[upload])
            _submit(page, "producer")
            assert _field_error(page, "producer", "photo") == words
            assert page.get_attribute("#f-photo", "aria-describedby") == "f-photo-error"
            for field, value in typed.items():  # what was typed is kept
                assert page.input_value(field) == value, field
            assert page.input_value("#f-commune") == "Hòa Chung"
            _state(page, f"producers-photo-error-{state}", script)
        page.set_input_files("#f-photo", files=[_file("htx.png", _image("PNG", "olive"), "")])
        _submit(page, "producer")
        found = re.search(r"/app/producers/([a-z0-9-]+)\?done=producer$", page.url)
        assert found, page.url
        producer_page = f"{base}/app/producers/{found.group(1)}"
        assert page.locator("h1").inner_text() == name
        first = _shown_photo(page)
        assert re.fullmatch(r"[0-9a-f]{64}", first)
        _state(page, "producer-photo", script)
        # The producer's own edit form: a wrong file is refused, then a new photo replaces it.
        page.fill("form[data-form=producer-edit] #f-contact", "0987 654 321")
        page.set_input_files("#f-producer-photo", files=[text])
        _submit(page, "producer-edit")
        assert _field_error(page, "producer-edit", "photo") == NOT_IMAGE
        assert page.get_attribute("#f-producer-photo", "aria-describedby") == "f-photo-error"
        assert page.input_value("form[data-form=producer-edit] #f-contact") == "0987 654 321"
        assert _shown_photo(page) == first  # the photo stays
        assert page.input_value("#f-product_set") == "food.processed_cereals"  # the other form's
        _state(page, "producer-photo-error", script)
        jpeg = _file("moi.jpg", _image("JPEG", "navy"), "image/jpeg")
        page.set_input_files("#f-producer-photo", files=[jpeg])
        _submit(page, "producer-edit")
        assert page.url == f"{producer_page}?done=updated"
        assert _shown_photo(page) not in ("", first)
        assert first in page.locator("ul.history").inner_text()  # the change, with its hashes
        _state(page, "producer-photo-changed", script)  # long hashes wrap on a phone
        # A product's photo link must be https (its model says so); this server is served
        # at http://127.0.0.1, so the product form refuses the photo in words, keeping the rest.
        page.fill("form[data-form=product] #f-name_vi", "Miến dong thử ảnh")
        page.fill("form[data-form=product] #f-name_en", "Test arrowroot noodles")
        page.fill("form[data-form=product] #f-description", "Làm thủ công.")
        page.set_input_files("form[data-form=product] #f-photo", files=[jpeg])
        _submit(page, "product")
        assert "https://" in _field_error(page, "product", "photo")
        assert _field_error(page, "product", "photo").startswith("Chưa lưu được ảnh")
        assert page.input_value("form[data-form=product] #f-name_vi") == "Miến dong thử ảnh"
        assert page.input_value("form[data-form=product] #f-description") == "Làm thủ công."
        assert page.locator("details summary", has_text="Miến dong thử ảnh").count() == 0
        # The producer's own form above still shows the producer, not blanks.
        assert page.input_value("form[data-form=producer-edit] #f-name") == name
        assert page.input_value("form[data-form=producer-edit] #f-contact") == "0987 654 321"
        _state(page, "product-photo-error", script)
    finally:
        context.close()
