"""The public site in a real browser: every page at 360×640 and 1280×800 in both languages,
without script, one h1, no sideways scrolling, meeting WCAG AA (axe-core), with screenshots
under artifacts/; the code entry typed in by hand, lower case, reaching its label."""

from __future__ import annotations

from typing import Any

import pytest
from browser import DESKTOP, PHONE, Served, axe_problems, screenshot

from ocop_trace.serials import parse_canonical

pytestmark = pytest.mark.slow

PAGES = {
    "home": "/",
    "search": "/?q=tra",
    "services": "/?sector=tourism",
    "code": "/code",
    "product": "/p/mien-dong-tai-hoan",
    "producer": "/producers/htx-tai-hoan",
    "ledger": "/ledger",
}


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_public_page_on_a_phone_and_a_desktop(
    served_demo: Served, chromium: Any, lang: str
) -> None:
    for size_name, viewport in (("360x640", PHONE), ("1280x800", DESKTOP)):
        plain = chromium.new_context(viewport=viewport, java_script_enabled=False, locale=lang)
        checked = chromium.new_context(viewport=viewport, bypass_csp=True, locale=lang)
        try:
            for name, path in PAGES.items():
                url = f"{served_demo.base}{path}{'&' if '?' in path else '?'}lang={lang}"
                page = plain.new_page()
                answer = page.goto(url)
                assert answer is not None, name
                assert answer.status == 200, name
                assert len(answer.body()) < 100_000, name
                assert page.evaluate("document.documentElement.lang") == lang
                assert page.locator("h1").count() == 1, name
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
                screenshot(page, f"site-{name}-{lang}-{size_name}")
                page.close()
                if size_name == "360x640":  # the rules do not depend on the width
                    audited = checked.new_page()
                    audited.goto(url)
                    assert axe_problems(audited) == [], name
                    audited.close()
        finally:
            plain.close()
            checked.close()


def test_a_code_typed_by_hand_reaches_its_label_and_a_typo_is_shown(
    served_demo: Served, chromium: Any
) -> None:
    serial = served_demo.links["genuine"].rpartition("/")[2]
    printed = parse_canonical(serial).human
    context = chromium.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{served_demo.base}/?lang=vi")
        page.fill("#code", printed.lower().replace("-", " "))
        page.click(".code-box button")
        page.wait_for_load_state()
        assert f"/l/{serial}" in page.url or serial in page.url
        assert page.get_attribute("[data-verdict]", "data-verdict") is not None
        typo = printed[:2] + ("7" if printed[2] != "7" else "8") + printed[3:]
        page.goto(f"{served_demo.base}/code?lang=en")
        page.fill("#code", typo)
        page.click(".code-box button")
        page.wait_for_load_state()
        assert "mistyped" in page.inner_text("[data-field=code-error]")
        assert page.input_value("#code") == typo
        screenshot(page, "site-code-typo-en-360x640")
        # The search box, by keyboard alone.
        page.goto(f"{served_demo.base}/?lang=vi")
        page.fill("#q", "mien dong")
        page.press("#q", "Enter")
        page.wait_for_load_state()
        assert page.locator("[data-product=mien-dong-tai-hoan]").count() == 1
    finally:
        context.close()
