"""The scan page in a real browser: every verdict at 360×640 in both languages, without script,
meeting WCAG AA (axe-core), with a screenshot of each under artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from browser import PHONE, Served, axe_problems, screenshot

from ocop_trace.verdict import Verdict

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_verdict_on_a_phone_without_script(
    served_demo: Served,
    chromium: Any,
    lang: str,
) -> None:
    plain = chromium.new_context(viewport=PHONE, java_script_enabled=False, locale=lang)
    checked = chromium.new_context(viewport=PHONE, bypass_csp=True, locale=lang)
    seen = set()
    try:
        for name, url in served_demo.links.items():
            page = plain.new_page()
            page.goto(f"{url}{'&' if '?' in url else '?'}lang={lang}")
            verdict = page.get_attribute("[data-verdict]", "data-verdict")
            assert verdict is not None
            assert name.startswith(verdict), (name, verdict)
            seen.add(Verdict(verdict))
            assert page.evaluate("document.documentElement.lang") == lang
            # Fits a phone: nothing wider than the screen, the verdict in the first screenful.
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            box = page.locator("[role=status] h1").bounding_box()
            assert box is not None
            assert box["y"] + box["height"] < PHONE["height"]
            screenshot(page, f"scan-{name}-{lang}-360x640")
            page.close()
            audited = checked.new_page()
            audited.goto(f"{url}{'&' if '?' in url else '?'}lang={lang}")
            assert axe_problems(audited) == [], name
            audited.close()
    finally:
        plain.close()
        checked.close()
    assert seen == set(Verdict) - {Verdict.NO_RATING, Verdict.UNVERIFIED}


def test_the_report_form_round_trip_without_script(
    served_demo: Served,
    chromium: Any,
) -> None:
    context = chromium.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(served_demo.links["rating_revoked"] + "?lang=vi")
        page.fill("#report-note", "giá rẻ bất thường")
        page.fill("#report-where_bought", "chợ phiên")
        page.click("button[type=submit]")
        assert page.get_attribute("[data-verdict]", "data-verdict") == "reported"
        screenshot(page, "report-thanks-vi-360x640")
        page.click("header.site a")  # the language switch, a plain link
        assert page.evaluate("document.documentElement.lang") == "en"
    finally:
        context.close()
