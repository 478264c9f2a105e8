"""The page a shopper sees after scanning a label: server-rendered, no script, small."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from importlib.resources import files
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy import Connection, select

from ocop_trace import csrf, ocop
from ocop_trace.errors import ServiceError
from ocop_trace.evidence import Evidence
from ocop_trace.i18n import TEXT, pick_language
from ocop_trace.models import EVENT

log = logging.getLogger("ocop_trace")


@lru_cache(maxsize=1)
def environment() -> Environment:
    folder = str(files("ocop_trace.templates"))
    return Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html"]))


def wants_html(request: Request) -> bool:
    """A browser asks for HTML first; API clients ask for JSON or send no preference."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


def language(request: Request) -> str:
    return pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))


HTML_TYPE = "text/html; charset=utf-8"


def common(lang: str) -> dict[str, Any]:
    return {"lang": lang, "t": TEXT[lang], "other_lang": "en" if lang == "vi" else "vi"}


# Parts of a page that differ per scan are rendered as these markers and filled in by
# `finish`, so the rest can be cached. Text from the ledger is escaped on the way in, so it
# can never contain a marker.
CSRF_HOLE = Markup("<!--@csrf-->")
SERIAL_HOLE = Markup("<!--@serial-->")
SCANS_HOLE = Markup("<!--@scans-->")
_HOLES = re.compile("(<!--@(?:csrf|serial|scans)-->)")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered page cut at its holes: encoded once, filled per scan by joining bytes."""

    parts: tuple[bytes, ...]
    holes: tuple[str, ...]

    @classmethod
    def of(cls, html: str) -> Rendered:
        pieces = _HOLES.split(html)
        return cls(tuple(p.encode() for p in pieces[::2]), tuple(pieces[1::2]))

    def fill(self, values: dict[str, bytes]) -> bytes:
        out = [self.parts[0]]
        for hole, part in zip(self.holes, self.parts[1:], strict=True):
            out.append(values[hole])
            out.append(part)
        return b"".join(out)


def finish(
    request: Request,
    page: Rendered,
    lang: str,
    serial: str | None,
    scans: dict[str, Any] | None,
    status: int = 200,
) -> Response:
    """Fill in the per-scan parts: the report form's CSRF token (also set as a cookie), the
    serial, and the copy warning."""
    token = (
        csrf.new_token(request.app.state.settings.secret_key.get_secret_value()) if serial else ""
    )
    warning = ""
    if scans is not None and scans["may_be_copied"]:
        warning = _copied_warning(lang, scans)
    body = page.fill(
        {
            CSRF_HOLE: token.encode(),
            SERIAL_HOLE: escape(serial or "").encode(),
            SCANS_HOLE: warning.encode(),
        }
    )
    headers = None
    if serial:
        # Written out rather than through set_cookie: the token is URL-safe text of our
        # own, and this runs on every scan.
        secure = "; Secure" if request.scope.get("scheme") == "https" else ""
        headers = {
            "Set-Cookie": f"{csrf.COOKIE}={token}; HttpOnly; Max-Age=3600; Path=/; "
            f"SameSite=strict{secure}"
        }
    return Response(body, status_code=status, headers=headers, media_type=HTML_TYPE)


def _copied_warning(lang: str, scans: dict[str, Any]) -> str:
    return _copied_html(lang, scans["count"], scans["networks"], scans["first_seen"][:10])


@lru_cache(maxsize=1024)
def _copied_html(lang: str, count: int, networks: int, first: str) -> str:
    text = TEXT[lang]["copied"].format(count=count, networks=networks, first=first)
    return f'<p class="verdict warn" data-verdict-copied="copied">{escape(text)}</p>'


def error_page(
    request: Request, status: int, verdict: str, message: str, serial: str | None = None
) -> Response:
    lang = language(request)
    text = TEXT[lang]
    headline = text["verdict_unknown"] if status == 404 else text["verdict_bad"]
    body = (
        environment()
        .get_template("error.html")
        .render(
            **common(lang),
            verdict=verdict,
            headline=headline,
            message=message,
            csrf=CSRF_HOLE if serial else "",
            serial=SERIAL_HOLE,
        )
    )
    return finish(request, Rendered.of(body), lang, serial, None, status)


async def html_errors(request: Request, status: int, error: ServiceError) -> Response | None:
    """A browser outside the JSON API gets an error as a page; anything else, JSON."""
    if request.url.path.startswith("/api/") or not wants_html(request):
        return None
    return error_page(request, status, error.code, error.message)


def _evidence(
    conn: Connection, evidence: Evidence, facts: dict[str, Any], event_rows: list[Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The entries behind what the page shows, proved against the latest checkpoint."""
    product, producer, batch, rating = (
        facts[k] for k in ("product", "producer", "batch", "rating")
    )
    shown: list[tuple[str, int, dict[str, Any]]] = []
    if batch is not None:
        shown.append(("batch", batch["entry_index"], batch))
        if facts.get("recall_entry_index") is not None:
            recall = {"batch_id": batch["recall_source"], "reason": batch["recall_reason"]}
            shown.append(("recall", facts["recall_entry_index"], recall))
    shown.append(("product", facts["product_entry_index"], product))
    shown.append(("producer", producer["entry_index"], producer))
    if rating is not None:
        shown.append(("rating", rating["id"], rating))
    shown.extend(
        (
            "event",
            int(row.id),
            {k: getattr(row, k) for k in ("batch_id", "biz_step", "at", "place")},
        )
        for row in event_rows
    )
    note = evidence.store.latest_checkpoint(conn) or ""
    items, mismatch = evidence.for_page(conn, note, shown)
    if mismatch:
        log.error("the projection disagrees with the ledger on %s", ", ".join(mismatch))
    return items, mismatch


def render_scan_page(
    conn: Connection, evidence: Evidence, facts: dict[str, Any], lang: str
) -> Rendered:
    """The scan page with its per-scan parts left as holes for `finish`."""
    product, producer, batch, rating = (
        facts["product"],
        facts["producer"],
        facts["batch"],
        facts["rating"],
    )
    certified, current = producer["address_certified"], producer["address_current"]
    historical = ocop.historical_note(
        ocop.CertifiedAddress(
            province=certified["province"],
            district=certified["district"] or None,
            commune=certified["commune"],
            line=certified["line"],
        ),
        ocop.CurrentAddress(
            province=current["province"], commune=current["commune"], line=current["line"]
        ),
    )
    events = []
    rows: list[Any] = []
    if batch is not None:
        rows = list(
            conn.execute(
                select(EVENT)
                .where(EVENT.c.batch_id == batch["id"])
                .order_by(EVENT.c.at, EVENT.c.id)
            ).all()
        )
        for row in rows:
            step = ocop.BIZ_STEPS[row.biz_step]
            events.append(
                {
                    "biz_step": row.biz_step,
                    "at": row.at.replace("T", " ")[:16],
                    "place": row.place,
                    "step_label": step.vi if lang == "vi" else step.en,
                }
            )
    rating_view = None
    if rating is not None:
        valid_until = date.fromisoformat(rating["expires_on"]) - timedelta(days=1)
        rating_view = {
            **rating,
            "score": ocop.format_score(rating["score_hundredths"]),
            "valid_until": valid_until.isoformat(),
        }
    producer_type = ocop.PRODUCER_TYPES[producer["type"]]
    entries, mismatch = _evidence(conn, evidence, facts, rows)
    html = (
        environment()
        .get_template("scan.html")
        .render(
            csrf=CSRF_HOLE,
            serial=SERIAL_HOLE,
            # A label's page has the report form; a batch's page (from a lineage link) not.
            serial_page="serial" in facts,
            scans_warning=SCANS_HOLE,
            **common(lang),
            product=product,
            product_name=product["name_vi"]
            if lang == "vi" or not product["name_en"]
            else product["name_en"],
            producer=producer,
            producer_type=producer_type.vi if lang == "vi" else producer_type.en,
            current_address=", ".join(
                p for p in (current["line"], current["commune"], current["province"]) if p
            ),
            historical=historical,
            batch=batch,
            rating=rating_view,
            events=events,
            evidence=entries,
            mismatch=mismatch,
            label_signature=facts.get("label_signature"),
            demo=str(product.get("gtin", "")).startswith("DEMO")
            or "DEMO" in (rating or {}).get("certificate_no", ""),
        )
    )
    return Rendered.of(html)
