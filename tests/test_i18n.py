"""One catalogue: every message in both languages, each one used, Vietnamese pages in Vietnamese.

Keys are found where they are written (Babel's extractors over the Python code and the
templates) and, for keys built from codes ("step." + a step's code), from the codes
themselves: a new step, unit or verdict without its words in both languages fails here.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from pages import GTIN, link, scan
from support import Api, issue_labels, issued_serials

from ocop_trace import i18n, import_messages, ocop
from ocop_trace.kinds import KINDS
from ocop_trace.models import InspectionCreate
from ocop_trace.scan_facts import PROBLEMS
from ocop_trace.site import pages, report
from ocop_trace.verdict import Verdict

ROOT = Path(__file__).resolve().parents[1]


def _written() -> set[str]:
    """Keys written out in code (t(lang, "key"), N_("key")) and templates (_("key"))."""
    found = set()
    for folder, method, keywords in (
        ("trace", "python", {"t": (2,), "N_": None}),
        ("templates", "jinja2", {"_": None}),
    ):
        for _, _, message, _, _ in extract_from_dir(
            ROOT / folder,
            method_map=[(f"**.{'py' if method == 'python' else 'html'}", method)],
            keywords=keywords,
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def _built() -> set[str]:
    """Keys built from codes: one per code, each family's codes from where they are kept."""
    # Update kinds' entries are shown under the part they update (with the word "update").
    parts = {k.shown.part for k in KINDS.values() if k.shown and not k.shown.updates}
    parts |= {"labels"}
    fields = {f for k in KINDS.values() if k.shown for f in k.shown.fields}
    families = {
        "status": [s.value for s in ocop.RatingStatus],
        "step": ocop.BIZ_STEPS,
        "producer_type": [t.value for t in ocop.ProducerType],
        "sector": ocop.SECTORS,
        "product_set": ocop.PRODUCT_SETS,
        "authority": ocop.RATING_AUTHORITIES,
        "unit": ocop.UNITS,
        "part": parts,
        "field": fields,
        "problem": PROBLEMS,
        "inspection.result": InspectionCreate.RESULTS,
        "signature": ("valid", "invalid", "unreadable"),
        "report": report.FIELDS,
        "import": import_messages.KEYS,
    }
    keys = {f"{family}.{code}" for family, codes in families.items() for code in codes}
    keys |= {f"verdict.{v}.{w}" for v in Verdict for w in ("headline", "advice")}
    keys |= {f"error.{s}{a}" for s in (*pages.ERROR_STATUSES, "other") for a in ("", ".advice")}
    return keys


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_every_message_and_no_empty_one() -> None:
    vi, en = i18n.catalogue("vi"), i18n.catalogue("en")
    assert set(vi) == set(en)
    for key in vi:
        assert vi[key].strip(), key
        assert en[key].strip(), key
        assert _placeholders(vi[key]) == _placeholders(en[key]), key


def test_every_message_used_is_in_the_catalogue_and_every_one_there_is_used() -> None:
    used = _written() | _built()
    catalogue = set(i18n.catalogue("vi"))
    assert sorted(used - catalogue) == [], "used but missing from the catalogue"
    assert sorted(catalogue - used) == [], "in the catalogue but used nowhere"


def test_numbers_dates_and_times_the_vietnamese_way() -> None:
    assert i18n.score(9114, "vi") == "91,14"
    assert i18n.score(9114, "en") == "91.14"
    assert i18n.number(1_200_000, "vi") == "1.200.000"
    assert i18n.day("2028-08-31", "vi") == "31/08/2028"
    assert i18n.day("2028-08-31", "en") == "31 Aug 2028"
    assert i18n.moment("2026-01-05T02:00:00Z", "vi") == "09:00, 05/01/2026 (giờ Việt Nam)"
    # 23:30 UTC is already the next day in Vietnam
    assert i18n.moment("2026-01-05T23:30:00.123Z", "vi") == "06:30, 06/01/2026 (giờ Việt Nam)"


# English words a Vietnamese page must not carry (the language switch's own label aside).
_ENGLISH = re.compile(r"\b(the|this|and|of|is|not|code|product|may|be|was|with)\b", re.I)


def _english_in(text: str) -> list[str]:
    vi, en = i18n.catalogue("vi"), i18n.catalogue("en")
    twins = [en[k] for k in en if en[k] != vi[k] and len(en[k].split()) >= 2]
    found = [t for t in twins if t in text]
    found += _ENGLISH.findall(text.replace(vi["site.other_language"], ""))
    return found


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_vietnamese_pages_carry_no_english(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    for path in (
        link(serial),
        f"/01/{GTIN}",
        link("0000000000000000"),
        "/01/08936012345670",
        "/l/garbage",
        "/no/such/page",
        f"/report/thanks?serial={serial}",
    ):
        _, page, _ = scan(api, path)
        assert page.lang == "vi", path
        assert _english_in(page.all_text) == [], path


def test_a_timestamp_is_written_as_the_day_it_was_in_vietnam() -> None:
    from ocop_trace import i18n

    # 20:30 UTC on 31 August is already 1 September in Vietnam.
    assert i18n.day("2028-08-31T20:30:00.123456Z", "vi") == "01/09/2028"
    assert i18n.day("2028-08-31", "vi") == "31/08/2028"
    assert i18n.day("2028-08-31T10:00:00Z", "en") == "31 Aug 2028"
