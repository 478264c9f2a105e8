"""Where a label's QR code points, and the links a resolver offers for a product or batch.

The links are grouped as GS1's resolver standard asks: one level per step of the link's
path (the product, its lot, the label's serial), each with its anchor (the canonical link
of that level, no data attributes), a description, one default link (the page that link
opens) and typed links, each with a title, media type and languages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ocop_trace.digital_link import DigitalLink, DigitalLinkError, build_digital_link, build_link
from ocop_trace.errors import InvalidInput
from ocop_trace.i18n import N_, t
from ocop_trace.link_types import GS1_VOCABULARY

LINKSET_CONTEXT = "https://ref.gs1.org/standards/resolver/linkset-context"
LANGUAGES = ("vi", "en")  # every page and record shows both
TYPES = ("pip", "certificationInfo", "traceability", "defaultLink")  # the link types offered
_PAGES = {
    "product": N_("linkset.page.product"),
    "lot": N_("linkset.page.lot"),
    "label": N_("linkset.page.label"),
}


def label_url(base: str, gtin: str, lot: str, serial: str) -> str:
    """A GS1 Digital Link when the product has a GTIN, the service's own short link if not.

    A lot registered before lots were checked may be one no link can carry: refused here,
    before any serial is issued for it, saying what to do."""
    if gtin:
        try:
            return build_digital_link(base, gtin, lot=lot, serial=serial)
        except DigitalLinkError as exc:
            raise InvalidInput(
                f"{exc}: this lot cannot be printed in a GS1 Digital Link; register the "
                "goods as a new batch whose lot uses only GS1 CSET 82",
                field="lot",
            ) from None
    return f"{base.rstrip('/')}/l/{serial}"


@dataclass(frozen=True, slots=True)
class Level:
    """One step of a link: "01", a key qualifier ("22", "10", "21", "235"), or the
    service's own short link ("l", a label) or batch page ("b"); its canonical URI."""

    step: str
    anchor: str


@dataclass(frozen=True, slots=True)
class Subject:
    """What the links are about: the product, and the batch when the link names one."""

    product_id: str
    name_vi: str
    name_en: str
    batch_id: str | None = None
    lot: str | None = None
    serial: str | None = None


def levels_of(root: str, link: DigitalLink) -> list[Level]:
    """The canonical URI of every step of a Digital Link, from its key to its last qualifier."""
    qualifiers = list(link.qualifiers.items())
    return [
        Level(step, build_link(root, link.primary_key, link.key_value, dict(qualifiers[:n])))
        for n, step in enumerate([link.primary_key, *link.qualifiers])
    ]


def linkset(root: str, levels: list[Level], subject: Subject, lang: str) -> dict[str, Any]:
    """The RFC 9264 linkset, one object per level, as GS1's linkset schema has it."""
    return {
        "linkset": [
            {
                "anchor": level.anchor,
                "itemDescription": _describe(level, subject, lang),
                **{GS1_VOCABULARY + k: v for k, v in offered(root, levels, level, subject, lang)},
            }
            for level in levels
        ]
    }


def links_of_type(
    root: str, levels: list[Level], subject: Subject, lang: str, term: str
) -> list[dict[str, Any]]:
    """The links of one type (a GS1 term, such as "pip"), from the most specific level up."""
    for level in reversed(levels):
        for found, links in offered(root, levels, level, subject, lang):
            if found == term:
                return links
    return []


def offered(
    root: str, levels: list[Level], level: Level, subject: Subject, lang: str
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(GS1 term, links) of one level. The default link is the page the level's own link
    opens, and is listed again under a descriptive type, as the standard requires."""
    steps = {lv.step for lv in levels}
    own = level.step in ("l", "b")  # the service's own links: one level holds everything
    batch_here = subject.batch_id is not None and (
        level.step in ("10", "b") or (level.step in ("21", "l") and "10" not in steps)
    )
    kind = {"10": "lot", "b": "lot", "21": "label", "l": "label"}.get(level.step, "product")
    page = _link(level.anchor, t(lang, _PAGES[kind]), "text/html")
    api = f"{root}/api/v1"
    product = f"{api}/products/{quote(subject.product_id)}"
    pip = [] if kind == "lot" else [page]
    if level.step == "01" or own:
        pip.append(_link(product, t(lang, "linkset.product"), "application/json"))
    if pip:
        yield "pip", pip
    if level.step == "01" or own:
        ratings = _link(f"{product}/ratings", t(lang, "linkset.ratings"), "application/json")
        yield "certificationInfo", [ratings]
    if batch_here:
        batch = f"{api}/batches/{quote(subject.batch_id or '')}"
        yield (
            "traceability",
            [
                *([page] if kind == "lot" else []),
                _link(f"{batch}/events", t(lang, "linkset.events"), "application/json"),
                _link(f"{batch}/epcis", t(lang, "linkset.epcis"), "application/ld+json"),
            ],
        )
    yield "defaultLink", [{"href": page["href"], "title": page["title"]}]


def _link(href: str, title: str, media_type: str) -> dict[str, Any]:
    return {"href": href, "title": title, "type": media_type, "hreflang": list(LANGUAGES)}


def _describe(level: Level, subject: Subject, lang: str) -> str:
    name = subject.name_en if lang == "en" and subject.name_en else subject.name_vi
    if level.step in ("21", "l") and subject.serial:
        return t(lang, "linkset.item.label", product=name, serial=subject.serial)
    if level.step in ("10", "b") and subject.lot:
        return t(lang, "linkset.item.lot", product=name, lot=subject.lot)
    return name
