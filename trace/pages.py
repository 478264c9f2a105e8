"""The page a shopper sees after scanning a label: server-rendered, no script, small."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import lru_cache
from importlib.resources import files
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection, select

from ledger import merkle
from ledger.errors import LedgerError
from ledger.note import NoteVerifier, note_key_id, open_checkpoint
from ledger.statement import parse_entry
from ledger.store import LedgerStore
from ocop_trace import ocop
from ocop_trace.i18n import TEXT, pick_language
from ocop_trace.projection import EVENT

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


def _common(lang: str) -> dict[str, Any]:
    return {"lang": lang, "t": TEXT[lang], "other_lang": "en" if lang == "vi" else "vi"}


def _with_form(request: Request, render: Any, serial: str | None, status: int) -> HTMLResponse:
    """Render with a fresh CSRF token for the report form, set in a cookie as well."""
    from ocop_trace.reports import CSRF_COOKIE, csrf_token

    token = csrf_token(request.app.state.settings.secret_key.get_secret_value())
    response = HTMLResponse(render(token if serial else ""), status_code=status)
    if serial:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            max_age=3600,
            secure=request.url.scheme == "https",
        )
    return response


def error_page(
    request: Request, status: int, verdict: str, message: str, serial: str | None = None
) -> HTMLResponse:
    lang = language(request)
    text = TEXT[lang]
    headline = text["verdict_unknown"] if status == 404 else text["verdict_bad"]
    template = environment().get_template("error.html")
    return _with_form(
        request,
        lambda csrf: template.render(
            **_common(lang),
            verdict=verdict,
            headline=headline,
            message=message,
            csrf=csrf,
            serial=serial or "",
        ),
        serial,
        status,
    )


@lru_cache(maxsize=4096)
def _proof(store: LedgerStore, note: str, index: int) -> dict[str, Any]:
    """The inclusion proof of an entry in the latest signed checkpoint, checked here.

    Cached per (checkpoint, entry): a page rests on a proof the server verified once for
    that checkpoint, and a new checkpoint gets a new proof.
    """
    data = store.entry(index)
    if data is None:
        raise LedgerError("the page's entry is missing from the ledger", found=index)
    entry = parse_entry(data)
    entry_hash = entry.hash.hex()
    body = entry.statement.body
    ledger_keys = [
        g for g in store.grants().values() if g.role == "ledger" and g.revoked_index is None
    ]
    for grant in ledger_keys:
        public = bytes.fromhex(grant.key_id)
        try:
            checkpoint = open_checkpoint(
                note, NoteVerifier(grant.name, note_key_id(grant.name, public), public)
            )
        except LedgerError:
            continue
        if index >= checkpoint.size:
            break
        size, proof = store.inclusion_proof(index, checkpoint.size)
        merkle.verify_inclusion(merkle.leaf_hash(data), index, size, proof, checkpoint.root_hash)
        return {
            "index": index,
            "short_hash": entry_hash[:16],
            "verified": True,
            "tree_size": size,
            "short_root": checkpoint.root_hash.hex()[:16],
            "proof_length": len(proof),
            "body": body,
        }
    return {"index": index, "short_hash": entry_hash[:16], "verified": False, "body": body}


# The batch fields the page shows, each compared with the signed statement before showing.
_BATCH_FIELDS = (
    "id",
    "product_id",
    "lot",
    "produced_on",
    "expires_on",
    "quantity",
    "unit",
    "origin",
)


def _disagreements(batch: dict[str, Any], body: dict[str, Any]) -> list[str]:
    """Shown batch fields that the batch.registered statement does not say."""
    return [
        f for f in _BATCH_FIELDS if batch.get(f) != body.get(f, None if f == "expires_on" else "")
    ]


def scan_page(
    request: Request, conn: Connection, store: LedgerStore, facts: dict[str, Any]
) -> HTMLResponse:
    lang = language(request)
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
    if batch is not None:
        rows = conn.execute(
            select(EVENT).where(EVENT.c.batch_id == batch["id"]).order_by(EVENT.c.at, EVENT.c.id)
        ).all()
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
    note = store.latest_checkpoint() or ""
    index = batch["entry_index"] if batch is not None else facts["product_entry_index"]
    producer_type = ocop.PRODUCER_TYPES[producer["type"]]
    evidence = _proof(store, note, index)
    mismatch = _disagreements(batch, evidence["body"]) if batch is not None else []
    if mismatch:
        log.error("projection disagrees with entry %s on %s", index, ", ".join(mismatch))
    template = environment().get_template("scan.html")
    return _with_form(
        request,
        lambda csrf: template.render(
            csrf=csrf,
            serial=facts.get("serial", ""),
            **_common(lang),
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
            evidence=evidence,
            mismatch=mismatch,
            scans=facts.get("scans"),
            label_signature=facts.get("label_signature"),
            demo=str(product.get("gtin", "")).startswith("DEMO")
            or "DEMO" in (rating or {}).get("certificate_no", ""),
        ),
        facts.get("serial"),
        200,
    )
