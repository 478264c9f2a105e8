"""The staff app in a real browser (Debian's chromium, no script): a producer signs in,
registers a batch, issues labels and downloads the PDF, whose QR codes zxing-cpp decodes to
the page of the new batch. Every main screen of each role meets WCAG AA (axe-core), with a
screenshot at 360×640 and 1280×800 under artifacts/."""

from __future__ import annotations

import re
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from browser import DESKTOP, PHONE, Served, axe_problems, screenshot

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
